/**
 * Fuzzing the front ends in `npm test` (issue 11, item 9): 1,000 mutated requests per
 * front end (ACME: JWS bodies, protected headers, payloads; EST: CSRs, bodies, headers,
 * paths) from a fixed seed against a running server: no 5xx, no dropped connection, every
 * error in the protocol's own format, the server still up. CERTFLOW_FUZZ_SEED and
 * CERTFLOW_FUZZ_CASES change the run; `npm run fuzz -- --cases 20000` is the long run.
 *
 * Also here, because it needs the same running ACME server: a request signed by an
 * account key (kid) with alg none, HS256 or an unknown algorithm gets badSignatureAlgorithm
 * with the accepted algorithms (RFC 8555 6.2), not malformed (issue 11, item 6).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';
import { freshNonce, fetchAcme, newAccount, trustRoot } from '../helpers/acme.ts';
import { runFuzz } from '../fuzz/engine.ts';
import { JWS_ALGORITHMS } from '../../src/acme/jws.ts';

describe('front ends under fuzzing', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let server: Awaited<ReturnType<TestInstance['startServer']>>;
  let rootPem: string;
  const password = 'fuzzing password 123';

  before(async () => {
    cf = await createInstance({ CERTFLOW_EST_WAIT_SECONDS: '5' });
    worker = await cf.startWorker();
    server = await cf.startServer();
    rootPem = readFileSync(join(cf.home, 'ca', 'root.pem'), 'utf8');
    trustRoot(rootPem);
    assert.equal((await cf.cli(['est-client', 'add', '--name', 'fuzzer', '--password', password])).code, 0);
  });
  after(async () => cf?.cleanup());

  it('alg none, HS256 or unknown on an account-signed request: badSignatureAlgorithm with the algorithms', async () => {
    const directoryUrl = `https://localhost:${cf.httpsPort}/acme/directory`;
    const { account, client } = await newAccount(directoryUrl);
    void account;
    const kid = client.getAccountUrl();
    const dir = (await fetchAcme(directoryUrl)).data as Record<string, string>;
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const alg of ['none', 'HS256', 'ES999', 'RS1']) {
      const header = { alg, kid, nonce: await freshNonce(dir.newNonce!), url: dir.newOrder };
      const protectedB64 = b64(header);
      const payloadB64 = b64({ identifiers: [{ type: 'dns', value: 'alg.example.test' }] });
      const signature = alg === 'none' ? '' : createHmac('sha256', 'k').update(`${protectedB64}.${payloadB64}`).digest('base64url');
      const r = await fetchAcme(dir.newOrder!, {
        method: 'POST',
        body: JSON.stringify({ protected: protectedB64, payload: payloadB64, signature: signature || 'AA' }),
        headers: { 'Content-Type': 'application/jose+json' },
      });
      assert.equal(r.status, 400, `${alg}: ${r.text}`);
      assert.equal(r.data.type, 'urn:ietf:params:acme:error:badSignatureAlgorithm', `${alg}: ${r.text}`);
      assert.deepEqual(r.data.algorithms, [...JWS_ALGORITHMS]);
      assert.ok(r.headers['replay-nonce'], 'a fresh nonce comes with the problem');
    }
  });

  it('1,000 mutated requests per front end: no 5xx, every error in the protocol format, the server up', async (t) => {
    const seed = Number(process.env.CERTFLOW_FUZZ_SEED ?? 11);
    const cases = Number(process.env.CERTFLOW_FUZZ_CASES ?? 1000);
    const report = await runFuzz(
      { httpsBase: `https://localhost:${cf.httpsPort}`, rootPem, estUser: 'fuzzer', estPassword: password },
      { seed, cases, concurrency: 4 },
    );
    t.diagnostic(`seed ${seed}: ${JSON.stringify(report.cases)} ${JSON.stringify(report.statuses)}`);
    assert.deepEqual(report.failures.slice(0, 10), [], `${report.failures.length} failures (seed ${seed})`);
    assert.ok(report.cases.acme >= cases && report.cases.est >= cases);
    for (const child of [worker, server]) assert.doesNotThrow(() => process.kill(child.pid!, 0), 'no process crashed');
    const health = await fetch(`http://127.0.0.1:${cf.httpPort}/healthz`);
    assert.equal(health.status, 200);
  });
});
