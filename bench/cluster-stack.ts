/**
 * The production topology for benchmarks: `certflow cluster` in a temp home (its embedded
 * Postgres, durable like bench/stack.ts's; a Temporal server on it with 4 history shards;
 * 2 workers; 2 servers), with a round-robin TCP balancer in front of both servers whose port
 * is the stack's `httpsPort`. It needs the Temporal server built (`npm run cluster -- build`).
 *
 *   const stack = await startClusterBenchStack({ env: { ... } });
 *   try { ... https://localhost:${stack.httpsPort} ... } finally { await stack.stop(); }
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/index.ts';
import { freePort, freePortRange } from '../src/core/net.ts';
import { embeddedDatabaseUrl } from '../src/db/embedded.ts';
import { findTemporalServer, TEMPORAL_SERVER_VERSION } from '../src/temporal/server-build.ts';
import { temporalTlsOptions } from '../src/temporal/tls.ts';
import { startBalancer } from '../test/helpers/balancer.ts';
import { certflowCli, inheritedEnv, seconds, type BenchStack, type BenchStackOptions } from './stack.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHILDREN = ['postgres', 'temporal', 'worker-1', 'worker-2', 'server-1', 'server-2'] as const;

export interface ClusterBenchStack extends BenchStack {
  /** Every process of the cluster, for CPU accounting (the supervisor is left out: its descendants are the others). */
  processes: Record<string, number>;
}

export async function startClusterBenchStack(opts: BenchStackOptions = {}): Promise<ClusterBenchStack> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`stack: ${msg}\n`));
  const keep = opts.keepHome ?? process.env.CERTFLOW_BENCH_KEEP === '1';
  const serverDir = process.env.CERTFLOW_TEMPORAL_SERVER_DIR || join(repo, '.certflow', 'temporal-server');
  if (!(await findTemporalServer(serverDir))) {
    throw new Error(
      `the Temporal server ${TEMPORAL_SERVER_VERSION} is not built in ${serverDir}: run \`npm run cluster -- build\` first (needs Go, about 5 minutes)`,
    );
  }
  const home = mkdtempSync(join(tmpdir(), 'certflow-bench-cluster-'));
  chmodSync(home, 0o755); // the embedded Postgres runs as user "postgres" when root
  const started = performance.now();
  // Server 1 on base..base+2 (HTTPS, HTTP, admin), server 2 three ports higher.
  const base = await freePortRange(6);
  const postgresPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    CERTFLOW_HOME: home,
    CERTFLOW_BIND: '127.0.0.1',
    CERTFLOW_HTTPS_PORT: String(base),
    CERTFLOW_HTTP_PORT: String(base + 1),
    CERTFLOW_ADMIN_PORT: String(base + 2),
    CERTFLOW_POSTGRES_PORT: String(postgresPort),
    // Temporal keeps ports in a smallint column: its block must end below 32768.
    CERTFLOW_TEMPORAL_PORT: String(await freePortRange(10, { below: 32768 })),
    CERTFLOW_TEMPORAL_SERVER_DIR: serverDir,
    CERTFLOW_KEY_PASSPHRASE: 'certflow-benchmark-passphrase',
    CERTFLOW_LOG_LEVEL: 'info',
    ...opts.env,
  };
  const child = spawn(process.execPath, [join(repo, 'bin', 'certflow.js'), 'cluster', '--port-step', '3'], {
    env,
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => {
    output += d;
    for (const line of d.toString('utf8').split('\n').filter(Boolean)) log(line.replace(/^certflow: /, 'cluster: '));
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  let stopped: Promise<void> | undefined;
  let balancer: Awaited<ReturnType<typeof startBalancer>> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await balancer?.close();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (keep) log(`kept ${home}`);
      else rmSync(home, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    for (let deadline = Date.now() + 600_000; !output.includes('certflow cluster ready'); await sleep(200)) {
      if (child.exitCode !== null) throw new Error(`certflow cluster exited (${child.exitCode})`);
      if (Date.now() > deadline) throw new Error('certflow cluster not ready within 600 s');
    }
    balancer = await startBalancer([base, base + 3]);
    log(`cluster ready, balancer on https://127.0.0.1:${balancer.port} (${seconds(started)})`);
    const pid = (name: string) => Number(readFileSync(join(home, 'run', `${name}.pid`), 'utf8'));
    const processes = Object.fromEntries(CHILDREN.map((name) => [name, pid(name)]));
    const rootPemFile = join(home, 'ca', 'root.pem');
    return {
      home,
      env,
      httpsPort: balancer.port,
      httpPort: base + 1,
      rootPem: readFileSync(rootPemFile, 'utf8'),
      rootPemFile,
      temporalAddress: `127.0.0.1:${env.CERTFLOW_TEMPORAL_PORT}`,
      // The cluster's client certificate, found in its home as the CLI finds it.
      temporalTls: temporalTlsOptions(loadConfig(env).temporal.tls),
      temporalNamespace: 'default',
      databaseUrl: embeddedDatabaseUrl({ home }, postgresPort),
      pids: {
        postgres: processes.postgres!,
        temporal: processes.temporal!,
        worker: processes['worker-1']!,
        server: processes['server-1']!,
      },
      processes,
      cli: certflowCli(env),
      stop,
    };
  } catch (e) {
    log(`cannot start the cluster benchmark stack: ${(e as Error)?.message ?? e}\n${output.slice(-3000)}`);
    await stop();
    throw e;
  }
}
