/**
 * Runs certflow's own processes (worker, server, CLI) for integration tests, each with an
 * isolated CERTFLOW_HOME, database, ports and Temporal task queue on the run's shared
 * Postgres and Temporal servers.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort } from '../../src/core/net.ts';
import { spawnCertflow } from '../../src/cli/node-child.ts';
import type { SigningFaults } from './faulty-worker.ts';
import { temporalAddress, testDatabase } from './stack.ts';

export const certflowBin = fileURLToPath(new URL('../../bin/certflow.js', import.meta.url));
const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const faultyWorker = fileURLToPath(new URL('./faulty-worker.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestInstance {
  home: string;
  env: NodeJS.ProcessEnv;
  /** The database as its owner (the test's own access); the processes use the runtime login (env.DATABASE_URL). */
  databaseUrl: string;
  pool: Awaited<ReturnType<typeof testDatabase>>['pool'];
  httpsPort: number;
  httpPort: number;
  /** Port of the operator console (`certflow admin`). */
  adminPort: number;
  /** `certflow worker`; with signingFaults, a worker whose certificate signatures misbehave (faulty-worker.ts). */
  startWorker(extraEnv?: NodeJS.ProcessEnv, opts?: { signingFaults?: SigningFaults }): ReturnType<typeof spawnCertflow>;
  startServer(extraEnv?: NodeJS.ProcessEnv): ReturnType<typeof spawnCertflow>;
  startAdmin(extraEnv?: NodeJS.ProcessEnv): ReturnType<typeof spawnCertflow>;
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<CliResult>;
  /** Starts a CLI command without waiting for it. */
  cliStart(args: string[]): { done: Promise<CliResult> };
  cleanup(): Promise<void>;
}

export async function createInstance(extraEnv: NodeJS.ProcessEnv = {}): Promise<TestInstance> {
  const home = await mkdtemp(join(tmpdir(), 'certflow-it-'));
  const db = await testDatabase();
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const adminPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CERTFLOW_HOME: home,
    // The runtime login, as servers and workers run in production; db.url is the owner's.
    DATABASE_URL: db.appUrl,
    TEMPORAL_ADDRESS: temporalAddress(),
    CERTFLOW_TASK_QUEUE: `test-${randomBytes(6).toString('hex')}`,
    CERTFLOW_HTTPS_PORT: String(httpsPort),
    CERTFLOW_HTTP_PORT: String(httpPort),
    CERTFLOW_ADMIN_PORT: String(adminPort),
    CERTFLOW_BIND: '127.0.0.1',
    CERTFLOW_KEY_PASSPHRASE: 'integration-test-passphrase',
    CERTFLOW_LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const children: Array<{ stop(): Promise<void> }> = [];
  const run =
    (cmd: string) =>
    async (more: NodeJS.ProcessEnv = {}, opts: { signingFaults?: SigningFaults } = {}) => {
      const child = await spawnCertflow({
        command: [cmd],
        env: { ...env, ...more },
        logFile: join(home, `${cmd}.log`),
        readyTimeoutMs: 120_000,
        argv: opts.signingFaults ? [runTs, faultyWorker, JSON.stringify(opts.signingFaults)] : undefined,
      });
      children.push(child);
      return child;
    };
  const cliStart = (args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) => {
    const child = spawn(process.execPath, [certflowBin, ...args], { env: { ...env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(opts.input ?? '');
    return { done: new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))) };
  };
  return {
    home,
    env,
    databaseUrl: db.url,
    pool: db.pool,
    httpsPort,
    httpPort,
    adminPort,
    startWorker: run('worker'),
    startServer: run('server'),
    startAdmin: run('admin'),
    cli: (args, opts) => cliStart(args, opts).done,
    cliStart: (args) => cliStart(args),
    async cleanup() {
      await Promise.all(children.map((c) => c.stop().catch(() => {})));
      await db.drop().catch(() => {});
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Runs a program (openssl, curl, ...) and returns its exit code and output. */
export function runTool(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, env: opts.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(); // tools like `openssl s_client` read stdin until EOF
  });
}

/** Makes a key and a CSR with openssl; returns the CSR path. */
export async function opensslCsr(dir: string, name: string, opts: { key?: string; subj: string; san?: string }): Promise<string> {
  const keyArgs = (opts.key ?? 'ec:P-256').startsWith('ec:')
    ? ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${(opts.key ?? 'ec:P-256').slice(3)}`]
    : ['-newkey', opts.key!];
  const csr = join(dir, `${name}.csr`);
  const args = ['req', '-new', ...keyArgs, '-nodes', '-keyout', join(dir, `${name}.key`), '-out', csr, '-subj', opts.subj];
  if (opts.san) args.push('-addext', `subjectAltName=${opts.san}`);
  const r = await runTool('openssl', args);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return csr;
}

/** `certflow start` or `certflow cluster` as a user runs it, with its output collected. */
export interface SupervisedStack {
  proc: ChildProcess;
  output: () => string;
  /** Waits until `re` matches the output after character `from` (default: all of it). */
  waitFor(re: RegExp, ms: number, from?: number): Promise<RegExpMatchArray>;
}

export function startSupervised(args: string[], env: NodeJS.ProcessEnv): SupervisedStack {
  const proc = spawn(process.execPath, [certflowBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return {
    proc,
    output: () => out,
    async waitFor(re, ms, from = 0) {
      const until = Date.now() + ms;
      for (;;) {
        const m = out.slice(from).match(re);
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`certflow ${args.join(' ')} exited (${proc.exitCode}):\n${out}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${re}:\n${out.slice(-6000)}`);
        await sleep(200);
      }
    },
  };
}

/** True while process `pid` exists. */
export { processAlive as alive } from '../../src/core/child.ts';
