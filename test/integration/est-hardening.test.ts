/**
 * EST edge cases of issue 11 (item 7), with curl and openssl as the device:
 * - the README's cacerts pipeline through GNU `base64 -d` (LF line breaks);
 * - a repeated request never hands out a certificate that was revoked or put on hold
 *   since, and one that expired starts a new enrollment;
 * - an Authorization header of another scheme does not block TLS client authentication;
 * - simplereenroll honours the label's allowCertAuth and applies the label's profile and
 *   issuing CA (issue 22); TLS client certificates of every issuing CA the label trusts work
 *   (after a second issuing CA is created), others are refused;
 * - serverkeygen that times out gives the enrollment up: the certificate signed after the
 *   key was thrown away is revoked, never left valid.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { estDevice, firstCert, type EstDevice } from '../helpers/est.ts';
import { eventually } from '../helpers/acme.ts';

describe('EST hardening', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let server: Awaited<ReturnType<TestInstance['startServer']>>;
  let device: EstDevice;
  let configFile: string;
  const password = 'hardening test password';
  const user = `maker:${password}`;

  const config = (ca?: object) => ({
    ...(ca ? { ca } : {}),
    profiles: [{ name: 'shortlived', extends: 'device', validitySeconds: 4, backdateSeconds: 0 }],
    est: {
      labels: [
        { name: 'strict', profile: 'tls-client', allowCertAuth: false, serverKeygen: false, reenrollLabels: ['', 'strict'] },
        { name: 'short', profile: 'shortlived' },
        { name: 'only2', profile: 'device', clientCertCas: ['second-issuing'] },
      ],
    },
  });

  before(async () => {
    configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-est-hardening-${process.pid}.json`);
    await writeFile(configFile, JSON.stringify(config()));
    cf = await createInstance({ CERTFLOW_CONFIG: configFile, CERTFLOW_EST_WAIT_SECONDS: '3' });
    worker = await cf.startWorker();
    server = await cf.startServer();
    device = estDevice(
      cf.home,
      `https://localhost:${cf.httpsPort}/.well-known/est`,
      join(cf.home, 'ca', 'root.pem'),
      join(cf.home, 'ca', 'chain.pem'),
    );
    assert.equal((await cf.cli(['est-client', 'add', '--name', 'maker', '--password', password])).code, 0);
  });
  after(async () => cf?.cleanup());

  const serialOf = (pem: string) => {
    const hex = new X509Certificate(pem).serialNumber.toLowerCase();
    return hex.length % 2 ? `0${hex}` : hex;
  };

  async function enroll(path: string, data: string, opts: Parameters<EstDevice['curl']>[1] = { user }): Promise<string> {
    const r = await device.curl(path, { data, ...opts });
    assert.equal(r.status, 200, `${path}: ${r.status} ${r.body}`);
    return firstCert(await device.pkcs7Certs(r.body));
  }

  async function certFile(name: string, pem: string): Promise<[string, string]> {
    const file = join(cf.home, `${name}.pem`);
    await writeFile(file, pem);
    return [file, join(cf.home, `${name}.key`)];
  }

  it('GET /cacerts pipes into GNU base64 -d and openssl as the README shows', async () => {
    const r = await runTool('sh', [
      '-c',
      `curl -sS --cacert "$1" https://localhost:${cf.httpsPort}/.well-known/est/cacerts | base64 -d | openssl pkcs7 -inform DER -print_certs`,
      'sh',
      join(cf.home, 'ca', 'root.pem'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /subject=CN = certflow Issuing CA 1/);
  });

  it('a repeated request: not after hold or revocation; a new certificate after expiry', async () => {
    const body = await device.csrBody('repeat', '/CN=repeat-device');
    const cert = await enroll('/simpleenroll', body);
    const serial = serialOf(cert);
    assert.equal((await cf.cli(['cert', 'hold', serial])).code, 0);
    const held = await device.curl('/simpleenroll', { data: body, user });
    assert.equal(held.status, 403);
    assert.match(held.body.toString(), /is on hold/);
    assert.equal((await cf.cli(['cert', 'release', serial])).code, 0);
    assert.equal(await enroll('/simpleenroll', body), cert, 'released: the same certificate again');
    assert.equal((await cf.cli(['cert', 'revoke', serial, '--reason', 'keyCompromise'])).code, 0);
    const revoked = await device.curl('/simpleenroll', { data: body, user });
    assert.equal(revoked.status, 403);
    assert.match(revoked.body.toString(), /was revoked \(keyCompromise\); enroll with a new key/);

    const shortBody = await device.csrBody('short', '/CN=short-device');
    const first = await enroll('/short/simpleenroll', shortBody);
    await sleep(Math.max(0, new Date(new X509Certificate(first).validTo).getTime() - Date.now()) + 1500);
    const second = await enroll('/short/simpleenroll', shortBody);
    assert.notEqual(serialOf(second), serialOf(first), 'a new certificate, not the expired one');
  });

  let deviceCert: string;
  it('TLS client authentication works with an Authorization header of another scheme', async () => {
    deviceCert = await enroll('/simpleenroll', await device.csrBody('dev', '/CN=dev-1', { san: 'DNS:dev-1.example.test' }));
    const cert = await certFile('dev', deviceCert);
    // A certificate alone asks for its own names (test/security/est-client-cert.test.ts).
    const body = await device.csrBody('dev-other', '/CN=dev-1', { san: 'DNS:dev-1.example.test' });
    const r = await device.curl('/simpleenroll', { data: body, cert, headers: ['Authorization: Bearer some-token'] });
    assert.equal(r.status, 200, r.body.toString());
  });

  it("simplereenroll: the label's allowCertAuth, the label's profile and CA", async () => {
    const cert = await certFile('dev', deviceCert);
    const body = await device.csrBody('dev-renew', '/CN=dev-1', { san: 'DNS:dev-1.example.test' });
    const alone = await device.curl('/strict/simplereenroll', { data: body, cert });
    assert.equal(alone.status, 401);
    assert.match(alone.body.toString(), /does not accept certificate authentication alone/);
    const renewed = await enroll('/strict/simplereenroll', body, { cert, user });
    const { rows } = await cf.pool.query<{ profile: string; ca_name: string; replaces: string }>(
      'SELECT profile, ca_name, replaces FROM certificates WHERE serial = $1',
      [serialOf(renewed)],
    );
    assert.deepEqual(
      rows[0],
      { profile: 'tls-client', ca_name: 'certflow-issuing', replaces: serialOf(deviceCert) },
      "the renewal takes the label's profile (reenrollLabels lets 'strict' renew the default label's certificates)",
    );
  });

  it('TLS client certificates of every issuing CA the label trusts; others refused', async () => {
    // A second issuing CA: the configuration names a new one, the worker creates it.
    await writeFile(
      configFile,
      JSON.stringify(config({ issuingName: 'second-issuing', issuingSubject: 'CN=certflow Issuing CA 2,O=certflow' })),
    );
    await server.stop();
    await worker.stop();
    worker = await cf.startWorker();
    server = await cf.startServer();
    const oldCert = await certFile('dev', deviceCert);
    // Issued by the first CA: still accepted where the label trusts every CA.
    const own = { san: 'DNS:dev-1.example.test' };
    const viaOld = await enroll('/simpleenroll', await device.csrBody('dev-more', '/CN=dev-1', own), { cert: oldCert });
    assert.match(new X509Certificate(viaOld).issuer, /Issuing CA 2/, 'new enrollments come from the new CA');
    const refused = await device.curl('/only2/simpleenroll', { data: await device.csrBody('x', '/CN=x'), cert: oldCert });
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /which this EST label does not trust/);
    const newCert = await certFile('dev-more', viaOld);
    await enroll('/only2/simpleenroll', await device.csrBody('y', '/CN=dev-1', own), { cert: newCert });
  });

  it('serverkeygen that times out: given up, and the certificate signed afterwards is revoked', async () => {
    await worker.stop();
    // Signing takes 14 s; serverkeygen waits 10 s, then gives up.
    worker = await cf.startWorker({}, { signingFaults: { slowTokenMs: 14_000 } });
    const r = await device.curl('/serverkeygen', { data: await device.csrBody('kg', '/CN=keygen-timeout'), user });
    assert.equal(r.status, 503, r.body.toString());
    assert.ok(Number(r.headers['retry-after']) > 0);
    const row = await eventually('the abandoned enrollment', 60_000, async () => {
      const { rows } = await cf.pool.query<{ state: string; serial: string | null; status: string | null }>(
        `SELECT r.state, r.serial, c.status FROM issuance_requests r LEFT JOIN certificates c ON c.serial = r.serial
         WHERE r.kind = 'serverkeygen' AND r.state = 'abandoned'`,
      );
      return rows[0]?.status === 'revoked' ? rows[0] : undefined;
    });
    assert.ok(row.serial);
    await worker.stop();
    worker = await cf.startWorker();
  });
});
