/**
 * A complete certflow installation for benchmarks: a temp home, an embedded Postgres
 * (durable: fsync and synchronous commit on, unlike the test runner's throw-away cluster),
 * a Temporal dev server, one `certflow worker` and one `certflow server`, all on free
 * loopback ports. The same launchers as scripts/test.js; the Temporal CLI is resolved with
 * home = <repo>/.certflow so that its venv is reused.
 *
 *   const stack = await startBenchStack();
 *   try { ... https://localhost:${stack.httpsPort} ... } finally { await stack.stop(); }
 *
 * Progress goes to stderr. Logs of all four servers are in `stack.home` (removed by stop()
 * unless CERTFLOW_BENCH_KEEP=1 is set, or `keepHome` is passed).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCertflow } from '../src/cli/node-child.ts';
import { freePort } from '../src/core/net.ts';
import { preparePostgres, spawnPostgres, type PostgresHandle } from '../src/db/embedded.ts';
import { resolveTemporalCli } from '../src/temporal/cli.ts';
import { spawnTemporalDevServer, type TemporalDevServerHandle } from '../src/temporal/devserver.ts';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const certflowBin = join(repo, 'bin', 'certflow.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BenchStackOptions {
  /** Extra environment of the worker, the server and cli() (wins over the stack's own). */
  env?: Record<string, string>;
  /** Keep the temp home (logs, databases) after stop(); also CERTFLOW_BENCH_KEEP=1. */
  keepHome?: boolean;
  /** Progress messages (default: stderr with a "stack:" prefix). */
  log?: (msg: string) => void;
}

export interface BenchStack {
  /** CERTFLOW_HOME of the worker and the server; also holds the logs and both databases. */
  home: string;
  /** Environment of the certflow processes (and of cli()). */
  env: NodeJS.ProcessEnv;
  httpsPort: number;
  httpPort: number;
  /** The root CA certificate (PEM text): the trust anchor for HTTPS clients. */
  rootPem: string;
  /** Path of root.pem (for curl/openssl). */
  rootPemFile: string;
  temporalAddress: string;
  /** TLS of a connection to that Temporal: the cluster's client certificate (mTLS); none for the dev server. */
  temporalTls?: TLSConfig;
  temporalNamespace: string;
  /** URL of the `certflow` database. */
  databaseUrl: string;
  /** Process ids, for CPU accounting (postgres: the postmaster; its backends are its children). */
  pids: { postgres: number; temporal: number; worker: number; server: number };
  /** Runs `certflow <args>` with the stack's environment. */
  cli(args: string[], opts?: { input?: string }): Promise<CliResult>;
  /** Stops server, worker, Temporal and Postgres, then removes the temp home. Safe to call twice. */
  stop(): Promise<void>;
}

/** Variables of the caller's environment that would point the children at another installation. */
export function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('CERTFLOW_') || name === 'DATABASE_URL' || name === 'TEMPORAL_ADDRESS' || name === 'TEMPORAL_NAMESPACE') {
      delete env[name];
    }
  }
  return env;
}

/** Runs `certflow <args>` with `env` (BenchStack.cli). */
export function certflowCli(env: NodeJS.ProcessEnv): BenchStack['cli'] {
  return (args, cliOpts = {}) =>
    new Promise((resolveCli) => {
      const child = spawn(process.execPath, [certflowBin, ...args], { env, cwd: repo });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', (e) => resolveCli({ code: -1, stdout, stderr: stderr + e.message }));
      child.stdin.end(cliOpts.input ?? '');
      child.on('close', (code) => resolveCli({ code: code ?? -1, stdout, stderr }));
    });
}

export function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

export async function startBenchStack(opts: BenchStackOptions = {}): Promise<BenchStack> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`stack: ${msg}\n`));
  const keep = opts.keepHome ?? process.env.CERTFLOW_BENCH_KEEP === '1';
  const home = mkdtempSync(join(tmpdir(), 'certflow-bench-'));
  // mkdtemp makes 0700 directories; as root, Postgres runs as the "postgres" user and must reach its data dir.
  chmodSync(home, 0o755);
  const started = performance.now();
  const children: Array<{ pid?: number; stop(): Promise<void> }> = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // Front end first, then the worker, then what they depend on.
      for (const child of [...children].reverse()) {
        await child.stop().catch((e: Error) => log(`stopping pid ${child.pid}: ${e.message}`));
      }
      if (keep) log(`kept ${home}`);
      else rmSync(home, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    const postgresStart = (async (): Promise<PostgresHandle> => {
      // Not ephemeral: initdb with fsync, server with fsync and synchronous_commit (the defaults).
      await preparePostgres({ home }, { log });
      const port = await freePort();
      const pg = await spawnPostgres({ home }, { port, logFile: join(home, 'postgres.log'), log });
      log(`Postgres ready on 127.0.0.1:${port}, fsync on (${seconds(started)})`);
      return pg;
    })();
    const temporalStart = (async (): Promise<TemporalDevServerHandle> => {
      const cli = await resolveTemporalCli({ home: join(repo, '.certflow'), log });
      const port = await freePort();
      const server = await spawnTemporalDevServer({
        cli,
        ip: '127.0.0.1',
        port,
        dbFile: join(home, 'temporal.sqlite'),
        namespace: 'default',
        logFile: join(home, 'temporal.log'),
      });
      log(`Temporal ready on ${server.address} (${seconds(started)})`);
      return server;
    })();
    const [pgResult, tpResult] = await Promise.allSettled([postgresStart, temporalStart]);
    for (const r of [pgResult, tpResult]) if (r.status === 'fulfilled') children.push(r.value);
    if (pgResult.status === 'rejected') throw pgResult.reason;
    if (tpResult.status === 'rejected') throw tpResult.reason;
    const pg = pgResult.value;
    const temporal = tpResult.value;

    const httpsPort = await freePort();
    const httpPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...inheritedEnv(),
      CERTFLOW_HOME: home,
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      CERTFLOW_HTTPS_PORT: String(httpsPort),
      CERTFLOW_HTTP_PORT: String(httpPort),
      CERTFLOW_BIND: '127.0.0.1',
      CERTFLOW_KEY_PASSPHRASE: 'certflow-benchmark-passphrase',
      CERTFLOW_LOG_LEVEL: 'info',
      ...opts.env,
    };
    // The worker creates the CA hierarchy; the server waits for it, then gets its TLS
    // certificate through the worker: start them in this order.
    const worker = await spawnCertflow({ command: ['worker'], env, logFile: join(home, 'worker.log'), readyTimeoutMs: 180_000 });
    children.push(worker);
    log(`certflow worker ready, pid ${worker.pid} (${seconds(started)})`);
    const server = await spawnCertflow({ command: ['server'], env, logFile: join(home, 'server.log'), readyTimeoutMs: 120_000 });
    children.push(server);
    log(`certflow server ready on https://127.0.0.1:${httpsPort}, pid ${server.pid} (${seconds(started)})`);

    const rootPemFile = join(home, 'ca', 'root.pem');
    const cli = certflowCli(env);
    return {
      home,
      env,
      httpsPort,
      httpPort,
      rootPem: readFileSync(rootPemFile, 'utf8'),
      rootPemFile,
      temporalAddress: temporal.address,
      temporalNamespace: temporal.namespace,
      databaseUrl: pg.url,
      pids: { postgres: pg.pid, temporal: temporal.pid, worker: worker.pid!, server: server.pid! },
      cli,
      stop,
    };
  } catch (e) {
    log(`cannot start the benchmark stack: ${(e as Error)?.message ?? e}`);
    await stop();
    throw e;
  }
}
