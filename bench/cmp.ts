/**
 * CMP ir throughput and latency against a complete, durable certflow stack (bench/stack.ts),
 * next to OpenSSL's own CMP mock server (`openssl cmp -port`) as the protocol floor, with
 * the same in-process client (src/cmp/client.ts) over keep-alive HTTP:
 *  - "implicit": ir with implicitConfirm, MAC protection (PasswordBasedMac, 500 iterations):
 *    one round trip, one workflow, one certificate;
 *  - "certConf": ir, then certConf -> pkiconf: two round trips, the workflow waits for the
 *    confirmation Update.
 * at concurrency 1 and 16 by default. Every transaction is new (new key, transactionID).
 * Answers are checked (certflow: the certificate is for the request's key); anything else
 * counts as an error.
 *
 *   npm run bench:cmp [-- --requests 100] [--concurrency 1,16] [--target certflow|mock|both] [--profile-requests 20] [--cpu-prof DIR]
 *
 * --profile-requests N: after certflow's levels, N transactions of each shape one at a time
 * with every Postgres statement logged: the statements, transactions and Postgres time per
 * transaction of the server and of the worker, by statement (0: none).
 *
 * --cpu-prof DIR: V8 CPU profiles of certflow's worker and server (<pid>-0 start-up, then one
 * per mode and level, in order; summarize with `npm run bench:profile`).
 *
 * Prints one JSON document on stdout; progress goes to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { generateKeyPairSync } from '../src/pki/keygen.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { buildCertConf, buildIr, failure, macProtect } from '../src/cmp/client.ts';
import { freePort } from '../src/core/net.ts';
import { PKIMessage, type CertRepMessage } from '../src/pki/cmp/index.ts';
import { cpuSeconds, dumpProfiles, percentile, postBytes, profilerEnv } from './measure.ts';
import { startBenchStack } from './stack.ts';
import { recordStatements } from './statements.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '1,16' },
    target: { type: 'string', default: 'both' },
    warmup: { type: 'string', default: '5' },
    'profile-requests': { type: 'string', default: '20' },
    'cpu-prof': { type: 'string' },
  },
});
const requests = Number(values.requests);
const levels = values.concurrency.split(',').map(Number);
const warmup = Number(values.warmup);
const profileRequests = Number(values['profile-requests']);
if (!Number.isInteger(profileRequests) || profileRequests < 0 || profileRequests > 1000) {
  console.error('bench/cmp.ts: --profile-requests takes a whole number from 0 to 1000');
  process.exit(2);
}
const SECRET = 'bench-secret-1';
const progress = (m: string) => process.stderr.write(`${m}\n`);

type Mode = 'implicit' | 'certConf';

interface Target {
  name: string;
  port: number;
  path: string;
  /** The certificate must be for the request's key (not for the mock, which returns a fixed one). */
  checkKey: boolean;
  pids?: Record<string, number>;
  /** Keep-alive for certflow; the mock server answers one request per connection. */
  agent: http.Agent;
}

async function post(t: Target, der: Uint8Array): Promise<Buffer> {
  const r = await postBytes(t.agent, t.port, t.path, 'application/pkixcmp', der);
  if (r.status !== 200) throw new Error(r.error ?? `HTTP ${r.status}`);
  return r.body;
}

/** One transaction; throws on any wrong answer. */
async function transaction(t: Target, mode: Mode, i: number): Promise<void> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const ir = buildIr({ key, subject: `CN=bench-${i}`, ref: 'bench', implicitConfirm: mode === 'implicit' });
  const irDer = macProtect(ir, SECRET);
  const ip = PKIMessage.fromDer(new Uint8Array(await post(t, irDer)));
  if (ip.body.type !== 'ip') throw new Error(`${ip.body.type}: ${failure(ip.toDer()).text}`);
  const resp = (ip.body.content as CertRepMessage).response[0]!;
  const cert = resp.certifiedKeyPair?.certificate;
  if (resp.status.status !== 0 || !cert) throw new Error(`status ${resp.status.status}: ${resp.status.statusString?.join(' ')}`);
  if (t.checkKey && !new X509Certificate(Buffer.from(cert)).checkPrivateKey(key))
    throw new Error('the certificate is not for the request key');
  if (mode === 'certConf') {
    const conf = PKIMessage.fromDer(new Uint8Array(await post(t, macProtect(buildCertConf(ir, ip, cert), SECRET))));
    if (conf.body.type !== 'pkiconf') throw new Error(`certConf answered ${conf.body.type}: ${failure(conf.toDer()).text}`);
  }
}

