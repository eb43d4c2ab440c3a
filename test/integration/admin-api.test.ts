/**
 * The admin API against a whole stack (worker, server, console, an ACME order waiting in
 * validation, EST enrollments waiting for approval, one stalled by a missing CA): every route of the OpenAPI document
 * walked with a session of every role, each answering the documented 2xx or 403 (the
 * expectation is this file's own copy of the README's matrix); then the ways in: login,
 * throttling, idle timeout, forced password change, CSRF and Origin checks, API tokens
 * bound to a role and revoked, login by TLS client certificate; and what the console
 * leaves behind: audit entries with the user's role, none of it on the public listener.
 */
import { after, before, describe, it } from 'node:test';
import { deliveryId as repoDeliveryId } from '../../src/db/repos/notifications.ts';
import * as requests from '../../src/db/repos/requests.ts';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { join } from 'node:path';
import { opensslCsr, type TestInstance } from '../helpers/certflow.ts';
import { eventually, newAccount, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { AdminClient, type Credentials } from '../helpers/admin.ts';
import { makeOutsideCa, type OutsideCa } from '../helpers/outside-ca.ts';
import { SoftwareKeyStore } from '../../src/keys/index.ts';

const ROLES = ['ca-admin', 'admin', 'officer', 'auditor', 'operator'] as const;
type Role = (typeof ROLES)[number];

/** The documented matrix (README, "Operator console"): permission -> roles that hold it. */
const MATRIX: Record<string, Role[]> = {
  'dashboard:read': ['ca-admin', 'admin', 'officer', 'auditor', 'operator'],
  'hierarchy:read': ['ca-admin', 'admin', 'officer', 'auditor', 'operator'],
  'keys:read': ['ca-admin', 'admin', 'officer'],
  'certificates:read': ['ca-admin', 'admin', 'officer', 'auditor'],
  'certificates:manage': ['officer'],
  'requests:read': ['ca-admin', 'admin', 'officer', 'auditor'],
  'requests:manage': ['officer'],
  'crls:read': ['ca-admin', 'admin', 'officer', 'auditor'],
  'crls:manage': ['officer'],
  'keys:recover': ['officer'],
  'reports:read': ['ca-admin', 'admin', 'officer', 'auditor'],
  'profiles:read': ['ca-admin', 'admin', 'officer', 'auditor'],
  'profiles:manage': ['admin'],
  'cas:manage': ['ca-admin'],
  'applications:read': ['ca-admin', 'admin'],
  'applications:manage': ['admin'],
  'users:read': ['ca-admin'],
  'users:manage': ['ca-admin'],
  'settings:read': ['ca-admin', 'admin'],
  'audit:read': ['ca-admin', 'auditor'],
  'logs:read': ['ca-admin', 'operator'],
  'health:read': ['ca-admin', 'admin', 'operator'],
  'backup:read': ['ca-admin', 'operator'],
  'backup:manage': ['operator'],
  'notifications:read': ['ca-admin', 'admin'],
  'notifications:manage': ['admin'],
  'backup:recipient': ['ca-admin'],
  authenticated: [...ROLES],
};

const PASSWORD = 'walk the whole matrix';
/** The backup recipient key the CA Administrator sets: backups are encrypted to it. */
const RECIPIENT = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

interface Case {
  method: string;
  /** As in the OpenAPI document. */
  route: string;
  permission: string;
  /** The request for one role (a fresh object for every allowed role where it changes state). */
  request(role: Role): Promise<{ path: string; body?: unknown }> | { path: string; body?: unknown };
}

describe('admin API', () => {
  let stack: AcmeStack;
  let cf: TestInstance;
  let api: AdminClient;
  const sessions = {} as Record<Role, Credentials & { response?: { status: number } }>;
  const fixtures = {
    certs: {} as Record<string, string>,
    orderId: '',
    approvals: [] as string[],
    stalled: '',
    tokenIds: [] as string[],
    deadLetter: '',
    backup: '',
    crl: '',
    /** The certificate an outside root issued for the pending CA walk-ext's request. */
    extCert: '',
    /** An existing CA's certificate whose key is in the worker's key store (walk-imported). */
    importedCert: '',
  };
  let outside: OutsideCa;

  async function issue(name: string, profile = 'tls-server'): Promise<string> {
    const csr = await opensslCsr(cf.home, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
    const r = await cf.cli(['--json', 'cert', 'issue', '--csr', csr, '--profile', profile, '--out', join(cf.home, `${name}.pem`)]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).serial as string;
  }

  function estEnroll(name: string, user: string, password: string, path = '/.well-known/est/simpleenroll'): Promise<number> {
    return opensslCsr(cf.home, name, { subj: `/CN=${name}` }).then(async (pem) => {
      const b64 = (await readFile(pem, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      return new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            servername: 'localhost',
            port: cf.httpsPort,
            method: 'POST',
            path,
            ca: stack.rootPem,
            headers: {
              'Content-Type': 'application/pkcs10',
              Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(b64);
      });
    });
  }

  before(async () => {
    outside = await makeOutsideCa(await mkdtemp(join(tmpdir(), 'certflow-walk-outside-')));
    stack = await startAcmeStack({
      config: {
        ca: { trustAnchors: [outside.cert] },
        validation: { retryWindowSeconds: 900 },
        est: {
          labels: [
            { name: 'archive', profile: 'device', archiveServerKeys: true },
            // Its issuing CA does not exist: an enrollment there stalls (a server fault).
            { name: 'nowhere', profile: 'device', caName: 'no-such-ca' },
          ],
        },
      },
      env: { CERTFLOW_EST_WAIT_SECONDS: '1' },
    });
    cf = stack.cf;
    await cf.startAdmin();
    api = new AdminClient(cf.adminPort, stack.rootPem);

    // The first CA Administrator comes from the CLI, and so do the roles with permissions a
    // CA Administrator does not hold (it grants only its own); the API creates the Auditor.
    const add = await cf.cli(['users', 'add', '--name', 'u-ca-admin', '--role', 'ca-admin', '--password', '-'], { input: `${PASSWORD}\n` });
    assert.equal(add.code, 0, add.stderr);
    sessions['ca-admin'] = await api.login('u-ca-admin', PASSWORD);
    for (const role of ROLES.filter((r) => r !== 'ca-admin')) {
      if (role === 'auditor') {
        const r = await api.call('POST', '/admin/api/v1/users', {
          ...sessions['ca-admin'],
          body: { name: `u-${role}`, role, password: PASSWORD, temporary: false },
        });
        assert.equal(r.status, 201, r.text);
      } else {
        const r = await cf.cli(['users', 'add', '--name', `u-${role}`, '--role', role, '--password', '-'], { input: `${PASSWORD}\n` });
        assert.equal(r.code, 0, r.stderr);
      }
      sessions[role] = await api.login(`u-${role}`, PASSWORD);
      assert.ok(sessions[role].cookie, `${role} logged in`);
    }
    for (const role of ROLES) assert.equal(sessions[role].response?.status, 200);

    const [hold, revoke, renew, bind] = await Promise.all(['walk-hold', 'walk-revoke', 'walk-renew', 'walk-bind'].map((n) => issue(n)));
    Object.assign(fixtures.certs, { hold: hold!, revoke: revoke!, renew: renew!, bind: bind! });
    const victim = await api.call('POST', '/admin/api/v1/users', {
      ...sessions['ca-admin'],
      body: { name: 'victim', role: 'auditor', password: PASSWORD, temporary: false },
    });
    assert.equal(victim.status, 201, victim.text);
    const walkEst = await api.call('POST', '/admin/api/v1/applications/est-clients', {
      ...sessions.admin,
      body: { name: 'walk-est', password: PASSWORD },
    });
    assert.equal(walkEst.status, 201, walkEst.text);
    const approver = await api.call('POST', '/admin/api/v1/applications/est-clients', {
      ...sessions.admin,
      body: { name: 'needs-approval', password: PASSWORD, requireApproval: true },
    });
    assert.equal(approver.status, 201, approver.text);
    for (const n of ['dev-a', 'dev-b']) assert.equal(await estEnroll(n, 'needs-approval', PASSWORD), 202);
    // A key generated by the server and archived: what an officer may recover.
    assert.equal(await estEnroll('dev-keygen', 'walk-est', PASSWORD, '/.well-known/est/archive/serverkeygen'), 200);
    fixtures.certs.archived = (await cf.pool.query('SELECT serial FROM archived_keys')).rows[0].serial;
    assert.equal(await estEnroll('dev-stalled', 'walk-est', PASSWORD, '/.well-known/est/nowhere/simpleenroll'), 202);
    fixtures.stalled = await eventually('an enrollment stalled by the missing CA', 30_000, async () => {
      const r = await api.call('GET', '/admin/api/v1/requests/stuck?protocol=est&reason=stalled', sessions.officer);
      return (r.json as Array<{ id: string }> | undefined)?.[0]?.id;
    });
    fixtures.approvals = await eventually('two enrollments awaiting approval', 30_000, async () => {
      const r = await api.call('GET', '/admin/api/v1/approvals', sessions.officer);
      return r.json?.length === 2 ? (r.json as Array<{ id: string }>).map((a) => a.id) : undefined;
    });

    // An ACME order whose http-01 validation is retried (nothing answers on the http-01 port).
    const { client } = await newAccount(stack.directoryUrl());
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'walk.example.test' }] });
    const [authz] = await client.getAuthorizations(order);
    await client.completeChallenge(authz!.challenges.find((c) => c.type === 'http-01')!);
    fixtures.orderId = order.url.split('/').pop()!;
    await eventually('the order waits in validation', 30_000, async () => {
      const r = await api.call('GET', `/admin/api/v1/requests/orders/${fixtures.orderId}`, sessions.officer);
      return r.json?.authorizations?.[0]?.challenges?.some((c: { status: string }) => c.status === 'processing') ? true : undefined;
    });

    fixtures.crl = await eventually('the first CRL', 30_000, async () => {
      const r = await api.call('GET', '/admin/api/v1/crls', sessions.officer);
      return r.json?.[0]?.crlNumber as string | undefined;
    });
    await mkdir(join(cf.home, 'logs'), { recursive: true });
    await writeFile(
      join(cf.home, 'logs', 'server.log'),
      `${JSON.stringify({ level: 30, time: new Date().toISOString(), component: 'server', msg: 'walk' })}\n`,
    );
    // A dead-lettered notification delivery (to a webhook this instance no longer has).
    fixtures.deadLetter = repoDeliveryId('walk:notice', 'webhook', 'https://hooks.example.test/gone');
    await cf.pool.query("INSERT INTO notices (id, type, subject, data) VALUES ('walk:notice', 'test', 'walk', '{}')");
    await cf.pool.query(
      "INSERT INTO notice_deliveries (id, notice_id, channel, target, status, attempts, last_error) VALUES ($1, 'walk:notice', 'webhook', 'https://hooks.example.test/gone', 'dead', 8, 'HTTP 500')",
      [fixtures.deadLetter],
    );
    // CA operations: a pending external CA (its request signed by an outside root), and an
    // existing CA whose key an operator put into the worker's key store.
    const extCsr = join(cf.home, 'walk-ext.csr');
    const ext = await cf.cli(['ca', 'create', '--name', 'walk-ext', '--external', '--csr-out', extCsr]);
    assert.equal(ext.code, 0, ext.stderr);
    fixtures.extCert = await readFile(await outside.signCa(extCsr, join(cf.home, 'walk-ext.pem')), 'utf8');
    const importedCsr = await opensslCsr(cf.home, 'walk-imported', { subj: '/CN=Walk Imported CA' });
    fixtures.importedCert = await readFile(await outside.signCa(importedCsr, join(cf.home, 'walk-imported.pem')), 'utf8');
    const store = new SoftwareKeyStore({ dir: join(cf.home, 'keys'), passphrase: cf.env.CERTFLOW_KEY_PASSPHRASE! });
    await store.importKey('walk-imported', createPrivateKey(await readFile(join(cf.home, 'walk-imported.key'))));
    await store.close();
    for (let i = 0; i < 1; i++) {
      const t = await api.call('POST', '/admin/api/v1/tokens', { ...sessions['ca-admin'], body: { name: `walk-${i}`, role: 'auditor' } });
      assert.equal(t.status, 201, t.text);
      fixtures.tokenIds.push(t.json.id);
    }
  });
  after(async () => stack?.stop());

  const NEW_PASSWORD = `${PASSWORD}!`;

  const cases: Case[] = [
    { method: 'GET', route: '/session', permission: 'authenticated', request: () => ({ path: '/session' }) },
    { method: 'GET', route: '/roles', permission: 'authenticated', request: () => ({ path: '/roles' }) },
    { method: 'GET', route: '/dashboard', permission: 'dashboard:read', request: () => ({ path: '/dashboard' }) },
    { method: 'GET', route: '/health', permission: 'health:read', request: () => ({ path: '/health' }) },
    { method: 'GET', route: '/cas', permission: 'hierarchy:read', request: () => ({ path: '/cas' }) },
    {
      method: 'GET',
      route: '/cas/{name}/certificate',
      permission: 'hierarchy:read',
      request: () => ({ path: '/cas/certflow-root/certificate' }),
    },
    { method: 'GET', route: '/cas/{name}/chain', permission: 'hierarchy:read', request: () => ({ path: '/cas/certflow-issuing/chain' }) },
    { method: 'GET', route: '/cas/{name}/csr', permission: 'hierarchy:read', request: () => ({ path: '/cas/walk-ext/csr' }) },
    {
      method: 'POST',
      route: '/cas',
      permission: 'cas:manage',
      request: () => ({ path: '/cas', body: { name: 'walk-sub', parent: 'certflow-root', permitted: ['dns:walk.example.test'] } }),
    },
    {
      method: 'POST',
      route: '/cas/{name}/certificate',
      permission: 'cas:manage',
      request: () => ({ path: '/cas/walk-ext/certificate', body: { certificate: fixtures.extCert } }),
    },
    {
      method: 'POST',
      route: '/cas/import',
      permission: 'cas:manage',
      request: () => ({ path: '/cas/import', body: { name: 'walk-imported', certificate: fixtures.importedCert, key: 'walk-imported' } }),
    },
    {
      method: 'POST',
      route: '/cas/{name}/rollover',
      permission: 'cas:manage',
      request: () => ({ path: '/cas/walk-sub/rollover', body: {} }),
    },
    {
      method: 'POST',
      route: '/cas/{name}/revoke',
      permission: 'cas:manage',
      request: () => ({ path: '/cas/walk-sub/revoke', body: { reason: 'cessationOfOperation' } }),
    },
    { method: 'GET', route: '/keys', permission: 'keys:read', request: () => ({ path: '/keys' }) },
    {
      method: 'GET',
      route: '/certificates',
      permission: 'certificates:read',
      request: () => ({ path: '/certificates?state=active&subject=walk' }),
    },
    {
      method: 'GET',
      route: '/certificates/{serial}',
      permission: 'certificates:read',
      request: () => ({ path: `/certificates/${fixtures.certs.hold}` }),
    },
    {
      method: 'GET',
      route: '/certificates/{serial}/pem',
      permission: 'certificates:read',
      request: () => ({ path: `/certificates/${fixtures.certs.hold}/pem?chain=true` }),
    },
    {
      method: 'POST',
      route: '/certificates/{serial}/hold',
      permission: 'certificates:manage',
      request: () => ({ path: `/certificates/${fixtures.certs.hold}/hold` }),
    },
    {
      method: 'POST',
      route: '/certificates/{serial}/release',
      permission: 'certificates:manage',
      request: () => ({ path: `/certificates/${fixtures.certs.hold}/release` }),
    },
    {
      method: 'POST',
      route: '/certificates/{serial}/revoke',
      permission: 'certificates:manage',
      request: () => ({ path: `/certificates/${fixtures.certs.revoke}/revoke`, body: { reason: 'keyCompromise' } }),
    },
    {
      method: 'POST',
      route: '/certificates/{serial}/renew',
      permission: 'certificates:manage',
      request: () => ({ path: `/certificates/${fixtures.certs.renew}/renew` }),
    },
    { method: 'GET', route: '/requests/orders', permission: 'requests:read', request: () => ({ path: '/requests/orders' }) },
    {
      method: 'GET',
      route: '/requests/orders/{id}',
      permission: 'requests:read',
      request: () => ({ path: `/requests/orders/${fixtures.orderId}` }),
    },
    {
      method: 'POST',
      route: '/requests/orders/{id}/retry',
      permission: 'requests:manage',
      request: () => ({ path: `/requests/orders/${fixtures.orderId}/retry` }),
    },
    {
      method: 'POST',
      route: '/requests/orders/{id}/cancel',
      permission: 'requests:manage',
      request: () => ({ path: `/requests/orders/${fixtures.orderId}/cancel`, body: { reason: 'walked' } }),
    },
    {
      method: 'GET',
      route: '/requests/enrollments',
      permission: 'requests:read',
      request: () => ({ path: '/requests/enrollments?protocol=est' }),
    },
    {
      method: 'POST',
      route: '/requests/enrollments/{id}/retry',
      permission: 'requests:manage',
      // The workflow retries a stalled request by itself (30 s, then doubling): while that
      // attempt runs the request is `signing` and a retry is refused (409). On a loaded
      // machine the walk could land in that window; it waits for the stall to be read again.
      request: async () => {
        await eventually('the enrollment stalled (again)', 60_000, async () => {
          // As retryRequest (src/ra/approvals.ts) reads it.
          return (await requests.get(cf.pool, fixtures.stalled))?.state === 'stalled' || undefined;
        });
        return { path: `/requests/enrollments/${fixtures.stalled}/retry` };
      },
    },
    { method: 'GET', route: '/requests/stuck', permission: 'requests:read', request: () => ({ path: '/requests/stuck?protocol=est' }) },
    { method: 'GET', route: '/requests/waiting', permission: 'requests:read', request: () => ({ path: '/requests/waiting?on=person' }) },
    { method: 'GET', route: '/approvals', permission: 'requests:read', request: () => ({ path: '/approvals' }) },
    {
      method: 'POST',
      route: '/approvals/{id}/approve',
      permission: 'requests:manage',
      request: () => ({ path: `/approvals/${fixtures.approvals[0]}/approve` }),
    },
    {
      method: 'POST',
      route: '/approvals/{id}/reject',
      permission: 'requests:manage',
      request: () => ({ path: `/approvals/${fixtures.approvals[1]}/reject`, body: { reason: 'unknown device' } }),
    },
    { method: 'GET', route: '/crls', permission: 'crls:read', request: () => ({ path: '/crls' }) },
    {
      method: 'GET',
      route: '/crls/{ca}/{number}',
      permission: 'crls:read',
      request: () => ({ path: `/crls/certflow-issuing/${fixtures.crl}` }),
    },
    {
      method: 'POST',
      route: '/crls/generate',
      permission: 'crls:manage',
      request: () => ({ path: '/crls/generate', body: { ca: 'certflow-issuing' } }),
    },
    { method: 'GET', route: '/ocsp', permission: 'crls:read', request: () => ({ path: '/ocsp' }) },
    {
      method: 'POST',
      route: '/certificates/{serial}/recover-key',
      permission: 'keys:recover',
      request: () => ({ path: `/certificates/${fixtures.certs.archived}/recover-key`, body: { passphrase: PASSWORD } }),
    },
    {
      method: 'GET',
      route: '/reports/certificates',
      permission: 'reports:read',
      request: () => ({ path: '/reports/certificates?type=active&format=csv' }),
    },
    { method: 'GET', route: '/reports/crls', permission: 'reports:read', request: () => ({ path: '/reports/crls' }) },
    { method: 'GET', route: '/reports/statistics', permission: 'reports:read', request: () => ({ path: '/reports/statistics' }) },
    { method: 'GET', route: '/audit', permission: 'audit:read', request: () => ({ path: '/audit?action=cert.' }) },
    { method: 'GET', route: '/audit/verify', permission: 'audit:read', request: () => ({ path: '/audit/verify' }) },
    { method: 'GET', route: '/audit/checkpoints', permission: 'audit:read', request: () => ({ path: '/audit/checkpoints' }) },
    { method: 'GET', route: '/logs', permission: 'logs:read', request: () => ({ path: '/logs' }) },
    { method: 'GET', route: '/logs/{name}', permission: 'logs:read', request: () => ({ path: '/logs/server?level=info' }) },
    {
      method: 'GET',
      route: '/applications/est-clients',
      permission: 'applications:read',
      request: () => ({ path: '/applications/est-clients' }),
    },
    {
      method: 'POST',
      route: '/applications/est-clients',
      permission: 'applications:manage',
      request: (role) => ({ path: '/applications/est-clients', body: { name: `walk-new-${role}`, password: PASSWORD, labels: [''] } }),
    },
    {
      method: 'POST',
      route: '/applications/est-clients/{name}/disable',
      permission: 'applications:manage',
      request: () => ({ path: '/applications/est-clients/walk-est/disable' }),
    },
    {
      method: 'POST',
      route: '/applications/est-clients/{name}/enable',
      permission: 'applications:manage',
      request: () => ({ path: '/applications/est-clients/walk-est/enable' }),
    },
    {
      method: 'PUT',
      route: '/applications/est-clients/{name}/password',
      permission: 'applications:manage',
      request: () => ({ path: '/applications/est-clients/walk-est/password', body: { password: `${PASSWORD} 2` } }),
    },
    {
      method: 'DELETE',
      route: '/applications/est-clients/{name}',
      permission: 'applications:manage',
      request: (role) => ({ path: `/applications/est-clients/walk-new-${role}` }),
    },
    {
      method: 'GET',
      route: '/applications/cmp-clients',
      permission: 'applications:read',
      request: () => ({ path: '/applications/cmp-clients' }),
    },
    {
      method: 'GET',
      route: '/applications/eab-keys',
      permission: 'applications:read',
      request: () => ({ path: '/applications/eab-keys' }),
    },
    {
      method: 'POST',
      route: '/applications/eab-keys',
      permission: 'applications:manage',
      request: () => ({ path: '/applications/eab-keys', body: { alias: '' } }),
    },
    { method: 'GET', route: '/profiles', permission: 'profiles:read', request: () => ({ path: '/profiles?kind=certificate' }) },
    {
      method: 'GET',
      route: '/profiles/{kind}/{name}',
      permission: 'profiles:read',
      request: () => ({ path: '/profiles/certificate/device' }),
    },
    {
      method: 'POST',
      route: '/profiles',
      permission: 'profiles:manage',
      request: () => ({
        path: '/profiles',
        body: { kind: 'certificate', definition: JSON.stringify({ name: 'walk-profile', extends: 'device', validitySeconds: 86_400 }) },
      }),
    },
    {
      method: 'POST',
      route: '/profiles/{kind}/{name}/clone',
      permission: 'profiles:manage',
      request: () => ({ path: '/profiles/certificate/walk-profile/clone', body: { as: 'walk-clone' } }),
    },
    {
      method: 'POST',
      route: '/profiles/{kind}/{name}/retire',
      permission: 'profiles:manage',
      request: () => ({ path: '/profiles/certificate/walk-clone/retire' }),
    },
    { method: 'GET', route: '/settings', permission: 'settings:read', request: () => ({ path: '/settings' }) },
    { method: 'GET', route: '/users', permission: 'users:read', request: () => ({ path: '/users' }) },
    {
      method: 'POST',
      route: '/users',
      permission: 'users:manage',
      request: (role) => ({ path: '/users', body: { name: `walk-new-${role}`, role: 'auditor', password: PASSWORD } }),
    },
    { method: 'POST', route: '/users/{name}/disable', permission: 'users:manage', request: () => ({ path: '/users/victim/disable' }) },
    { method: 'POST', route: '/users/{name}/enable', permission: 'users:manage', request: () => ({ path: '/users/victim/enable' }) },
    {
      method: 'PUT',
      route: '/users/{name}/password',
      permission: 'users:manage',
      request: () => ({ path: '/users/victim/password', body: { password: `${PASSWORD} 3` } }),
    },
    {
      method: 'PUT',
      route: '/users/{name}/role',
      permission: 'users:manage',
      request: () => ({ path: '/users/victim/role', body: { role: 'ca-admin' } }),
    },
    {
      method: 'PUT',
      route: '/users/{name}/certificate',
      permission: 'users:manage',
      request: () => ({ path: '/users/victim/certificate', body: { serial: fixtures.certs.bind } }),
    },
    { method: 'GET', route: '/tokens', permission: 'users:read', request: () => ({ path: '/tokens' }) },
    {
      method: 'POST',
      route: '/tokens',
      permission: 'users:manage',
      request: (role) => ({ path: '/tokens', body: { name: `walk-${role}`, role: 'auditor', expiresDays: 1 } }),
    },
    { method: 'DELETE', route: '/tokens/{id}', permission: 'users:manage', request: () => ({ path: `/tokens/${fixtures.tokenIds[0]}` }) },
    { method: 'GET', route: '/notifications', permission: 'notifications:read', request: () => ({ path: '/notifications' }) },
    {
      method: 'GET',
      route: '/notifications/deliveries',
      permission: 'notifications:read',
      request: () => ({ path: '/notifications/deliveries?status=dead' }),
    },
    {
      method: 'POST',
      route: '/notifications/test',
      permission: 'notifications:manage',
      request: () => ({ path: '/notifications/test', body: { channel: 'webhook' } }),
    },
    {
      method: 'POST',
      route: '/notifications/deliveries/{id}/retry',
      permission: 'notifications:manage',
      request: () => ({ path: `/notifications/deliveries/${fixtures.deadLetter}/retry` }),
    },
    { method: 'GET', route: '/backups', permission: 'backup:read', request: () => ({ path: '/backups' }) },
    // The CA Administrator sets the recipient first: the Operator's backup below is encrypted to it.
    { method: 'GET', route: '/backup/recipient', permission: 'backup:read', request: () => ({ path: '/backup/recipient' }) },
    {
      method: 'PUT',
      route: '/backup/recipient',
      permission: 'backup:recipient',
      request: () => ({ path: '/backup/recipient', body: { publicKey: RECIPIENT } }),
    },
    {
      method: 'POST',
      route: '/backups',
      permission: 'backup:manage',
      request: () => ({ path: '/backups' }),
    },
    { method: 'GET', route: '/backups/{name}', permission: 'backup:manage', request: () => ({ path: `/backups/${fixtures.backup}` }) },
    {
      method: 'PUT',
      route: '/account/password',
      permission: 'authenticated',
      request: () => ({ path: '/account/password', body: { current: PASSWORD, password: `${PASSWORD}!` } }),
    },
    { method: 'DELETE', route: '/session', permission: 'authenticated', request: () => ({ path: '/session' }) },
  ];

  it('documents every route in the OpenAPI document, each with the permission this test expects', async () => {
    const doc = (await api.call('GET', '/admin/api/v1/openapi.json')).json;
    assert.equal(doc.openapi, '3.1.0');
    const documented = new Map<string, string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { 'x-permission': string }>>)) {
      for (const [method, op] of Object.entries(ops)) documented.set(`${method.toUpperCase()} ${path}`, op['x-permission']);
    }
    const publicRoutes = ['POST /session', 'POST /session/certificate'];
    for (const r of publicRoutes) assert.equal(documented.get(r), 'public', r);
    const walked = new Map(cases.map((c) => [`${c.method} ${c.route}`, c.permission]));
    assert.deepEqual(
      [...documented.keys()].filter((k) => !publicRoutes.includes(k)).sort(),
      [...walked.keys()].sort(),
      'every documented route is walked',
    );
    for (const [k, p] of walked) assert.equal(documented.get(k), p, k);
  });

  it('walks every route with every role: 2xx where the matrix allows it, 403 (audited) where not', async () => {
    const failures: string[] = [];
    let denied = 0;
    for (const c of cases) {
      for (const role of ROLES) {
        const allowed = MATRIX[c.permission]!.includes(role);
        const { path, body } = await c.request(role);
        const r = await api.call(c.method, `/admin/api/v1${path}`, { ...sessions[role], body });
        const ok = allowed ? r.status >= 200 && r.status < 300 : r.status === 403 && r.json?.error?.rule === 'rbac';
        if (!ok)
          failures.push(`${c.method} ${path} as ${role}: expected ${allowed ? '2xx' : '403'}, got ${r.status} ${r.text.slice(0, 200)}`);
        if (!allowed) denied++;
        if (allowed && c.method === 'POST' && c.route === '/backups') fixtures.backup = r.json?.name;
      }
    }
    assert.deepEqual(failures, []);
    const { rows } = await cf.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'access.denied' AND result = 'denied'");
    assert.equal(rows[0].n, denied, 'every 403 is audited');
  });

  it('the allowed calls did what they say, through the workflows, audited with the user and role', async () => {
    const status = async (serial: string) =>
      (await cf.pool.query('SELECT status, revocation_reason FROM certificates WHERE serial = $1', [serial])).rows[0];
    assert.deepEqual(await status(fixtures.certs.hold!), { status: 'valid', revocation_reason: null });
    assert.deepEqual(await status(fixtures.certs.revoke!), { status: 'revoked', revocation_reason: 'keyCompromise' });
    const renewed = await cf.pool.query('SELECT serial, requester FROM certificates WHERE replaces = $1', [fixtures.certs.renew]);
    assert.equal(renewed.rows.length, 1);
    assert.equal(renewed.rows[0].requester, 'user:u-officer');
    const decided = await cf.pool.query('SELECT id, state, decided_by FROM issuance_requests WHERE id = ANY($1) ORDER BY id', [
      fixtures.approvals,
    ]);
    assert.deepEqual(
      decided.rows.map((r) => r.decided_by),
      ['user:u-officer', 'user:u-officer'],
    );
    assert.deepEqual(
      fixtures.approvals.map((id) => decided.rows.find((r) => r.id === id)!.state),
      [decided.rows.find((r) => r.id === fixtures.approvals[0])!.state === 'signing' ? 'signing' : 'issued', 'rejected'],
    );
    const order = await cf.pool.query('SELECT status FROM acme_orders WHERE id = $1', [fixtures.orderId]);
    assert.equal(order.rows[0].status, 'invalid', 'the canceled order is invalid');
    const victim = await cf.pool.query("SELECT role, cert_serial, enabled FROM admin_users WHERE name = 'victim'");
    assert.deepEqual(victim.rows[0], { role: 'ca-admin', cert_serial: fixtures.certs.bind, enabled: true });
    assert.ok(fixtures.backup, 'a backup was written');

    const audited = async (action: string, object: string) =>
      (await cf.pool.query('SELECT actor, role, result FROM audit_log WHERE action = $1 AND object = $2 ORDER BY seq', [action, object]))
        .rows;
    assert.deepEqual(await audited('cert.revoke', fixtures.certs.revoke!), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('cert.hold', fixtures.certs.hold!), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('request.approve', fixtures.approvals[0]!), [
      { actor: 'user:u-officer', role: 'officer', result: 'ok' },
    ]);
    assert.deepEqual(await audited('request.reject', fixtures.approvals[1]!), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('order.cancel', fixtures.orderId), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('request.retry', fixtures.stalled), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('key.recover', fixtures.certs.archived!), [{ actor: 'user:u-officer', role: 'officer', result: 'ok' }]);
    assert.deepEqual(await audited('user.role', 'victim'), [{ actor: 'user:u-ca-admin', role: 'ca-admin', result: 'ok' }]);
    assert.deepEqual(await audited('estClient.disable', 'walk-est'), [{ actor: 'user:u-admin', role: 'admin', result: 'ok' }]);
    assert.equal(
      (await cf.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'crl.generate' AND actor = 'user:u-officer'")).rows[0]
        .n >= 1,
      true,
    );
    // CA operations by the CA Administrator, profile changes by the Administrator.
    const cas = await cf.pool.query("SELECT name, status FROM cas WHERE name LIKE 'walk-%' ORDER BY name");
    assert.deepEqual(cas.rows, [
      { name: 'walk-ext', status: 'active' },
      { name: 'walk-imported', status: 'active' },
      { name: 'walk-sub', status: 'revoked' },
    ]);
    const generations = await cf.pool.query("SELECT count(*)::int AS n FROM ca_keys WHERE ca_name = 'walk-sub' AND cert_der IS NOT NULL");
    assert.equal(generations.rows[0].n, 2, 'walk-sub was rolled over before its revocation');
    for (const [action, object] of [
      ['ca.create', 'walk-sub'],
      ['ca.importCert', 'walk-ext'],
      ['ca.import', 'walk-imported'],
      ['ca.rollover', 'walk-sub'],
      ['ca.revoke', 'walk-sub'],
    ]) {
      assert.deepEqual(await audited(action!, object!), [{ actor: 'user:u-ca-admin', role: 'ca-admin', result: 'ok' }], action);
    }
    assert.deepEqual(await audited('profile.create', 'certificate:walk-profile'), [{ actor: 'user:u-admin', role: 'admin', result: 'ok' }]);
    assert.deepEqual(await audited('profile.retire', 'certificate:walk-clone'), [{ actor: 'user:u-admin', role: 'admin', result: 'ok' }]);
    const v = await cf.cli(['audit', 'verify']);
    assert.equal(v.code, 0, v.stderr);
  });
  it('refuses the unauthenticated and the forged with precise errors', async () => {
    const anon = await api.call('GET', '/admin/api/v1/dashboard');
    assert.equal(anon.status, 401);
    assert.equal(anon.json.error.rule, 'auth.missing');
    const page = await api.call('GET', '/certificates?state=active', { headers: { Accept: 'text/html' } });
    assert.equal(page.status, 302);
    assert.equal(page.headers.location, '/login?next=%2Fcertificates%3Fstate%3Dactive');
    const wrong = await api.login('u-auditor', 'not the password at all');
    const unknown = await api.login('nobody-at-all', 'not the password at all');
    assert.equal(wrong.response.status, 401);
    assert.equal(unknown.response.status, 401);
    assert.equal(wrong.response.json.error.message, unknown.response.json.error.message, 'unknown users and wrong passwords look alike');
    assert.equal(
      (await api.call('GET', '/admin/api/v1/session', { token: 'cft_AAAAAAAAAAAAAAAA_bogusbogusbogusbogusbogusbogusbogusbogus123' }))
        .status,
      401,
    );
    assert.equal((await api.call('GET', '/admin/api/v1/session', { headers: { Authorization: 'Basic dTpw' } })).status, 401);

    const officer = await api.login('u-officer', NEW_PASSWORD);
    assert.equal(officer.response.status, 200, officer.response.text);
    const noCsrf = await api.call('POST', '/admin/api/v1/crls/generate', { cookie: officer.cookie, body: {} });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json.error.rule, 'csrf.token');
    const crossSite = await api.call('POST', '/admin/api/v1/crls/generate', {
      ...officer,
      body: {},
      headers: { Origin: 'https://evil.example' },
    });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.json.error.rule, 'csrf.origin');
    const crossLogin = await api.call('POST', '/admin/api/v1/session', {
      body: { name: 'u-officer', password: NEW_PASSWORD },
      headers: { Origin: 'https://evil.example' },
    });
    assert.equal(crossLogin.status, 403);
    const form = await api.call('POST', '/admin/api/v1/session', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: undefined,
    });
    assert.equal(form.status, 400, 'no body, no login');
    const formBody = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: cf.adminPort,
          method: 'POST',
          path: '/admin/api/v1/session',
          ca: stack.rootPem,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('name=u-officer&password=x');
    });
    assert.equal(formBody, 415, 'a cross-site form cannot post a login');
    const unknownField = await api.call('POST', '/admin/api/v1/crls/generate', {
      ...officer,
      body: { ca: 'certflow-issuing', force: true },
    });
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.json.error.message, /unknown field "force"/);
    const badReason = await api.call('POST', `/admin/api/v1/certificates/${fixtures.certs.hold}/revoke`, {
      ...officer,
      body: { reason: 'bored' },
    });
    assert.equal(badReason.status, 400);
    const twice = await api.call('POST', `/admin/api/v1/certificates/${fixtures.certs.revoke}/revoke`, { ...officer, body: {} });
    assert.equal(twice.status, 409);
    assert.match(twice.json.error.message, /already revoked \(keyCompromise/);
    assert.equal((await api.call('GET', '/admin/api/v1/certificates/zz-not-hex', officer)).status, 400);
    assert.equal((await api.call('GET', '/admin/api/v1/certificates/abcdef', officer)).status, 404);
  });

  it('sets a strict session cookie and security headers', async () => {
    const r = await api.call('POST', '/admin/api/v1/session', { body: { name: 'u-auditor', password: NEW_PASSWORD } });
    const cookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-certflow_session='))!;
    assert.match(cookie, /; path=\//i);
    assert.match(cookie, /; secure/i);
    assert.match(cookie, /; httponly/i);
    assert.match(cookie, /; samesite=strict/i);
    const page = await api.call('GET', '/login', { headers: { Accept: 'text/html' } });
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'; style-src 'self'/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['cache-control'], 'no-store');
    const asset = await api.call('GET', '/assets/chart.umd.min.js');
    assert.equal(asset.status, 200, 'chart.js is served from node_modules, not a CDN');
    assert.match(asset.text, /Chart/);
  });

  it('throttles password guessing per user name (429 + Retry-After), the lock audited once', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await api.login('u-operator', `wrong guess number ${i}`)).response.status, 401);
    const locked = await api.login('u-operator', NEW_PASSWORD);
    assert.equal(locked.response.status, 429, 'even the right password waits');
    assert.ok(Number(locked.response.headers['retry-after']) > 800);
    const other = await api.login('u-auditor', NEW_PASSWORD);
    assert.equal(other.response.status, 200, 'other users are not locked out');
    const { rows } = await cf.pool.query(
      "SELECT result, count(*)::int AS n FROM audit_log WHERE action = 'auth.login' AND object = 'u-operator' GROUP BY 1",
    );
    const byResult = Object.fromEntries(rows.map((r) => [r.result, r.n]));
    assert.ok(byResult.failed >= 5 && !byResult.denied, `checked attempts audited, refused ones not each: ${JSON.stringify(byResult)}`);
    const lock = await cf.pool.query("SELECT result FROM audit_log WHERE action = 'auth.lockout' AND object = 'console:user:u-operator'");
    assert.deepEqual(lock.rows, [{ result: 'denied' }], 'the lock is audited once');
    await cf.pool.query('DELETE FROM auth_failures');
    assert.equal((await api.login('u-operator', NEW_PASSWORD)).response.status, 200);
  });

  it('ends idle sessions, sessions of disabled users, and forces a chosen password', async () => {
    const auditor = await api.login('u-auditor', NEW_PASSWORD);
    assert.equal((await api.call('GET', '/admin/api/v1/session', auditor)).status, 200);
    await cf.pool.query("UPDATE admin_sessions SET last_seen_at = now() - interval '16 minutes' WHERE user_name = 'u-auditor'");
    const idle = await api.call('GET', '/admin/api/v1/session', auditor);
    assert.equal(idle.status, 401, 'idle longer than CERTFLOW_ADMIN_IDLE_SECONDS (900)');
    assert.match(String(idle.headers['set-cookie']), /__Host-certflow_session=;/);

    const ca = await api.login('u-ca-admin', NEW_PASSWORD);
    const reset = await api.call('PUT', '/admin/api/v1/users/victim/password', { ...ca, body: { password: 'a temporary password' } });
    assert.equal(reset.status, 200, reset.text);
    const victim = await api.login('victim', 'a temporary password');
    assert.equal(victim.response.json.mustChangePassword, true);
    const blocked = await api.call('GET', '/admin/api/v1/dashboard', victim);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.json.error.rule, 'auth.passwordChange');
    assert.equal((await api.call('GET', '/', { ...victim, headers: { Accept: 'text/html' } })).headers.location, '/account');
    const same = await api.call('PUT', '/admin/api/v1/account/password', {
      ...victim,
      body: { current: 'a temporary password', password: 'a temporary password' },
    });
    assert.equal(same.status, 400);
    const short = await api.call('PUT', '/admin/api/v1/account/password', {
      ...victim,
      body: { current: 'a temporary password', password: 'short' },
    });
    assert.equal(short.status, 400);
    const changed = await api.call('PUT', '/admin/api/v1/account/password', {
      ...victim,
      body: { current: 'a temporary password', password: 'my own good password' },
    });
    assert.equal(changed.status, 200, changed.text);
    assert.equal((await api.call('GET', '/admin/api/v1/dashboard', victim)).status, 200, 'victim (ca-admin) may read the dashboard now');

    const disable = await api.call('POST', '/admin/api/v1/users/victim/disable', ca);
    assert.equal(disable.status, 200);
    assert.equal((await api.call('GET', '/admin/api/v1/session', victim)).status, 401, 'disabling ends the sessions at once');
    assert.equal((await api.login('victim', 'my own good password')).response.status, 401);
    const last = await api.call('POST', '/admin/api/v1/users/u-ca-admin/disable', ca);
    assert.equal(last.status, 409, 'the last CA Administrator cannot be disabled');
  });

  it('binds API tokens to one role; a revoked token stops working', async () => {
    const made = await cf.cli(['--json', 'tokens', 'create', '--name', 'monitoring', '--role', 'auditor', '--user', 'u-auditor']);
    assert.equal(made.code, 0, made.stderr);
    const { token, id } = JSON.parse(made.stdout) as { token: string; id: string };
    assert.equal((await api.call('GET', '/admin/api/v1/certificates', { token })).status, 200);
    const refused = await api.call('POST', '/admin/api/v1/crls/generate', { token, body: {} });
    assert.equal(refused.status, 403, 'no CSRF needed, but the role is still checked');
    assert.equal(refused.json.error.rule, 'rbac');
    const listed = await cf.cli(['--json', 'tokens', 'list']);
    // The secret is base64url, "_" included: everything after "cft_<id>_".
    const secret = /^cft_[A-Za-z0-9]{16}_(.{43})$/.exec(token)![1]!;
    assert.ok(!listed.stdout.includes(secret), 'the secret is never listed');
    const ca = await api.login('u-ca-admin', NEW_PASSWORD);
    assert.equal((await api.call('DELETE', `/admin/api/v1/tokens/${id}`, ca)).status, 200);
    const revoked = await api.call('GET', '/admin/api/v1/certificates', { token });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.json.error.rule, 'auth.token.revoked');
    const { rows } = await cf.pool.query("SELECT actor, role FROM audit_log WHERE action = 'access.denied' AND actor = $1", [
      `token:${id}`,
    ]);
    assert.deepEqual(rows, [{ actor: `token:${id}`, role: 'auditor' }]);
  });

  it('logs in with a TLS client certificate of this CA bound to a user', async () => {
    const csr = await opensslCsr(cf.home, 'certuser', { subj: '/CN=certuser', san: 'email:certuser@example.test' });
    const pem = join(cf.home, 'certuser.pem');
    assert.equal((await cf.cli(['cert', 'issue', '--csr', csr, '--profile', 'tls-client', '--out', pem])).code, 0);
    const add = await cf.cli(['users', 'add', '--name', 'certuser', '--role', 'auditor', '--cert', pem]);
    assert.equal(add.code, 0, add.stderr);
    const cert = await readFile(pem, 'utf8');
    const key = await readFile(join(cf.home, 'certuser.key'), 'utf8');
    const r = await api.call('POST', '/admin/api/v1/session/certificate', { cert, key, body: {} });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, 'certuser');
    const cookie = ([] as string[]).concat(r.headers['set-cookie'] ?? [])[0]!.split(';')[0]!;
    const me = await api.call('GET', '/admin/api/v1/session', { cookie });
    assert.equal(me.json.authMethod, 'certificate');
    const login = await api.call('GET', '/login', { cert, key, headers: { Accept: 'text/html' } });
    assert.match(login.text, /Log in with this certificate/);

    const unbound = await opensslCsr(cf.home, 'stranger', { subj: '/CN=stranger', san: 'email:stranger@example.test' });
    const strangerPem = join(cf.home, 'stranger.pem');
    assert.equal((await cf.cli(['cert', 'issue', '--csr', unbound, '--profile', 'tls-client', '--out', strangerPem])).code, 0);
    const stranger = await api.call('POST', '/admin/api/v1/session/certificate', {
      cert: await readFile(strangerPem, 'utf8'),
      key: await readFile(join(cf.home, 'stranger.key'), 'utf8'),
      body: {},
    });
    assert.equal(stranger.status, 401);
    assert.equal((await api.call('POST', '/admin/api/v1/session/certificate', { body: {} })).status, 401, 'no certificate, no login');

    const serial = (await cf.pool.query("SELECT cert_serial FROM admin_users WHERE name = 'certuser'")).rows[0].cert_serial as string;
    assert.equal((await cf.cli(['cert', 'revoke', serial])).code, 0);
    const afterRevoke = await api.call('POST', '/admin/api/v1/session/certificate', { cert, key, body: {} });
    assert.equal(afterRevoke.status, 401, 'a revoked certificate logs nobody in');
    assert.match(afterRevoke.json.error.message, /is revoked/);
  });

  it('serves nothing of the console on the public listener', async () => {
    for (const path of ['/admin/api/v1/openapi.json', '/admin/api/v1/session', '/login', '/assets/console.js']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: cf.httpsPort, path, ca: stack.rootPem }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 404, path);
    }
  });
});
