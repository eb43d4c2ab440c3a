/**
 * certflow's EST server (RFC 7030) against an independent client, globalsign/est's
 * `estclient` (Go): CA certificates, CSR attributes, enrollment with HTTP Basic auth,
 * re-enrollment authenticated by the current certificate as TLS client certificate,
 * server-side key generation, an enrollment under a label (/.well-known/est/<label>/), and
 * a wrong password refused with 401. Every certificate is checked with openssl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type CliResult, type TestInstance } from '../helpers/certflow.ts';
import { estclientBuildHint, estclientPath, estclientSkip, runEstclient } from '../helpers/estclient.ts';

const skip = estclientSkip();

const CLIENT = 'estclient-dev';
const PASSWORD = 'a-long-enough-password';
/** An EST label configured for this instance: /.well-known/est/iot/... */
const LABEL = 'iot';

function describeRun(what: string, r: CliResult): string {
  return `${what} exited ${r.code}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;
}

function assertOk(what: string, r: CliResult): void {
  assert.equal(r.code, 0, describeRun(what, r));
}

/** Runs openssl and returns its stdout; fails the test on a non-zero exit. */
async function openssl(args: string[]): Promise<string> {
  const r = await runTool('openssl', args);
  assertOk(`openssl ${args.join(' ')}`, r);
  return r.stdout;
}

/** POSTs over HTTPS, trusting only `ca`; resolves with the status, headers and body. */
function httpsPost(
  url: string,
  ca: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', ca, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const h: Record<string, string | undefined> = {};
          for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: h, body: text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The base64 bodies of the certificates in a PEM text, whitespace removed. */
function certBodies(pem: string): string[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => block.replace(/-----[^-]+-----|\s/g, ''));
}

describe('EST with globalsign/est estclient', { skip }, () => {
  let cf: TestInstance;
  let work: string;
  let rootFile: string;
  let chainFile: string;
  let server: string;

  /** estclient <command> against our server, trusting only our root (explicit anchor). */
  const est = (command: string, args: string[]): Promise<CliResult> =>
    runEstclient([command, '-server', server, '-explicit', rootFile, '-timeout', '90s', ...args], { cwd: work });

  const file = (name: string): string => join(work, name);

  const subject = async (cert: string): Promise<string> => (await openssl(['x509', '-in', cert, '-noout', '-subject'])).trim();
  const serial = async (cert: string): Promise<string> => (await openssl(['x509', '-in', cert, '-noout', '-serial'])).trim();
  const certPublicKey = (cert: string): Promise<string> => openssl(['x509', '-in', cert, '-noout', '-pubkey']);
  const keyPublicKey = (key: string): Promise<string> => openssl(['pkey', '-in', key, '-pubout']);

  /** openssl verify with our root as the only trust anchor and the issuing CAs as untrusted intermediates. */
  async function assertVerifies(cert: string): Promise<void> {
    const r = await runTool('openssl', ['verify', '-CAfile', rootFile, '-untrusted', chainFile, cert]);
    assertOk(`openssl verify ${cert}`, r);
    assert.match(r.stdout, /: OK\s*$/);
  }

  before(async () => {
    if (!estclientPath()) throw new Error(`estclient not found; ${estclientBuildHint}`);
    cf = await createInstance();
    work = await mkdtemp(join(tmpdir(), 'certflow-estclient-'));
    // A second EST label besides the default (/.well-known/est/) one.
    await writeFile(join(cf.home, 'config.json'), JSON.stringify({ est: { labels: [{ name: LABEL, profile: 'device' }] } }, null, 2));
    await cf.startWorker();
    await cf.startServer();
    rootFile = join(cf.home, 'ca', 'root.pem');
    chainFile = join(cf.home, 'ca', 'chain.pem');
    server = `localhost:${cf.httpsPort}`;
    const add = await cf.cli(['est-client', 'add', '--name', CLIENT, '--password', PASSWORD]);
    assertOk('certflow est-client add', add);
  });
  after(async () => {
    await cf?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('cacerts: returns the issuing CA and the root, and -rootout picks our root', async () => {
    const out = file('cacerts.pem');
    assertOk('estclient cacerts', await est('cacerts', ['-out', out]));
    const bodies = certBodies(await readFile(out, 'utf8'));
    assert.ok(bodies.length >= 2, `cacerts returned ${bodies.length} certificate(s), expected the issuing CA and the root`);
    const subjects: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const one = file(`cacert-${i}.pem`);
      await writeFile(one, `-----BEGIN CERTIFICATE-----\n${body.replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`);
      subjects.push(await subject(one));
    }
    assert.ok(
      subjects.some((s) => s.includes('certflow Issuing CA 1')),
      `no issuing CA among: ${subjects.join(' | ')}`,
    );
    assert.ok(
      subjects.some((s) => s.includes('certflow Root CA')),
      `no root CA among: ${subjects.join(' | ')}`,
    );

    const rootOut = file('cacerts-root.pem');
    assertOk('estclient cacerts -rootout', await est('cacerts', ['-rootout', '-out', rootOut]));
    assert.deepEqual(certBodies(await readFile(rootOut, 'utf8')), certBodies(await readFile(rootFile, 'utf8')));
  });

  it('csrattrs: answers without authentication', async () => {
    const r = await est('csrattrs', []);
    assertOk('estclient csrattrs', r);
    // estclient prints one "OID     : <oid>" or "Type    : <oid>" (+ value lines) per item.
    for (const line of r.stdout.split('\n').filter(Boolean)) assert.match(line, /^(OID|Type| Value| Values| +)\s*: /, r.stdout);
  });

  it('enroll: HTTP Basic auth, estclient-made CSR for CN=device-1, certificate verifies', async () => {
    await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('device-1.key')]);
    const r = await est('enroll', [
      '-user',
      CLIENT,
      '-pass',
      PASSWORD,
      '-key',
      file('device-1.key'),
      '-cn',
      'device-1',
      '-out',
      file('device-1.pem'),
    ]);
    assertOk('estclient enroll', r);
    await assertVerifies(file('device-1.pem'));
    assert.match(await subject(file('device-1.pem')), /CN ?= ?device-1(,|$)/);
    assert.equal(await certPublicKey(file('device-1.pem')), await keyPublicKey(file('device-1.key')));
  });

  it('reenroll: the current certificate as TLS client certificate yields a new one, same subject', async () => {
    assert.ok(existsSync(file('device-1.pem')), 'needs the certificate from the enroll test');
    // The client certificate with its issuing CA, as a device presents it.
    await writeFile(file('device-1-chain.pem'), (await readFile(file('device-1.pem'), 'utf8')) + (await readFile(chainFile, 'utf8')));
    const r = await est('reenroll', [
      '-key',
      file('device-1.key'),
      '-certs',
      file('device-1-chain.pem'),
      '-out',
      file('device-1-renewed.pem'),
    ]);
    assertOk('estclient reenroll', r);
    await assertVerifies(file('device-1-renewed.pem'));
    assert.equal(await subject(file('device-1-renewed.pem')), await subject(file('device-1.pem')));
    assert.notEqual(await serial(file('device-1-renewed.pem')), await serial(file('device-1.pem')));
    assert.equal(await certPublicKey(file('device-1-renewed.pem')), await keyPublicKey(file('device-1.key')));
  });

  it('serverkeygen: the server makes the key; key and certificate match', async () => {
    const r = await est('serverkeygen', [
      '-user',
      CLIENT,
      '-pass',
      PASSWORD,
      '-cn',
      'device-3',
      '-keyout',
      file('device-3.key'),
      '-out',
      file('device-3.pem'),
    ]);
    assertOk('estclient serverkeygen', r);
    const key = await readFile(file('device-3.key'), 'utf8');
    assert.match(key, /-----BEGIN PRIVATE KEY-----/, 'expected an unencrypted PKCS#8 key (application/pkcs8 part)');
    await assertVerifies(file('device-3.pem'));
    assert.match(await subject(file('device-3.pem')), /CN ?= ?device-3(,|$)/);
    assert.equal(await certPublicKey(file('device-3.pem')), await keyPublicKey(file('device-3.key')));
  });

  it(`enroll under the label "${LABEL}" (-aps) with an openssl CSR`, async () => {
    const csr = await opensslCsr(work, 'device-2', { subj: '/CN=device-2' });
    const r = await est('enroll', ['-aps', LABEL, '-user', CLIENT, '-pass', PASSWORD, '-csr', csr, '-out', file('device-2.pem')]);
    assertOk(`estclient enroll -aps ${LABEL}`, r);
    await assertVerifies(file('device-2.pem'));
    assert.match(await subject(file('device-2.pem')), /CN ?= ?device-2(,|$)/);
    assert.equal(await certPublicKey(file('device-2.pem')), await keyPublicKey(file('device-2.key')));
  });

  it('a wrong password or no credentials: refused with 401', async () => {
    if (!existsSync(file('device-1.key'))) {
      await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('device-1.key')]);
    }
    // estclient prints the body of a text/plain error (certflow: "wrong user name or
    // password"), and the status text only for an empty body; the status itself is checked
    // on the wire below with the same request.
    const refused = /401|unauthori[sz]ed|wrong user name or password|requires authentication/i;
    const wrong = await est('enroll', [
      '-user',
      CLIENT,
      '-pass',
      'not-the-right-password',
      '-key',
      file('device-1.key'),
      '-cn',
      'device-1',
      '-out',
      file('wrong.pem'),
    ]);
    assert.notEqual(wrong.code, 0, describeRun('estclient enroll with a wrong password', wrong));
    assert.match(wrong.stderr, /failed to get certificate/, describeRun('estclient enroll with a wrong password', wrong));
    assert.match(wrong.stderr, refused, describeRun('estclient enroll with a wrong password', wrong));
    assert.ok(!existsSync(file('wrong.pem')));

    const none = await est('enroll', ['-key', file('device-1.key'), '-cn', 'device-1', '-out', file('none.pem')]);
    assert.notEqual(none.code, 0, describeRun('estclient enroll without credentials', none));
    assert.match(none.stderr, refused, describeRun('estclient enroll without credentials', none));

    const csr = await opensslCsr(work, 'wire', { subj: '/CN=device-1' });
    const body = (await readFile(csr, 'utf8')).replace(/-----[^-]+-----/g, '').trim() + '\n';
    for (const [what, authorization] of [
      ['a wrong password', `Basic ${Buffer.from(`${CLIENT}:not-the-right-password`).toString('base64')}`],
      ['no credentials', undefined],
    ] as const) {
      const res = await httpsPost(
        `https://localhost:${cf.httpsPort}/.well-known/est/simpleenroll`,
        await readFile(rootFile, 'utf8'),
        body,
        {
          'Content-Type': 'application/pkcs10',
          'Content-Transfer-Encoding': 'base64',
          ...(authorization ? { Authorization: authorization } : {}),
        },
      );
      assert.equal(res.status, 401, `simpleenroll with ${what}: ${res.status} ${res.body}`);
      assert.match(res.headers['www-authenticate'] ?? '', /^Basic /i, `simpleenroll with ${what}: WWW-Authenticate`);
    }
  });
});
