/**
 * OCSP responder throughput and CPU per answer against a complete certflow stack
 * (bench/stack.ts), with OpenSSL's responder (`openssl ocsp -port`) measured in the same run
 * as the reference.
 *
 *   npm run bench:ocsp [-- --requests 4000] [--concurrency 16] [--warmup 400] [--cpu-prof DIR]
 *
 * --cpu-prof DIR: V8 CPU profiles of certflow's server (<pid>-0 start-up and warm-up, <pid>-1
 * the timed requests; summarize with `npm run bench:profile`).
 *
 * certflow: one certificate issued (`certflow cert issue`), then POST /ocsp with openssl's request for it
 * (a SHA-1 CertID, no nonce: what browsers and most clients send) from `--concurrency`
 * clients over keep-alive HTTP, until `--requests` answers. The front end answers from the
 * response the worker signed ahead of time, so each answer is a request parse, a lookup and
 * the stored bytes. OpenSSL signs every answer itself (P-256, its own test CA and index) and
 * closes the connection after each one, so its clients connect anew every time: what it
 * costs is a signature, a connection and a request parse. Every answer is checked: a
 * successful response whose single answer is "good" for the certificate asked about.
 *
 * Prints one JSON document on stdout (answers/s, p50 and CPU milliseconds per answer of the
 * responder process, and Postgres's for certflow); progress goes to stderr.
 */
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../src/core/net.ts';
import { describeOcspResponse } from '../src/pki/index.ts';
import { cpuSeconds, dumpProfiles, percentile, postBytes, profilerEnv, serverSideCpu } from './measure.ts';
import { startBenchStack } from './stack.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '400' },
    'cpu-prof': { type: 'string' },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
if (![requests, concurrency, warmup].every(Number.isInteger) || requests < 1 || concurrency < 1 || concurrency > 256 || warmup < 0) {
  console.error('usage: bench/ocsp.ts [--requests N] [--concurrency C] [--warmup N] [--cpu-prof DIR]');
  process.exit(2);
}
const progress = (msg: string) => process.stderr.write(`${msg}\n`);
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** One OCSP POST: the answer's bytes (or what went wrong) and its latency. */
async function postOcsp(agent: http.Agent, port: number, body: Uint8Array): Promise<{ ms: number; der?: Buffer; error?: string }> {
  const start = performance.now();
  const r = await postBytes(agent, port, '/ocsp', 'application/ocsp-request', body, 30_000);
  const ms = performance.now() - start;
  return r.status === 200 ? { ms, der: r.body } : { ms, error: r.error ?? `HTTP ${r.status}` };
}

/** Whether `der` is a successful response saying "good" for the serial asked about. */
function goodAnswer(der: Buffer | undefined, serialHex: string): boolean {
  if (!der) return false;
  try {
    const d = describeOcspResponse(der);
    return (
      d.status === 'successful' && d.responses.length === 1 && d.responses[0]!.serialHex === serialHex && d.responses[0]!.status === 'good'
    );
  } catch {
    return false;
  }
}