async function level(t: Target, mode: Mode, concurrency: number, base: number) {
  for (let i = 0; i < warmup; i++) await transaction(t, mode, base - 1000 - i).catch(() => {});
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const cpu0 = t.pids ? cpuSeconds(t.pids) : undefined;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const t0 = performance.now();
        try {
          await transaction(t, mode, base + i);
          latencies.push(performance.now() - t0);
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = t.pids ? cpuSeconds(t.pids) : undefined;
  latencies.sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    target: t.name,
    mode,
    concurrency,
    transactions: requests,
    perSecond: r(latencies.length / seconds),
    p50ms: r(percentile(latencies, 50)),
    p99ms: r(percentile(latencies, 99)),
    maxMs: r(latencies.at(-1) ?? NaN),
    errors: errors.length,
    firstErrors: [...new Set(errors)].slice(0, 3),
    cpuMsPerTransaction:
      cpu0 && cpu1
        ? Object.fromEntries(Object.keys(cpu1).map((k) => [k, r(((cpu1[k]! - (cpu0[k] ?? 0)) * 1000) / Math.max(latencies.length, 1))]))
        : undefined,
  };
}

/** OpenSSL's mock CMP server (-port): MAC with the same secret, a fixed certificate, implicit confirmation granted. */
async function startMock(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const key = join(dir, 'mock.key');
  const cert = join(dir, 'mock.pem');
  const gen = spawn('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=mock',
    '-days',
    '30',
  ]);
  await new Promise((resolve) => gen.once('exit', resolve));
  const child = spawn(
    'openssl',
    ['cmp', '-port', String(port), '-srv_secret', `pass:${SECRET}`, '-srv_ref', 'mock', '-rsp_cert', cert, '-grant_implicitconf'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = http.request({ host: '127.0.0.1', port, method: 'GET', path: '/' }, () => resolve(true));
      s.on('error', () => resolve(false));
      s.end();
    });
    if (up) break;
    await sleep(100);
  }
  return { port, child };
}

async function main(): Promise<void> {
  const results: unknown[] = [];
  const profile: Partial<Record<Mode, unknown>> = {};
  const modes: Mode[] = ['implicit', 'certConf'];
  if (values.target !== 'certflow') {
    const dir = mkdtempSync(join(tmpdir(), 'certflow-bench-cmp-'));
    const mock = await startMock(dir);
    try {
      const t: Target = {
        name: 'openssl-mock',
        port: mock.port,
        path: '/pkix/',
        checkKey: false,
        pids: { mock: mock.child.pid! },
        agent: new http.Agent({ keepAlive: false }),
      };
      for (const mode of modes)
        for (const c of levels) {
          progress(`openssl mock: ${mode}, concurrency ${c}`);
          results.push(await level(t, mode, c, 0));
        }
    } finally {
      mock.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (values.target !== 'mock') {
    const stack = await startBenchStack(values['cpu-prof'] ? { env: profilerEnv(values['cpu-prof']) } : {});
    const profiled = values['cpu-prof'] ? [stack.pids.worker, stack.pids.server] : [];
    try {
      const add = await stack.cli(['cmp-client', 'add', '--ref', 'bench', '--secret', SECRET]);
      if (add.code !== 0) throw new Error(add.stderr);
      await dumpProfiles(profiled);
      const t: Target = {
        name: 'certflow',
        port: stack.httpPort,
        path: '/.well-known/cmp',
        checkKey: true,
        pids: stack.pids,
        agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      };
      let base = 10_000;
      for (const mode of modes)
        for (const c of levels) {
          progress(`certflow: ${mode}, concurrency ${c}`);
          results.push(await level(t, mode, c, (base += 10_000)));
          await dumpProfiles(profiled);
        }
      for (const mode of profileRequests ? modes : []) {
        progress(`certflow: profile, ${profileRequests} ${mode} transactions one at a time, every Postgres statement logged`);
        const first = (base += 10_000);
        const { result: errors, postgres } = await recordStatements(stack, 'Transaction', async () => {
          let errors = 0;
          for (let i = 0; i < profileRequests; i++) await transaction(t, mode, first + i).catch(() => errors++);
          return { result: errors, units: profileRequests - errors };
        });
        profile[mode] = { transactions: profileRequests, errors, postgres };
      }
    } finally {
      await stack.stop();
    }
  }
  const byKey = new Map(
    (results as Array<{ target: string; mode: string; concurrency: number; perSecond: number }>).map((r) => [
      `${r.target}/${r.mode}/${r.concurrency}`,
      r.perSecond,
    ]),
  );
  const ratios = Object.fromEntries(
    modes.flatMap((m) =>
      levels.map((c) => [
        `${m}/c${c}`,
        byKey.has(`certflow/${m}/${c}`) && byKey.has(`openssl-mock/${m}/${c}`)
          ? Math.round((byKey.get(`certflow/${m}/${c}`)! / byKey.get(`openssl-mock/${m}/${c}`)!) * 100) / 100
          : null,
      ]),
    ),
  );
  process.stdout.write(
    `${JSON.stringify({ machine: { cpus: cpus().length, loadavg: loadavg() }, requestsPerLevel: requests, results, certflowToMockRatio: ratios, profile }, null, 2)}\n`,
  );
}

await main();
process.exit(0);
