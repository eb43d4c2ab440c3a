/**
 * Issue 16 item 3: cheap requests must not buy expensive work on the server's event loop.
 *  - 50 concurrent hostile CMP messages with password-based MAC at the iteration cap (PBM and
 *    PBMAC1, for a registered reference without its secret) while ACME directory requests
 *    keep being served: no request of the victims fails (each must be answered within 5 s,
 *    20 times the 100 ms p99 that `npm run bench:hostile` is about);
 *  - an unknown senderKID buys no key derivation at all, an iteration count above the cap
 *    none either (counted by certflow_cmp_mac_key_derivations_total);
 *  - EST serverkeygen checks the profile's key limits before it generates anything (an
 *    RSA-16384 request is refused at once), and generates keys off the event loop (in worker
 *    threads: not in libuv's pool either, which database connections and DNS need).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:https';
import { fileURLToPath } from 'node:url';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';
import { estDevice, type EstDevice } from '../helpers/est.ts';
import { buildIr, failure, postCmp } from '../helpers/cmp.ts';
import { protectWithMac, type MacChoice } from '../../src/pki/cmp/index.ts';
import { join } from 'node:path';

const CAP = 100_000;
const PASSWORD = 'keygen device password';

/** Requests that must keep working while the attack runs: ACME directory GETs, one after another. */
function victims(url: string, ca: string) {
  const agent = new Agent({ ca, keepAlive: true });
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = get(url, { agent, signal: AbortSignal.timeout(5000) }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - t0);
          else failures.push(`HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (e) => {
        failures.push(`${e.name}: ${e.message} after ${Math.round(performance.now() - t0)} ms`);
        resolve();
      });
    });
  const loop = (async () => {
    while (running) {
      await one();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return { served: latencies.length, failures };
    },
  };
}

/** Hostile ir messages: valid shape, MAC at `iterations` under a secret the server does not hold. */
function hostile(ref: string, choice: Omit<MacChoice, 'iterations'>, iterations = CAP): Uint8Array {
  const msg = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=hostile', ref });
  protectWithMac(msg, new Uint8Array(randomBytes(16)), { ...choice, iterations });
  return msg.toDer();
}

describe('cheap requests do not buy expensive work', () => {
  let cf: TestInstance;
  let est: EstDevice;
  let directory: string;
  let rootPem: string;

  before(async () => {
    const config = join(process.env.TMPDIR ?? '/tmp', `certflow-cost-${process.pid}.json`);
    // What one key derivation costs is measured here, not the limit of failed MACs per address
    // (auth-throttle.test.ts): every hostile message must reach the MAC check.
    await writeFile(config, JSON.stringify({ cmp: { maxIterations: CAP }, authFailures: { perAddress: { maxFailures: 100_000 } } }));
    cf = await createInstance({ CERTFLOW_CONFIG: config, CERTFLOW_EST_WAIT_SECONDS: '20' });
    await cf.startWorker();
    await cf.startServer();
    rootPem = await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8');
    directory = `https://localhost:${cf.httpsPort}/acme/directory`;
    est = estDevice(
      cf.home,
      `https://localhost:${cf.httpsPort}/.well-known/est`,
      join(cf.home, 'ca', 'root.pem'),
      join(cf.home, 'ca', 'chain.pem'),
    );
    assert.equal((await cf.cli(['cmp-client', 'add', '--ref', 'known', '--secret', 'the-real-secret-1'])).code, 0);
    assert.equal((await cf.cli(['est-client', 'add', '--name', 'maker', '--password', PASSWORD])).code, 0);
  });
  after(async () => cf?.cleanup());

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${cf.httpPort}/metrics`)).text();
    const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
    assert.ok(m, `the metric ${name} is exported`);
    return Number(m[1]);
  };
  const derivations = () => metric('certflow_cmp_mac_key_derivations_total');

  it('50 concurrent hostile CMP messages at the iteration cap: no ACME directory request fails', async () => {
    const messages = [
      hostile('known', { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1' }),
      hostile('known', { type: 'pbmac1', hash: 'sha256', mac: 'sha256' }),
      hostile('known', { type: 'pbm', hash: 'sha512', mac: 'sha512' }),
    ];
    const watch = victims(directory, rootPem);
    const answers: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const r = await postCmp(cf.httpPort, messages[i % messages.length]!);
        answers.push(r.status === 200 ? failure(new Uint8Array(r.body)).failInfo.join(',') : `HTTP ${r.status}`);
      }),
    );
    const { served, failures } = await watch.stop();
    assert.deepEqual(failures, [], `victim requests failed while ${answers.length} hostile messages were answered`);
    assert.ok(served >= 10, `only ${served} victim requests were made`);
    assert.equal(answers.length, 50);
    for (const a of answers) assert.match(a, /^(badMessageCheck|systemUnavail)$/, 'every hostile message gets a CMP error');
  });

  it('an unknown senderKID buys no key derivation; an iteration count above the cap none either (badAlg)', async () => {
    const before = await derivations();
    for (const type of ['pbm', 'pbmac1'] as const) {
      const r = await postCmp(cf.httpPort, hostile('nobody-registered', { type, hash: 'sha256', mac: 'sha256' }));
      assert.deepEqual(failure(new Uint8Array(r.body)).failInfo, ['badMessageCheck']);
      const over = await postCmp(cf.httpPort, hostile('known', { type, hash: 'sha256', mac: 'sha256' }, CAP + 1));
      const f = failure(new Uint8Array(over.body));
      assert.deepEqual(f.failInfo, ['badAlg'], f.text);
      assert.match(f.text, new RegExp(`iteration count ${CAP + 1} is outside 100\\.\\.${CAP}`));
    }
    assert.equal(await derivations(), before, 'no derivation for an unknown reference or a refused count');
    const known = await postCmp(cf.httpPort, hostile('known', { type: 'pbm', hash: 'sha256', mac: 'sha256' }, 1000));
    assert.deepEqual(failure(new Uint8Array(known.body)).failInfo, ['badMessageCheck']);
    assert.equal(await derivations(), before + 1, 'a registered reference: one derivation, off the event loop');
  });

  // With a DNS SAN: the device profile then keeps serverAuth, which its RSA keyEncipherment belongs to
  // (without one, zlint's e_key_usage_and_extended_key_usage_inconsistent flags the certificate).
  it('EST serverkeygen generates keys off the event loop: 4 concurrent RSA-4096 keys, no ACME directory request fails', async () => {
    const bodies = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        est.csrBody(`kg-${i}`, `/CN=keygen-${i}`, { key: 'rsa:4096', san: `DNS:keygen-${i}.example.test` }),
      ),
    );
    const watch = victims(directory, rootPem);
    const results = await Promise.all(bodies.map((data) => est.curl('/serverkeygen', { data, user: `maker:${PASSWORD}` })));
    const { served, failures } = await watch.stop();
    for (const r of results) assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(failures, [], 'victim requests failed while keys were generated');
    assert.ok(served >= 1);
  });

  it('EST serverkeygen refuses an RSA-16384 request before generating anything', async () => {
    const csr = await readFile(fileURLToPath(new URL('../fixtures/csr-rsa-16384.der', import.meta.url)));
    const data = `${csr.toString('base64')}\n`;
    const count = async () =>
      (await cf.pool.query("SELECT count(*)::int AS n FROM issuance_requests WHERE kind = 'serverkeygen'")).rows[0].n as number;
    const before = await count();
    const generated = await metric('certflow_est_server_keys_generated_total');
    // Generating an RSA-16384 key takes minutes; the refusal must not wait for one.
    const r = await est.curl('/serverkeygen', { data, user: `maker:${PASSWORD}`, maxTime: 60 });
    assert.equal(r.status, 400, r.body.toString());
    assert.match(r.body.toString(), /RSA key of 16384 bits is above the profile "device" maximum of 4096/);
    assert.equal(await count(), before, 'no enrollment was started');
    assert.equal(await metric('certflow_est_server_keys_generated_total'), generated, 'no key was generated');
  });
});
