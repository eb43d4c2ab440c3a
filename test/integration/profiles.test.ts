/**
 * Managed profiles (issue 19, part 8): certificate, key and CRL profiles created, edited,
 * cloned and retired with `certflow profiles`, checked against the configuration file's
 * schema before they are saved, versioned, audited with their diff, and in effect in the
 * running worker and server without a restart (an EST device gets the new validity at
 * once). A key profile refuses what it does not allow; a CRL profile with delta CRLs makes
 * revocations visible in a delta CRL that `openssl verify -use_deltas` reads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { cliFails, cliJson, opensslVerify, pemFile } from '../helpers/ca.ts';
import { estDevice, firstCert, type EstDevice } from '../helpers/est.ts';

const PASSWORD = 'profiles test password';
const DAY = 86_400;

describe('managed profiles', () => {
  let cf: TestInstance;
  let device: EstDevice;

  const apply = async (name: string, value: unknown) => {
    const file = join(cf.home, `${name}.json`);
    await writeFile(file, JSON.stringify(value));
    return file;
  };
  const validityDays = (pem: string) => {
    const x = new X509Certificate(pem);
    return Math.round((Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000);
  };

  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    await cf.startServer();
    device = estDevice(
      cf.home,
      `https://localhost:${cf.httpsPort}/.well-known/est`,
      join(cf.home, 'ca', 'root.pem'),
      join(cf.home, 'ca', 'chain.pem'),
    );
    assert.equal((await cf.cli(['est-client', 'add', '--name', 'dev', '--password', PASSWORD])).code, 0);
  });
  after(async () => cf?.cleanup());

  async function estEnroll(name: string): Promise<string> {
    const res = await device.curl('/simpleenroll', { data: await device.csrBody(name, `/CN=${name}`), user: `dev:${PASSWORD}` });
    assert.equal(res.status, 200, res.body.toString());
    return firstCert(await device.pkcs7Certs(res.body));
  }

  it('creates a key profile and a certificate profile that names it; the CLI issues with them at once', async () => {
    const file = await apply('new', {
      keyProfiles: [{ name: 'ec-p256-only', ec: { curves: ['P-256'] } }],
      profiles: [{ name: 'iot-short', extends: 'device', validitySeconds: 7 * DAY, keyProfile: 'ec-p256-only' }],
    });
    const results = await cliJson<Array<{ kind: string; name: string; version: number; action: string }>>(cf, [
      'profiles',
      'apply',
      '--file',
      file,
    ]);
    assert.deepEqual(
      results.map((r) => [r.kind, r.name, r.version, r.action]),
      [
        ['key', 'ec-p256-only', 1, 'create'],
        ['certificate', 'iot-short', 1, 'create'],
      ],
    );
    const csr = await opensslCsr(cf.home, 'iot', { subj: '/CN=iot-1' });
    const out = join(cf.home, 'iot.pem');
    const r = await cf.cli(['cert', 'issue', '--csr', csr, '--profile', 'iot-short', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(validityDays((await runTool('cat', [out])).stdout), 7);
    const rsa = await opensslCsr(cf.home, 'iot-rsa', { subj: '/CN=iot-2', key: 'rsa:2048' });
    await cliFails(cf, ['cert', 'issue', '--csr', rsa, '--profile', 'iot-short'], 2, /RSA/);
    const audited = await cf.pool.query("SELECT action, object, details FROM audit_log WHERE action LIKE 'profile.%' ORDER BY seq");
    assert.deepEqual(
      audited.rows.map((a) => [a.action, a.object]),
      [
        ['profile.create', 'key:ec-p256-only'],
        ['profile.create', 'certificate:iot-short'],
      ],
    );
    assert.ok(audited.rows[1].details.diff.some((d: { path: string; to: unknown }) => d.path === 'validitySeconds' && d.to === 7 * DAY));
  });

  it('edits a profile of the configuration (the seed): the running server and worker apply it without a restart', async () => {
    assert.equal(validityDays(await estEnroll('before-edit')), 730);
    const file = await apply('device', { name: 'device', validitySeconds: 30 * DAY });
    const [r] = await cliJson<Array<{ version: number; action: string; diff: Array<{ path: string; from: unknown; to: unknown }> }>>(cf, [
      'profiles',
      'apply',
      '--file',
      file,
    ]);
    assert.equal(r!.version, 1);
    assert.equal(r!.action, 'update');
    // The processes rebuild their profiles on the database notification: within moments.
    let days = 0;
    for (let i = 0; i < 20 && days !== 30; i++) {
      if (i) await sleep(250);
      days = validityDays(await estEnroll(`after-edit-${i}`));
    }
    assert.equal(days, 30);
    const show = await cliJson<{ source: string; versions: Array<{ version: number; diff: Array<{ path: string; to: unknown }> }> }>(cf, [
      'profiles',
      'show',
      'device',
    ]);
    assert.equal(show.source, 'managed, version 1');
    assert.deepEqual(
      show.versions[0]!.diff.map((d) => [d.path, d.to]),
      [['validitySeconds', 30 * DAY]],
    );
    // Applying the same definition again changes nothing.
    const again = await cliJson<Array<{ unchanged?: boolean }>>(cf, ['profiles', 'apply', '--file', file]);
    assert.equal(again[0]!.unchanged, true);
  });

  it('refuses what the configuration file would refuse, naming the field', async () => {
    await cliFails(cf, ['profiles', 'apply', '--file', await apply('typo', { name: 'typo', validitySecond: 10 })], 2, /validitySecond/);
    await cliFails(
      cf,
      ['profiles', 'apply', '--file', await apply('ext', { name: 'x', extends: 'nope' })],
      2,
      /extends unknown profile "nope"/,
    );
    await cliFails(
      cf,
      ['profiles', 'apply', '--file', await apply('kp', { name: 'y', keyProfile: 'nope' })],
      2,
      /unknown key profile "nope"/,
    );
    await cliFails(cf, ['profiles', 'apply', '--file', await apply('neg', { name: 'z', validitySeconds: -5 })], 2, /validitySeconds/);
    await cliFails(
      cf,
      ['profiles', 'apply', '--file', await apply('iss', { name: 'w', issuer: 'no-such-ca' })],
      2,
      /issuer "no-such-ca" is no CA/,
    );
    const { rows } = await cf.pool.query("SELECT count(*)::int AS n FROM managed_profiles WHERE name IN ('typo', 'x', 'y', 'z', 'w')");
    assert.equal(rows[0].n, 0, 'nothing saved');
  });

  it('clones and retires; a profile in use cannot be retired', async () => {
    const c = await cliJson<{ name: string; version: number }>(cf, ['profiles', 'clone', 'tls-client', '--as', 'partner-client']);
    assert.deepEqual([c.name, c.version], ['partner-client', 1]);
    await cliFails(
      cf,
      ['profiles', 'retire', 'device'],
      2,
      /certificate profile "device" is in use \(EST \/\.well-known\/est; CMP \/\.well-known\/cmp\)/,
    );
    await cliFails(cf, ['profiles', 'retire', 'ec-p256-only', '--kind', 'key'], 2, /in use \(certificate profile iot-short\)/);
    const r = await cliJson<{ version: number; action: string }>(cf, ['profiles', 'retire', 'partner-client']);
    assert.deepEqual([r.version, r.action], [2, 'retire']);
    const csr = await opensslCsr(cf.home, 'partner', { subj: '/CN=partner' });
    await cliFails(cf, ['cert', 'issue', '--csr', csr, '--profile', 'partner-client'], 2, /unknown certificate profile "partner-client"/);
    const list = await cliJson<Array<{ name: string; source: string }>>(cf, ['profiles', 'list']);
    assert.equal(list.find((p) => p.name === 'partner-client')?.source, 'retired');
  });

  it('a CRL profile with delta CRLs: a revocation is published in a delta CRL that openssl -use_deltas reads', async () => {
    await cliJson(cf, [
      'profiles',
      'apply',
      '--file',
      await apply('crl', {
        crlProfiles: [
          { name: 'daily-with-deltas', intervalSeconds: DAY, overlapSeconds: 3600, deltaCrls: true, deltaIntervalSeconds: 900 },
        ],
      }),
    ]);
    await cliJson(cf, ['ca', 'create', '--name', 'delta-ca', '--parent', 'certflow-root', '--crl-profile', 'daily-with-deltas']);
    const chain = await pemFile(cf, 'delta-chain.pem', (await cf.cli(['ca', 'export', 'delta-ca', '--chain'])).stdout);
    const csr = await opensslCsr(cf.home, 'dleaf', { subj: '/CN=dleaf.example.test', san: 'DNS:dleaf.example.test' });
    const out = join(cf.home, 'dleaf.pem');
    assert.equal((await cf.cli(['cert', 'issue', '--csr', csr, '--ca', 'delta-ca', '--out', out])).code, 0);
    const text = (await runTool('openssl', ['x509', '-in', out, '-noout', '-text'])).stdout;
    assert.match(text, /X509v3 Freshest CRL:\s+Full Name:\s+URI:http:\/\/localhost:\d+\/crl\/delta-ca\/delta\.crl/);

    const fetchCrl = async (path: string, file: string) => {
      const res = await fetch(`http://127.0.0.1:${cf.httpPort}${path}`);
      assert.equal(res.status, 200, path);
      const der = join(cf.home, `${file}.der`);
      await writeFile(der, Buffer.from(await res.arrayBuffer()));
      const pem = join(cf.home, `${file}.pem`);
      assert.equal((await runTool('openssl', ['crl', '-inform', 'DER', '-in', der, '-out', pem])).code, 0);
      return { pem, text: (await runTool('openssl', ['crl', '-in', pem, '-noout', '-text'])).stdout };
    };
    const full = await fetchCrl('/crl/delta-ca.crl', 'full');
    assert.match(full.text, /X509v3 Freshest CRL/);
    const serial = (await runTool('openssl', ['x509', '-in', out, '-noout', '-serial'])).stdout.trim().split('=')[1]!;
    assert.equal((await cf.cli(['cert', 'revoke', serial, '--reason', 'keyCompromise'])).code, 0);
    const delta = await fetchCrl('/crl/delta-ca/delta.crl', 'delta');
    assert.match(delta.text, /X509v3 Delta CRL Indicator: critical/);
    assert.match(delta.text, new RegExp(`Serial Number: ${serial}`));
    // The complete CRL is still the one from before the revocation: only the delta knows.
    assert.equal((await fetchCrl('/crl/delta-ca.crl', 'full-again')).text, full.text);
    const withoutDelta = await opensslVerify([
      '-crl_check',
      '-CAfile',
      join(cf.home, 'ca', 'root.pem'),
      '-untrusted',
      chain,
      '-CRLfile',
      full.pem,
      out,
    ]);
    assert.equal(withoutDelta.code, 0, withoutDelta.stdout + withoutDelta.stderr);
    const withDelta = await opensslVerify([
      '-crl_check',
      '-use_deltas',
      '-CAfile',
      join(cf.home, 'ca', 'root.pem'),
      '-untrusted',
      chain,
      '-CRLfile',
      full.pem,
      '-CRLfile',
      delta.pem,
      out,
    ]);
    assert.notEqual(withDelta.code, 0);
    assert.match(withDelta.stdout + withDelta.stderr, /certificate revoked/);
    await cliFails(cf, ['profiles', 'retire', 'daily-with-deltas', '--kind', 'crl'], 2, /in use \(CA delta-ca\)/);
  });
});
