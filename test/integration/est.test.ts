/**
 * EST (RFC 7030 / RFC 8951) with curl and openssl as the device: cacerts, csrattrs,
 * simpleenroll (HTTP Basic), simplereenroll (TLS client certificate), serverkeygen,
 * the errors a device can get, manual approval end to end, and a worker killed while
 * enrollments wait for signing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { estDevice, firstCert, type EstDevice, type HttpResult } from '../helpers/est.ts';

describe('EST server', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let root: string;
  let chain: string;
  let base: string;
  const password = 'correct horse battery staple';

  let curl: EstDevice['curl'];
  let csrBody: EstDevice['csrBody'];
  let pkcs7Certs: EstDevice['pkcs7Certs'];
  let verify: EstDevice['verify'];

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-est-${process.pid}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        est: {
          labels: [
            { name: 'approve', profile: 'device', requireApproval: true },
            { name: 'clients', profile: 'tls-client', allowCertAuth: false, serverKeygen: false },
          ],
        },
      }),
    );
    cf = await createInstance({ CERTFLOW_CONFIG: configFile, CERTFLOW_EST_WAIT_SECONDS: '3' });
    worker = await cf.startWorker();
    await cf.startServer();
    root = join(cf.home, 'ca', 'root.pem');
    chain = join(cf.home, 'ca', 'chain.pem');
    base = `https://localhost:${cf.httpsPort}/.well-known/est`;
    ({ curl, csrBody, pkcs7Certs, verify } = estDevice(cf.home, base, root, chain));
    for (const [name, extra] of [
      ['device-maker', []],
      ['only-clients', ['--label', 'clients']],
      ['disabled-one', []],
    ] as const) {
      const r = await cf.cli(['est-client', 'add', '--name', name, '--password', password, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await cf.cli(['est-client', 'disable', 'disabled-one'])).code, 0);
  });
  after(async () => cf?.cleanup());

  it('GET /cacerts: certs-only PKCS#7 with the issuing CA and the root, no authentication', async () => {
    const r = await curl('/cacerts');
    assert.equal(r.status, 200, r.body.toString());
    assert.match(r.headers['content-type']!, /^application\/pkcs7-mime/);
    const certs = await pkcs7Certs(r.body);
    assert.match(certs, /subject=CN = certflow Issuing CA 1, O = certflow/);
    assert.match(certs, /subject=CN = certflow Root CA, O = certflow/);
    assert.equal((await curl('/approve/cacerts')).status, 200);
    assert.equal((await curl('/nope/cacerts')).status, 404);
  });

  it("GET /csrattrs: the profile's key type as CsrAttrs", async () => {
    const r = await curl('/csrattrs');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/csrattrs');
    const file = join(cf.home, 'attrs.der');
    await writeFile(file, Buffer.from(r.body.toString('ascii'), 'base64'));
    const parsed = await runTool('openssl', ['asn1parse', '-inform', 'DER', '-in', file]);
    assert.equal(parsed.code, 0, parsed.stderr);
    assert.match(parsed.stdout, /id-ecPublicKey/);
    assert.match(parsed.stdout, /prime256v1/);
  });

  let deviceCert: string;
  let deviceCertFile: string;
  it('POST /simpleenroll with HTTP Basic: a certificate that openssl verifies', async () => {
    const body = await csrBody('device1', '/CN=device-1/serialNumber=SN0001', { san: 'DNS:device-1.example.test' });
    const r = await curl('/simpleenroll', { data: body, user: `device-maker:${password}` });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
    deviceCert = firstCert(await pkcs7Certs(r.body));
    await verify(deviceCert);
    const x = new X509Certificate(deviceCert);
    assert.match(x.subject, /CN=device-1/);
    assert.match(x.subject, /serialNumber=SN0001/);
    assert.equal(x.checkPrivateKey(createPrivateKey(await readFile(join(cf.home, 'device1.key')))), true);
    deviceCertFile = join(cf.home, 'device1.pem');
    await writeFile(deviceCertFile, deviceCert);

    // RFC 8951: base64 without line breaks, and a Content-Transfer-Encoding header, work too.
    const oneLine = await csrBody('device2', '/CN=device-2', { oneLine: true });
    const r2 = await curl('/simpleenroll', { data: oneLine, user: `device-maker:${password}` });
    assert.equal(r2.status, 200, r2.body.toString());
    // Sending the same request again returns the same certificate (devices re-send while they poll).
    const again = await curl('/simpleenroll', { data: oneLine, user: `device-maker:${password}` });
    assert.equal(again.status, 200);
    assert.equal(firstCert(await pkcs7Certs(again.body)), firstCert(await pkcs7Certs(r2.body)));
  });

  it('POST /simplereenroll with the current certificate as TLS client certificate', async () => {
    const body = await csrBody('device1-renew', '/CN=device-1/serialNumber=SN0001', { san: 'DNS:device-1.example.test' });
    const r = await curl('/simplereenroll', { data: body, cert: [deviceCertFile, join(cf.home, 'device1.key')] });
    assert.equal(r.status, 200, r.body.toString());
    const renewed = firstCert(await pkcs7Certs(r.body));
    await verify(renewed);
    const serialOf = (pem: string) => {
      const hex = new X509Certificate(pem).serialNumber.toLowerCase();
      return hex.length % 2 ? `0${hex}` : hex;
    };
    const oldSerial = serialOf(deviceCert);
    const newSerial = serialOf(renewed);
    assert.notEqual(newSerial, oldSerial);
    const { rows } = await cf.pool.query('SELECT replaces FROM certificates WHERE serial = $1', [newSerial]);
    assert.equal(rows[0]?.replaces, oldSerial, 'the new certificate is linked to the one it renews');

    const otherSubject = await csrBody('device1-other', '/CN=someone-else', { san: 'DNS:device-1.example.test' });
    const bad = await curl('/simplereenroll', { data: otherSubject, cert: [deviceCertFile, join(cf.home, 'device1.key')] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /subject and subjectAltName/);
    const noCert = await curl('/simplereenroll', { data: body, user: `device-maker:${password}` });
    assert.equal(noCert.status, 401);
  });

  it('POST /serverkeygen: a private key (PKCS#8) and its certificate, multipart/mixed', async () => {
    const body = await csrBody('keygen', '/CN=keygen-device');
    const r = await curl('/serverkeygen', { data: body, user: `device-maker:${password}` });
    assert.equal(r.status, 200, r.body.toString());
    const type = r.headers['content-type']!;
    const boundary = /boundary="?([^";]+)"?/.exec(type)?.[1];
    assert.ok(type.startsWith('multipart/mixed') && boundary, type);
    const parts = r.body
      .toString()
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((p) => {
        const [head, ...rest] = p.split('\r\n\r\n');
        return { head: head!, body: rest.join('\r\n\r\n').trim() };
      });
    const keyPart = parts.find((p) => /application\/pkcs8/.test(p.head));
    const certPart = parts.find((p) => /application\/pkcs7-mime/.test(p.head));
    assert.ok(keyPart && certPart, r.body.toString());
    const key = createPrivateKey({ key: Buffer.from(keyPart.body, 'base64'), format: 'der', type: 'pkcs8' });
    const cert = firstCert(await pkcs7Certs(Buffer.from(certPart.body)));
    await verify(cert);
    assert.equal(new X509Certificate(cert).checkPrivateKey(key), true, 'the certificate is for the generated key');
    assert.notEqual(
      createPublicKey(key).export({ type: 'spki', format: 'pem' }),
      createPublicKey(createPrivateKey(await readFile(join(cf.home, 'keygen.key')))).export({ type: 'spki', format: 'pem' }),
      "a new key, not the device's",
    );
    assert.equal((await curl('/clients/serverkeygen', { data: body, user: `only-clients:${password}` })).status, 403);
  });

  it('answers device mistakes with precise statuses, never 500', async () => {
    const body = await csrBody('neg', '/CN=neg-device');
    const cases: Array<[string, Parameters<typeof curl>[1], number, RegExp]> = [
      ['/simpleenroll', { data: body }, 401, /authentication/],
      ['/simpleenroll', { data: body, user: `device-maker:wrong password!!` }, 401, /wrong user name or password/],
      ['/simpleenroll', { data: body, user: `nobody:${password}` }, 401, /wrong user name or password/],
      ['/simpleenroll', { data: body, user: `disabled-one:${password}` }, 403, /disabled/],
      ['/approve/simpleenroll', { data: body, user: `only-clients:${password}` }, 403, /may not use label "approve"/],
      ['/nope/simpleenroll', { data: body, user: `device-maker:${password}` }, 404, /unknown EST label "nope"/],
      ['/simpleenroll', { data: 'this is not base64 !!!', user: `device-maker:${password}` }, 400, /base64/],
      ['/simpleenroll', { data: Buffer.from('not a CSR at all').toString('base64'), user: `device-maker:${password}` }, 400, /request/i],
      ['/simpleenroll', { data: body, type: 'text/plain', user: `device-maker:${password}` }, 415, /application\/pkcs10/],
      ['/simpleenroll', { data: await csrBody('weak', '/CN=weak', { key: 'rsa:1024' }), user: `device-maker:${password}` }, 400, /1024/],
      ['/cacerts', { method: 'POST', data: body }, 405, /./],
    ];
    for (const [path, opts, status, message] of cases) {
      const r = await curl(path, opts);
      assert.equal(r.status, status, `${path} ${JSON.stringify({ ...opts, data: undefined })}: ${r.status} ${r.body}`);
      assert.match(r.body.toString(), message);
      if (status === 401) assert.match(r.headers['www-authenticate'] ?? '', /^Basic realm="certflow EST"/);
    }
  });

  it('manual approval: 202 + Retry-After, approve from the CLI, then 200; reject gives 403', async () => {
    const body = await csrBody('approval', '/CN=needs-approval');
    const first = await curl('/approve/simpleenroll', { data: body, user: `device-maker:${password}` });
    assert.equal(first.status, 202, first.body.toString());
    assert.ok(Number(first.headers['retry-after']) > 0);
    const listed = JSON.parse((await cf.cli(['--json', 'approvals', 'list'])).stdout) as Array<{
      id: string;
      subject: string;
      label: string;
    }>;
    const mine = listed.find((r) => r.subject === 'CN=needs-approval');
    assert.ok(mine, JSON.stringify(listed));
    assert.equal(mine.label, 'approve');
    assert.equal((await curl('/approve/simpleenroll', { data: body, user: `device-maker:${password}` })).status, 202, 'still waiting');
    const approve = await cf.cli(['approvals', 'approve', mine.id]);
    assert.equal(approve.code, 0, approve.stderr);
    let r: HttpResult | undefined;
    for (let i = 0; i < 40; i++) {
      r = await curl('/approve/simpleenroll', { data: body, user: `device-maker:${password}` });
      if (r.status !== 202) break;
      await sleep(250);
    }
    assert.equal(r!.status, 200, r!.body.toString());
    await verify(firstCert(await pkcs7Certs(r!.body)));
    const twice = await cf.cli(['approvals', 'approve', mine.id]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /is issued, not awaiting approval/);

    const other = await csrBody('rejected', '/CN=will-be-rejected');
    assert.equal((await curl('/approve/simpleenroll', { data: other, user: `device-maker:${password}` })).status, 202);
    const pending = JSON.parse((await cf.cli(['--json', 'approvals', 'list'])).stdout) as Array<{ id: string; subject: string }>;
    const victim = pending.find((p) => p.subject === 'CN=will-be-rejected')!;
    const rejecting = await cf.cli(['approvals', 'reject', victim.id, '--reason', 'unknown device']);
    assert.equal(rejecting.code, 0, rejecting.stderr);
    let rejected: HttpResult | undefined;
    for (let i = 0; i < 40; i++) {
      rejected = await curl('/approve/simpleenroll', { data: other, user: `device-maker:${password}` });
      if (rejected.status !== 202) break;
      await sleep(250);
    }
    assert.equal(rejected!.status, 403);
    assert.match(rejected!.body.toString(), /rejected by operator:.*unknown device/);
    // Each request's trail: the device asked, an operator decided (issuance has its own entry).
    const trail = async (id: string) =>
      (await cf.pool.query('SELECT action, actor FROM audit_log WHERE object = $1 ORDER BY seq', [id])).rows.map(
        (x) => `${x.action} ${x.actor.replace(/:.*/, ':…')}`,
      );
    assert.deepEqual(await trail(mine.id), ['request.create est:…', 'request.approve operator:…']);
    assert.deepEqual(await trail(victim.id), ['request.create est:…', 'request.reject operator:…']);
  });

  it('enrollments waiting for signing when the worker is killed all complete after a restart', async () => {
    await worker.stop();
    const doomed = await cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 600_000 } });
    const bodies = await Promise.all([1, 2, 3, 4, 5].map((i) => csrBody(`crash${i}`, `/CN=crash-device-${i}`)));
    const firstAnswers = await Promise.all(bodies.map((data) => curl('/simpleenroll', { data, user: `device-maker:${password}` })));
    for (const a of firstAnswers) assert.equal(a.status, 202, 'the certificate is not ready: come back later');
    for (let i = 0; i < 80; i++) {
      const { rows } = await cf.pool.query(
        "SELECT count(*)::int AS n FROM certificates WHERE status = 'signing' AND subject LIKE 'CN=crash-device-%'",
      );
      if (rows[0].n === 5) break;
      await sleep(250);
    }
    process.kill(doomed.pid!, 'SIGKILL');
    await doomed.exited;
    worker = await cf.startWorker();
    for (const data of bodies) {
      let r: HttpResult | undefined;
      for (let i = 0; i < 60; i++) {
        r = await curl('/simpleenroll', { data, user: `device-maker:${password}` });
        if (r.status !== 202) break;
        await sleep(500);
      }
      assert.equal(r!.status, 200, r!.body.toString());
    }
    const { rows } = await cf.pool.query(
      "SELECT request_id, count(*)::int AS n, min(status) AS status FROM certificates WHERE subject LIKE 'CN=crash-device-%' GROUP BY request_id",
    );
    assert.equal(rows.length, 5);
    for (const row of rows) {
      assert.equal(row.n, 1, `exactly one certificate for ${row.request_id}`);
      assert.equal(row.status, 'valid');
    }
  });
});
