/**
 * The foundation end to end: a worker bootstraps the CA, the server gets its TLS
 * certificate through the workflow, the CLI issues through the workflow, and a worker
 * killed with SIGKILL while the signing activity is pending still yields exactly one
 * certificate once it is restarted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('issuance through the workflow', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let rootPem: string;
  let chainFile: string;
  let rootFile: string;

  before(async () => {
    cf = await createInstance();
    worker = await cf.startWorker();
    await cf.startServer();
    rootFile = join(cf.home, 'ca', 'root.pem');
    chainFile = join(cf.home, 'ca', 'chain.pem');
    rootPem = await readFile(rootFile, 'utf8');
  });
  after(async () => cf?.cleanup());

  it('writes the trust anchor and the chain, and serves them over HTTP', async () => {
    assert.match(rootPem, /BEGIN CERTIFICATE/);
    assert.match(await readFile(chainFile, 'utf8'), /BEGIN CERTIFICATE/);
    const res = await fetch(`http://127.0.0.1:${cf.httpPort}/ca/certflow-root.crt`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pkix-cert');
    const der = Buffer.from(await res.arrayBuffer());
    const pemBody = rootPem.replace(/-----[^-]+-----|\s/g, '');
    assert.equal(der.toString('base64'), pemBody);
    assert.equal((await fetch(`http://127.0.0.1:${cf.httpPort}/ca/nope.crt`)).status, 404);
  });

  it('answers /healthz and /metrics', async () => {
    const health = await fetch(`http://127.0.0.1:${cf.httpPort}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', checks: { postgres: 'ok', temporal: 'ok' } });
    const metrics = await (await fetch(`http://127.0.0.1:${cf.httpPort}/metrics`)).text();
    assert.match(metrics, /certflow_http_requests_total\{listener="http",method="GET",route="\/healthz",status="200"\}/);
    assert.match(metrics, /certflow_certificates\{status="valid"\} \d+/);
  });

  it('serves HTTPS with a certificate from its own CA for localhost, 127.0.0.1 and ::1', async () => {
    const res = await httpsGet(`https://localhost:${cf.httpsPort}/healthz`, rootPem);
    assert.equal(res.status, 200);
    const r = await runTool(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${cf.httpsPort}`, '-CAfile', rootFile, '-verify_return_error', '-verify_ip', '127.0.0.1'],
      {},
    );
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
  });

  it('issues with `certflow cert issue`; openssl verifies it and shows the profile', async () => {
    const csr = await opensslCsr(cf.home, 'web', {
      subj: '/CN=web.example.test',
      san: 'DNS:web.example.test,DNS:www.example.test,IP:192.0.2.7',
    });
    const out = join(cf.home, 'web.pem');
    const r = await cf.cli(['cert', 'issue', '--csr', csr, '--profile', 'tls-server', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /issued [0-9a-f]{40} \(profile tls-server/);
    const verify = await runTool('openssl', ['verify', '-CAfile', rootFile, '-untrusted', chainFile, out]);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const text = (await runTool('openssl', ['x509', '-in', out, '-noout', '-text'])).stdout;
    assert.match(text, /DNS:web\.example\.test, DNS:www\.example\.test, IP Address:192\.0\.2\.7/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, new RegExp(`URI:http://localhost:\\d+/crl/certflow-issuing.crl`));

    const list = JSON.parse((await cf.cli(['--json', 'cert', 'list'])).stdout) as Array<{ serial: string; subject: string }>;
    const mine = list.find((c) => c.subject.includes('web.example.test'));
    assert.ok(mine, 'listed');
    const show = JSON.parse((await cf.cli(['--json', 'cert', 'show', mine.serial])).stdout) as { status: string; profile: string };
    assert.equal(show.status, 'valid');
    assert.equal(show.profile, 'tls-server');
    const ca = JSON.parse((await cf.cli(['--json', 'ca', 'list'])).stdout) as Array<{ name: string; role: string }>;
    assert.deepEqual(ca.map((c) => `${c.name}/${c.role}`).sort(), ['certflow-issuing/issuing', 'certflow-root/root']);
  });

  it('revokes, holds and releases: the CRL and OCSP (openssl) say so', async () => {
    const issue = async (name: string) => {
      const csr = await opensslCsr(cf.home, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
      const out = join(cf.home, `${name}.pem`);
      const r = await cf.cli(['--json', 'cert', 'issue', '--csr', csr, '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      return { file: out, serial: JSON.parse(r.stdout).serial as string };
    };
    const ocsp = async (certFile: string) => {
      const r = await runTool('openssl', [
        'ocsp',
        '-issuer',
        chainFile,
        '-cert',
        certFile,
        '-url',
        `http://127.0.0.1:${cf.httpPort}/ocsp`,
        '-CAfile',
        rootFile,
        '-no_nonce',
      ]);
      assert.match(r.stderr + r.stdout, /Response verify OK/, r.stderr + r.stdout);
      return r.stdout;
    };
    const crlText = async () => {
      const res = await fetch(`http://127.0.0.1:${cf.httpPort}/crl/certflow-issuing.crl`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
      const der = join(cf.home, 'crl.der');
      await writeFile(der, Buffer.from(await res.arrayBuffer()));
      const r = await runTool('openssl', ['crl', '-inform', 'DER', '-in', der, '-CAfile', chainFile, '-noout', '-text']);
      assert.match(r.stderr + r.stdout, /verify OK/);
      return r.stdout;
    };

    const good = await issue('good');
    const bad = await issue('bad');
    // OCSP responses are pre-signed by the worker's background signer, moments after issuance.
    const issuedAt = Date.now();
    for (let out = ''; !/: good/.test(out);) {
      assert.ok(Date.now() - issuedAt < 10_000, `no OCSP response within 10 s of issuance: ${out}`);
      out = await runTool('openssl', [
        'ocsp',
        '-issuer',
        chainFile,
        '-cert',
        good.file,
        '-url',
        `http://127.0.0.1:${cf.httpPort}/ocsp`,
        '-CAfile',
        rootFile,
        '-no_nonce',
      ]).then((r) => r.stdout + r.stderr);
      if (!/: good/.test(out)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(await ocsp(good.file), /: good/);

    const revoke = await cf.cli(['cert', 'revoke', bad.serial, '--reason', 'keyCompromise']);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stderr, /is revoked \(keyCompromise\); CRL \d+ of certflow-issuing published/);
    const revokedOcsp = await ocsp(bad.file);
    assert.match(revokedOcsp, /: revoked/);
    assert.match(revokedOcsp, /Reason: keyCompromise/);
    assert.match(await crlText(), new RegExp(`Serial Number: ${bad.serial.toUpperCase()}[\\s\\S]*Key Compromise`));
    const again = await cf.cli(['cert', 'revoke', bad.serial]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already revoked \(keyCompromise/);

    assert.equal((await cf.cli(['cert', 'hold', good.serial])).code, 0);
    assert.match(await ocsp(good.file), /Reason: certificateHold/);
    assert.match(await crlText(), new RegExp(`Serial Number: ${good.serial.toUpperCase()}`));
    assert.equal((await cf.cli(['cert', 'release', good.serial])).code, 0);
    assert.match(await ocsp(good.file), /: good/);
    assert.doesNotMatch(await crlText(), new RegExp(`Serial Number: ${good.serial.toUpperCase()}`));

    const generated = await cf.cli(['--json', 'crl', 'generate']);
    assert.equal(generated.code, 0, generated.stderr);
    assert.equal(JSON.parse(generated.stdout).crls[0].caName, 'certflow-issuing');
    const unknown = await cf.cli(['cert', 'revoke', 'abcdef']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no certificate with serial abcdef/);
  });

  it('answers hostile OCSP requests with malformedRequest or unauthorized, never a server fault', async () => {
    // A well-formed request (openssl's, about the issuing CA's own certificate, for which
    // there is no pre-signed response) and its mutations, over POST and GET.
    const reqFile = join(cf.home, 'ocsp-req.der');
    const made = await runTool('openssl', ['ocsp', '-issuer', rootFile, '-cert', chainFile, '-no_nonce', '-reqout', reqFile]);
    assert.equal(made.code, 0, made.stderr);
    const request = new Uint8Array(await readFile(reqFile));
    const url = `http://127.0.0.1:${cf.httpPort}/ocsp`;
    const post = (body: Uint8Array, type = 'application/ocsp-request') =>
      fetch(url, { method: 'POST', headers: { 'Content-Type': type }, body });
    const status = async (res: Response) => {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
      const der = new Uint8Array(await res.arrayBuffer());
      assert.deepEqual([...der.subarray(0, 4)], [0x30, 0x03, 0x0a, 0x01], Buffer.from(der).toString('hex'));
      return { 1: 'malformedRequest', 6: 'unauthorized' }[der[4]!] ?? `status ${der[4]}`;
    };
    assert.equal(await status(await post(request)), 'unauthorized');
    // The outer SEQUENCE with an indefinite length (BER), and other broken encodings.
    const ber = new Uint8Array([0x30, 0x80, ...request.subarray(2), 0x00, 0x00]);
    const certIds = request.subarray(6, 6 + 2 + request[7]!); // openssl: 30 len 30 len 30 len <Request>
    const many = new Uint8Array([
      0x30,
      0x82,
      0,
      0,
      0x30,
      0x82,
      0,
      0,
      0x30,
      0x82,
      0,
      0,
      ...Array(100)
        .fill([...certIds])
        .flat(),
    ]);
    const setLength = (at: number) => new DataView(many.buffer).setUint16(at + 2, many.length - at - 4);
    [0, 4, 8].forEach(setLength);
    for (const [body, want] of [
      [ber, 'malformedRequest'],
      [request.subarray(0, request.length - 1), 'malformedRequest'],
      [new Uint8Array([...request, 0]), 'malformedRequest'],
      [new Uint8Array(Buffer.from('not an OCSP request')), 'malformedRequest'],
      [new Uint8Array(), 'malformedRequest'],
      [new Uint8Array(await readFile(rootFile)), 'malformedRequest'],
      [many, 'unauthorized'], // 100 CertIDs: read, and answered as more than one certificate
    ] as const) {
      assert.equal(await status(await post(body)), want, Buffer.from(body.subarray(0, 40)).toString('hex'));
    }
    assert.equal(await status(await fetch(`${url}/${Buffer.from(request).toString('base64')}`)), 'unauthorized');
    assert.equal(await status(await fetch(`${url}/${Buffer.from(ber).toString('base64')}`)), 'malformedRequest');
    assert.equal(await status(await fetch(`${url}/not*base64`)), 'malformedRequest');
    assert.equal((await post(request, 'application/octet-stream')).status, 415);
    assert.equal((await post(new Uint8Array(9000))).status, 400);
    const log = await readFile(join(cf.home, 'server.log'), 'utf8');
    assert.deepEqual(
      log.split('\n').filter((l) => l.includes('request failed')),
      [],
    );
  });

  it('refuses bad input with a clear message and exit code 2, writing nothing', async () => {
    const bad = join(cf.home, 'garbage.csr');
    await writeFile(bad, '-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n');
    const out = join(cf.home, 'never.pem');
    const cases: Array<[string[], RegExp]> = [
      [['cert', 'issue', '--csr', bad, '--out', out], /error: .*(CSR|PKCS#10|base64)/i],
      [['cert', 'issue', '--csr', join(cf.home, 'missing.csr'), '--out', out], /error: cannot read .*no such file/],
      [
        ['cert', 'issue', '--csr', await opensslCsr(cf.home, 'p1', { subj: '/CN=a.example.test' }), '--profile', 'nope', '--out', out],
        /unknown certificate profile "nope"/,
      ],
      [
        [
          'cert',
          'issue',
          '--csr',
          await opensslCsr(cf.home, 'weak', { key: 'rsa:1024', subj: '/CN=weak.example.test', san: 'DNS:weak.example.test' }),
          '--out',
          out,
        ],
        /request refused: .*1024/,
      ],
      [
        [
          'cert',
          'issue',
          '--csr',
          await opensslCsr(cf.home, 'ipcl', { subj: '/CN=client', san: 'IP:192.0.2.1' }),
          '--profile',
          'tls-client',
          '--out',
          out,
        ],
        /request refused: .*san\.ip|IP/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await cf.cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(out), false, 'no certificate file written');
    }
    const { rows } = await cf.pool.query("SELECT count(*)::int AS n FROM certificates WHERE subject LIKE '%weak%'");
    assert.equal(rows[0].n, 0, 'no certificate row for a refused request');
  });

  it('survives SIGKILL of the worker while signing is pending: exactly one certificate', async () => {
    await worker.stop();
    // This worker pauses after persisting the TBS, so the activity is pending when it dies.
    const doomed = await cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 600_000 } });
    const csr = await opensslCsr(cf.home, 'crash', { subj: '/CN=crash.example.test', san: 'DNS:crash.example.test' });
    const out = join(cf.home, 'crash.pem');
    const requestId = `crash-${Date.now()}`;
    const issuing = cf.cliStart(['cert', 'issue', '--csr', csr, '--out', out, '--request-id', requestId, '--timeout', '120']);

    let pendingSerial: string | undefined;
    for (let i = 0; i < 120 && !pendingSerial; i++) {
      const { rows } = await cf.pool.query('SELECT serial, status FROM certificates WHERE request_id = $1', [requestId]);
      if (rows[0]?.status === 'signing') pendingSerial = rows[0].serial;
      else await sleep(250);
    }
    assert.ok(pendingSerial, 'the TBS was persisted and the activity is pending');
    process.kill(doomed.pid!, 'SIGKILL');
    await doomed.exited;

    worker = await cf.startWorker();
    const r = await issuing.done;
    assert.equal(r.code, 0, r.stderr);
    const { rows } = await cf.pool.query('SELECT serial, status FROM certificates WHERE request_id = $1', [requestId]);
    assert.equal(rows.length, 1, 'exactly one certificate for the request');
    assert.equal(rows[0].serial, pendingSerial, 'the TBS persisted before the crash was signed, no second serial');
    assert.equal(rows[0].status, 'valid');
    const verify = await runTool('openssl', ['verify', '-CAfile', rootFile, '-untrusted', chainFile, out]);
    assert.equal(verify.code, 0, verify.stderr);

    // Asking again with the same request id returns the same certificate.
    const again = await cf.cli(['--json', 'cert', 'issue', '--csr', csr, '--request-id', requestId]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).serial, pendingSerial);
  });

  it('without a worker, `cert issue` gives up after --timeout with exit code 3 and says why', async () => {
    await worker.stop();
    const csr = await opensslCsr(cf.home, 'noworker', { subj: '/CN=noworker.example.test', san: 'DNS:noworker.example.test' });
    const r = await cf.cli(['cert', 'issue', '--csr', csr, '--timeout', '2']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /no certificate after 2 s: is a certflow worker running on task queue ".*-signing"\? The request stays queued/);
  });
});
