/**
 * `certflow start` (= `npm start`): the whole stack in dev mode, supervised.
 * Postgres (embedded) -> migrations -> Temporal dev server -> worker -> server.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { preparePostgres, spawnPostgres } from '../db/embedded.ts';
import { databaseUrl, openDatabase } from '../db/open.ts';
import { resolveTemporalCli } from '../temporal/cli.ts';
import { spawnTemporalDevServer } from '../temporal/devserver.ts';
import { spawnCertflow } from './node-child.ts';
import { Supervisor } from './supervisor.ts';
import { announceFirstAdmin } from '../admin/first-admin.ts';
import { processEnv } from '../config/env.ts';

export async function startDevStack(config: Config, log: Logger, opts: { say: (m: string) => void }): Promise<void> {
  const { say } = opts;
  const p = paths(config);
  await mkdir(p.logDir, { recursive: true });
  const sup = new Supervisor(p.runDir, say);
  sup.refuseIfRunning(['server-1', 'worker-1'], 'a cluster (`certflow cluster`)');
  await sup.reapStale(['admin', 'server', 'worker', 'temporal', 'postgres']);

  stopOnSignals(sup, say);

  try {
    const env: NodeJS.ProcessEnv = { ...processEnv(), CERTFLOW_HOME: config.home };
    env.DATABASE_URL = await startDatabase(config, log, sup, say);

    if (!config.temporal.external) {
      const cli = await resolveTemporalCli({ home: config.home, log: say });
      const [host, port] = splitAddress(config.temporal.address);
      say(`starting Temporal dev server (${cli}, ${host}:${port}, UI on ${config.temporal.uiPort})`);
      await sup.add({
        name: 'temporal',
        start: () =>
          spawnTemporalDevServer({
            cli,
            ip: host,
            port,
            uiPort: config.temporal.uiPort,
            dbFile: p.temporalDb,
            namespace: config.temporal.namespace,
            logFile: join(p.logDir, 'temporal.log'),
          }),
      });
    } else {
      say(`using the Temporal cluster at TEMPORAL_ADDRESS=${config.temporal.address}`);
    }
    env.TEMPORAL_ADDRESS = config.temporal.address;

    say(
      `starting the worker (task queues ${config.temporal.taskQueue}, ${config.temporal.signingTaskQueue}; CA keys: ${config.keys.backend})`,
    );
    await sup.add({
      name: 'worker',
      start: () => spawnCertflow({ command: ['worker'], env, logFile: join(p.logDir, 'worker.log'), readyTimeoutMs: 180_000 }),
    });

    say(`starting the server (HTTPS ${config.bind}:${config.httpsPort}, HTTP ${config.bind}:${config.httpPort})`);
    let acmeUrl = '';
    await sup.add({
      name: 'server',
      start: async () => {
        const child = await spawnCertflow({ command: ['server'], env, logFile: join(p.logDir, 'server.log'), readyTimeoutMs: 180_000 });
        acmeUrl = String(child.ready.acmeDirectoryUrl ?? '');
        return child;
      },
    });
    say(`starting the operator console (HTTPS ${config.admin.bind}:${config.admin.port})`);
    let adminUrl = '';
    await sup.add({
      name: 'admin',
      start: async () => {
        const child = await spawnCertflow({ command: ['admin'], env, logFile: join(p.logDir, 'admin.log'), readyTimeoutMs: 180_000 });
        adminUrl = String(child.ready.adminUrl ?? '');
        return child;
      },
    });
    await announceFirstAdmin(config, log, say);
    const ui = config.temporal.external ? '' : `; Temporal UI http://127.0.0.1:${config.temporal.uiPort}`;
    say(`certflow ready — ACME directory ${acmeUrl}; console ${adminUrl}; trust anchor ${p.rootPem}${ui}; logs in ${p.logDir}`);
  } catch (e) {
    say(`start failed: ${errorMessage(e)}`);
    await sup.stopAll();
    process.exit(1);
  }
}

/** Stops every child on SIGINT or SIGTERM (reverse start order), then exits. */
export function stopOnSignals(sup: Supervisor, say: (m: string) => void): void {
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      say(`${signal} received: stopping the stack`);
      await sup.stopAll();
      say('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * Starts the embedded Postgres as the supervised child "postgres" (unless DATABASE_URL
 * names another server), applies the migrations and returns the database URL.
 */
export async function startDatabase(
  config: Config,
  log: Logger,
  sup: Supervisor,
  say: (m: string) => void,
  opts: { settings?: string[] } = {},
): Promise<string> {
  const p = paths(config);
  if (!config.databaseUrl) {
    say(`starting Postgres (embedded, 127.0.0.1:${config.embeddedPostgresPort}, data in ${p.pgData})`);
    await preparePostgres(config, { log: say });
    await sup.add({
      name: 'postgres',
      start: () =>
        spawnPostgres(config, { port: config.embeddedPostgresPort, logFile: join(p.logDir, 'postgres.log'), settings: opts.settings }),
    });
  } else {
    say('using the external Postgres at DATABASE_URL');
  }
  say('applying database migrations');
  await (await openDatabase(config, log)).end();
  return databaseUrl(config);
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}
