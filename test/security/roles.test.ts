/**
 * Attacks on the console's roles (issue 22 item 4, issue 16 item 7):
 *
 * 1. Escalation: a CA Administrator (users:manage, but no key recovery) creates an API
 *    token or a user with the Officer role — or turns an auditor into an officer, sets the
 *    password of an existing officer, binds a certificate to it, enables a disabled one —
 *    and recovers an archived private key with it. Now a principal grants only permissions
 *    it holds; each refusal is audited (denied), each grant names who granted it.
 * 2. Tokens that outlive their user: a token keeps working after its user is disabled or
 *    demoted, and never expires by default. Now it belongs to a user, holds at most that
 *    user's role, and expires (90 days unless said, at most 365).
 * 3. The approval queue showed only the subject DN: an officer approving CN=innocent could
 *    sign victim.example. Now it shows every subjectAltName, the key type and the requester.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { AdminClient, type Credentials } from '../helpers/admin.ts';
import { estDevice, type EstDevice } from '../helpers/est.ts';
import { eventually } from '../helpers/acme.ts';

const PASSWORD = 'a password of the test';

describe('attack: escalating roles in the console', () => {
  let cf: TestInstance;
  let api: AdminClient;
  let boss: Credentials;
  let archived: string;
  let officerCertSerial: string;
  let est: EstDevice;

  async function cli(args: string[], input?: string) {
    const r = await cf.cli(args, { input });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  }

  async function recover(creds: Credentials) {
    return api.call('POST', `/admin/api/v1/certificates/${archived}/recover-key`, {
      ...creds,
      body: { passphrase: 'recovered key passphrase' },
    });
  }

  before(async () => {
    cf = await createInstance({ CERTFLOW_CONFIG: '' });
    await writeFile(
      join(cf.home, 'config.json'),
      JSON.stringify({
        est: {
          labels: [
            { name: 'archive', profile: 'device', archiveServerKeys: true },
            { name: 'approve', profile: 'tls-server', requireApproval: true },
          ],
        },
      }),
    );
    await cf.startWorker();
    await cf.startServer({ CERTFLOW_EST_WAIT_SECONDS: '1' });
    await cf.startAdmin();
    const root = join(cf.home, 'ca', 'root.pem');
    api = new AdminClient(cf.adminPort, await readFile(root, 'utf8'));
    est = estDevice(cf.home, `https://localhost:${cf.httpsPort}/.well-known/est`, root, join(cf.home, 'ca', 'chain.pem'));

    await cli(['users', 'add', '--name', 'boss', '--role', 'ca-admin', '--password', '-'], `${PASSWORD}\n`);
    await cli(['users', 'add', '--name', 'officer1', '--role', 'officer', '--password', '-'], `${PASSWORD}\n`);
    await cli(['est-client', 'add', '--name', 'dev', '--password', '-'], `${PASSWORD}\n`);
    boss = await api.login('boss', PASSWORD);
    assert.ok(boss.cookie);

    // An archived private key (EST serverkeygen on a label that archives keys): what an officer may recover.
    const keygen = await est.curl('/archive/serverkeygen', { user: `dev:${PASSWORD}`, data: await est.csrBody('kg', '/CN=kg') });
    assert.equal(keygen.status, 200, keygen.body.toString());
    archived = (await cf.pool.query('SELECT serial FROM archived_keys')).rows[0].serial;
    // A certificate an attacker could bind to the officer account (its key is the attacker's).
    const csr = await opensslCsr(cf.home, 'mine', { subj: '/CN=mine.example.test', san: 'DNS:mine.example.test' });
    officerCertSerial = JSON.parse(
      (await cli(['--json', 'cert', 'issue', '--csr', csr, '--out', join(cf.home, 'mine.pem')])).stdout,
    ).serial;
  });
  after(async () => cf?.cleanup());

  it('a CA Administrator cannot create an Officer token and recover an archived key with it', async () => {
    const made = await api.call('POST', '/admin/api/v1/tokens', { ...boss, body: { name: 'escalate', role: 'officer' } });
    const recovered = made.json?.token ? (await recover({ token: made.json.token })).status : undefined;
    assert.notEqual(recovered, 200, 'the archived key was recovered with a token the CA Administrator made');
    assert.equal(made.status, 403, made.text);
    assert.equal(made.json.error.rule, 'rbac.grant');
    assert.match(made.json.error.message, /may grant only permissions it holds.*keys:recover/);
  });

  it('nor an Officer user, nor turn a user into one, nor take over an existing officer', async () => {
    const user = await api.call('POST', '/admin/api/v1/users', {
      ...boss,
      body: { name: 'mallory', role: 'officer', password: PASSWORD, temporary: false },
    });
    const recovered = user.status === 201 ? (await recover(await api.login('mallory', PASSWORD))).status : undefined;
    assert.notEqual(recovered, 200, 'the archived key was recovered by an Officer the CA Administrator made');
    assert.equal(user.status, 403, user.text);
    const auditor = await api.call('POST', '/admin/api/v1/users', {
      ...boss,
      body: { name: 'aud', role: 'auditor', password: PASSWORD, temporary: false },
    });
    assert.equal(auditor.status, 201, 'roles within its own permissions it may give');
    const promote = await api.call('PUT', '/admin/api/v1/users/aud/role', { ...boss, body: { role: 'officer' } });
    assert.equal(promote.status, 403, promote.text);

    const reset = await api.call('PUT', '/admin/api/v1/users/officer1/password', {
      ...boss,
      body: { password: 'taken over by boss', temporary: false },
    });
    assert.equal(reset.status, 403, `setting an officer's password is taking the account: ${reset.text}`);
    const bind = await api.call('PUT', '/admin/api/v1/users/officer1/certificate', { ...boss, body: { serial: officerCertSerial } });
    assert.equal(bind.status, 403, `binding a login certificate to an officer is taking the account: ${bind.text}`);
    const disable = await api.call('POST', '/admin/api/v1/users/officer1/disable', boss);
    assert.equal(disable.status, 200, 'taking powers away needs no grant');
    const enable = await api.call('POST', '/admin/api/v1/users/officer1/enable', boss);
    assert.equal(enable.status, 403, `enabling an officer gives the role back: ${enable.text}`);
    await cli(['users', 'enable', 'officer1']);
    const officer = await api.login('officer1', PASSWORD);
    assert.equal(officer.response.status, 200, 'the password was not changed by the refused reset');
    const legit = await recover(officer);
    assert.equal(legit.status, 200, `an officer recovers the key: ${legit.text}`);
  });

  it('every grant is audited with who granted it, every refused one as denied', async () => {
    const { rows } = await cf.pool.query(
      "SELECT action, object, result, details FROM audit_log WHERE actor = 'user:boss' AND result = 'denied' ORDER BY seq",
    );
    assert.deepEqual(
      rows.map((r) => `${r.action} ${r.object}`),
      [
        'token.create boss',
        'user.add mallory',
        'user.role aud',
        'user.password.reset officer1',
        'user.certificate.bind officer1',
        'user.enable officer1',
      ],
    );
    for (const r of rows) assert.ok(r.details.missing.includes('keys:recover'), JSON.stringify(r.details));
    const granted = await cf.pool.query(
      "SELECT actor, details FROM audit_log WHERE action = 'user.add' AND object = 'aud' AND result = 'ok'",
    );
    assert.equal(granted.rows[0].actor, 'user:boss');
    assert.equal(granted.rows[0].details.grantedBy, 'user:boss');
    assert.deepEqual(granted.rows[0].details.permissions.includes('audit:read'), true);
    const recovered = await cf.pool.query("SELECT actor FROM audit_log WHERE action = 'key.recover'");
    assert.deepEqual(
      recovered.rows.map((r) => r.actor),
      ['user:officer1'],
      'only the officer recovered a key',
    );
  });

  it('API tokens belong to a user: at most its role, dead when it is disabled or demoted, 90 days by default', async () => {
    const over = await cf.cli(['tokens', 'create', '--name', 'too-much', '--user', 'aud', '--role', 'officer']);
    assert.notEqual(over.code, 0, 'a token never holds more than its user');
    assert.match(over.stderr, /holds at most its user's permissions/);
    const long = await cf.cli(['tokens', 'create', '--name', 'forever', '--user', 'officer1', '--expires-days', '3650']);
    assert.notEqual(long.code, 0, 'no token lives for years');
    const made = JSON.parse((await cli(['--json', 'tokens', 'create', '--name', 'automation', '--user', 'officer1'])).stdout);
    assert.equal(made.role, 'officer', "the user's role by default");
    assert.equal(made.owner, 'officer1');
    const days = (new Date(made.expiresAt).getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days <= 90, `expires in 90 days (${days})`);
    const token = { token: made.token as string };
    assert.equal((await api.call('GET', '/admin/api/v1/approvals', token)).status, 200);

    await cli(['users', 'disable', 'officer1']);
    const disabled = await api.call('GET', '/admin/api/v1/approvals', token);
    assert.equal(disabled.status, 401, 'the token of a disabled user is dead');
    assert.equal(disabled.json.error.rule, 'auth.token.owner');
    await cli(['users', 'enable', 'officer1']);
    assert.equal((await api.call('GET', '/admin/api/v1/approvals', token)).status, 200);
    await cli(['users', 'role', 'officer1', 'auditor']);
    const demoted = await api.call('GET', '/admin/api/v1/approvals', token);
    assert.equal(demoted.status, 401, 'the token of a demoted user is dead');
    assert.equal(demoted.json.error.rule, 'auth.token.owner');
    await cli(['users', 'role', 'officer1', 'officer']);
  });

  it('the approval queue shows what an officer decides on: every SAN, the key type, the requester', async () => {
    const body = await est.csrBody('innocent', '/CN=innocent.example.test', { san: 'DNS:victim.example.test,IP:192.0.2.7' });
    const r = await est.curl('/approve/simpleenroll', { user: `dev:${PASSWORD}`, data: body });
    assert.equal(r.status, 202, r.body.toString());
    const officer = await api.login('officer1', PASSWORD);
    const queue = await eventually('the request in the queue', 30_000, async () => {
      const q = await api.call('GET', '/admin/api/v1/approvals', officer);
      return q.json?.length ? q.json : undefined;
    });
    assert.equal(queue[0].subject, 'CN=innocent.example.test');
    assert.deepEqual(queue[0].sans, ['dns:victim.example.test', 'ip:192.0.2.7']);
    assert.equal(queue[0].keyType, 'EC P-256');
    assert.equal(queue[0].requester, 'dev');
    const page = await runTool('curl', [
      '-sS',
      '--cacert',
      join(cf.home, 'ca', 'root.pem'),
      '-H',
      `Cookie: ${officer.cookie}`,
      `https://localhost:${cf.adminPort}/approvals`,
    ]);
    assert.match(page.stdout, /dns:victim\.example\.test/);
    assert.match(page.stdout, /ip:192\.0\.2\.7/);
    assert.match(page.stdout, /EC P-256/);
  });
});