/** Waits until the responder on `port` answers "good" for `serialHex` (`what` names it in the error). */
async function untilGood(port: number, body: Uint8Array, serialHex: string, seconds: number, what: string): Promise<void> {
  for (const end = Date.now() + seconds * 1000; !goodAnswer((await postOcsp(new http.Agent(), port, body)).der, serialHex);) {
    if (Date.now() > end) throw new Error(`${what} within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `count` answers from `concurrency` clients; CPU of `pids` over the timed part. */
async function load(
  name: string,
  port: number,
  keepAlive: boolean,
  body: Uint8Array,
  serialHex: string,
  pids: Record<string, number>,
  profiled: number[] = [],
) {
  const run = async (count: number) => {
    const agent = new http.Agent({ keepAlive, maxSockets: concurrency });
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, async () => {
        while (next < count) {
          next++;
          const a = await postOcsp(agent, port, body);
          latencies.push(a.ms);
          if (!goodAnswer(a.der, serialHex)) {
            errors++;
            firstError ??= a.error ?? 'not a good answer for the certificate';
          }
        }
      }),
    );
    agent.destroy();
    return { latencies: latencies.sort((x, y) => x - y), errors, firstError };
  };
  if (warmup) await run(warmup);
  await dumpProfiles(profiled);
  progress(`${name}: ${requests} OCSP requests at concurrency ${concurrency} ...`);
  const before = cpuSeconds(pids);
  const start = performance.now();
  const r = await run(requests);
  const seconds = (performance.now() - start) / 1000;
  const after = cpuSeconds(pids);
  await dumpProfiles(profiled);
  const cpuMsPerAnswer = Object.fromEntries(
    Object.keys(after).map((k) => [k, round(((after[k]! - (before[k] ?? 0)) * 1000) / Math.max(requests - r.errors, 1), 3)]),
  );
  const result = {
    answersPerSec: round((requests - r.errors) / seconds),
    p50Ms: round(percentile(r.latencies, 50), 2),
    p99Ms: round(percentile(r.latencies, 99), 2),
    errors: r.errors,
    ...(r.firstError ? { firstError: r.firstError } : {}),
    cpuMsPerAnswer,
  };
  progress(`${name}: ${JSON.stringify(result)}`);
  return result;
}

/** openssl with `args`, failing loudly. */
function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * An OpenSSL test CA with one good certificate, and its responder on a free port (`-port`
 * takes a number only: it listens on every interface, as bench/cmp.ts's mock server does).
 */
async function opensslResponder(dir: string) {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-key', 'ca.key', '-subj', '/CN=bench ocsp reference CA', '-days', '2', '-out', 'ca.pem'], dir);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.key'], dir);
  openssl(['req', '-new', '-key', 'leaf.key', '-subj', '/CN=leaf.bench.test', '-out', 'leaf.csr'], dir);
  openssl(
    ['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x1234', '-days', '1', '-out', 'leaf.pem'],
    dir,
  );
  const leaf = new X509Certificate(readFileSync(join(dir, 'leaf.pem')));
  const expiry = leaf.validTo.replace(/ GMT$/, '');
  const yymmdd = new Date(expiry).toISOString().replace(/[-:T]/g, '').slice(2, 14);
  writeFileSync(join(dir, 'index.txt'), `V\t${yymmdd}Z\t\t${leaf.serialNumber}\tunknown\t/CN=leaf.bench.test\n`);
  openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf.pem', '-no_nonce', '-reqout', 'req.der'], dir);
  const port = await freePort();
  const child = spawn(
    'openssl',
    ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem', '-nmin', '60'],
    // It logs a line per request: a pipe nobody reads would fill and stop it.
    { cwd: dir, stdio: 'ignore' },
  );
  const body = new Uint8Array(readFileSync(join(dir, 'req.der')));
  const serialHex = leaf.serialNumber.toLowerCase();
  await untilGood(port, body, serialHex, 5, 'the openssl OCSP responder did not answer');
  return { port, pid: child.pid!, body, serialHex, stop: () => child.kill() };
}

async function main(): Promise<void> {
  const loadAtStart = round(loadavg()[0] ?? 0, 2);
  const dir = mkdtempSync(join(tmpdir(), 'certflow-bench-ocsp-'));
  const stack = await startBenchStack(values['cpu-prof'] ? { env: profilerEnv(values['cpu-prof']) } : {});
  const profiled = values['cpu-prof'] ? [stack.pids.server] : [];
  try {
    // One certificate, issued through the workflow like any other.
    openssl(
      [
        ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'cf-leaf.key'],
        ...['-subj', '/CN=ocsp-bench.example.test', '-addext', 'subjectAltName=DNS:ocsp-bench.example.test', '-out', 'cf-leaf.csr'],
      ],
      dir,
    );
    const issued = await stack.cli([
      'cert',
      'issue',
      '--csr',
      join(dir, 'cf-leaf.csr'),
      '--out',
      join(dir, 'cf-leaf.pem'),
      '--chain-out',
      join(dir, 'cf-chain.pem'),
    ]);
    if (issued.code !== 0) throw new Error(`cert issue failed: ${issued.stderr}`);
    openssl(['ocsp', '-issuer', 'cf-chain.pem', '-cert', 'cf-leaf.pem', '-no_nonce', '-reqout', 'cf-req.der'], dir);
    const body = new Uint8Array(readFileSync(join(dir, 'cf-req.der')));
    const serialHex = new X509Certificate(readFileSync(join(dir, 'cf-leaf.pem'))).serialNumber.toLowerCase();
    progress('waiting for the pre-signed OCSP response ...');
    await untilGood(stack.httpPort, body, serialHex, 30, 'no OCSP response for the issued certificate');
    const certflow = await load(
      'certflow',
      stack.httpPort,
      true,
      body,
      serialHex,
      {
        server: stack.pids.server,
        postgres: stack.pids.postgres,
      },
      profiled,
    );
    const ref = await opensslResponder(dir);
    let reference;
    try {
      reference = await load('openssl', ref.port, false, ref.body, ref.serialHex, { openssl: ref.pid });
    } finally {
      ref.stop();
    }
    // The responders' CPU, without this process's.
    const cpu = (r: { cpuMsPerAnswer: Record<string, number> }) => serverSideCpu(r.cpuMsPerAnswer);
    process.stdout.write(
      `${JSON.stringify(
        {
          benchmark: 'ocsp-responder',
          machine: {
            cpus: cpus().length,
            cpuModel: cpus()[0]?.model ?? 'unknown',
            node: process.version,
            loadAverage1mAtStart: loadAtStart,
          },
          settings: { requests, concurrency, warmup, request: 'openssl ocsp -no_nonce (SHA-1 CertID), POST' },
          certflow,
          openssl: reference,
          certflowToOpensslCpuRatio: round(cpu(certflow) / cpu(reference), 3),
          certflowToOpensslThroughput: round(certflow.answersPerSec / reference.answersPerSec, 3),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
