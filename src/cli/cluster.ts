/**
 * `certflow cluster` (= `npm run cluster`): the production topology on one machine,
 * supervised like dev mode. Postgres (embedded, or DATABASE_URL) -> migrations -> a real
 * Temporal server on that Postgres (built once from the Go module proxy, schemas applied,
 * >= 4 history shards, namespace and search attributes registered) -> N workers -> N servers.
 *
 * Subcommands for running the same pieces under another supervisor (systemd):
 * `cluster build` (the Temporal server binaries), `cluster setup` (databases, schemas,
 * config file) and `cluster namespace` (namespace and search attributes).
 */
import { announceFirstAdmin } from '../admin/first-admin.ts';
import { Option, type Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync, readFileSync, watchFile } from 'node:fs';
import {
  clusterTlsFiles,
  loadConfig,
  paths,
  temporalTlsDir,
  clusterClientTls,
  type ClusterTlsFiles,
  type Config,
} from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { databaseUrl, ownerDatabaseUrl } from '../db/open.ts';
import {
  DEFAULT_HISTORY_SHARDS,
  NAMESPACE_RETENTION_DAYS,
  recordedHistoryShards,
  setupTemporalSchemas,
  spawnTemporalClusterServer,
  TEMPORAL_DB_PASSWORD_ENV,
  TEMPORAL_POOLS,
  temporalServerArgs,
  writeTemporalConfig,
  type TemporalClusterConfig,
} from '../temporal/cluster-server.ts';
import { untilTemporalReady } from '../temporal/devserver.ts';
import { ensureTemporalServer, ensureTemporalUi, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../temporal/server-build.ts';
import type { CliContext } from './context.ts';
import { runCertflow, spawnCertflow } from './node-child.ts';
import { temporalTlsOptions } from '../temporal/tls.ts';
import { spawnTemporalUiServer, temporalUiUpstream } from '../temporal/ui-server.ts';
import { splitAddress, startDatabase, stopOnSignals } from './start.ts';
import { Supervisor } from './supervisor.ts';
import { processEnv } from '../config/env.ts';

export interface ClusterOptions {
  servers: number;
  workers: number;
  /** Server i listens on the base ports + (i - 1) × portStep. */
  portStep: number;
  /** History shards of a new Temporal cluster (DEFAULT_HISTORY_SHARDS when not given); an existing one keeps its own. */
  historyShards?: number;
}

/**
 * What to tell an operator whose `--history-shards` an existing cluster did not take
 * (Temporal keeps the number a cluster was created with and only logs that it ignored the
 * config's); undefined when there is nothing to say.
 */
export function historyShardsNote(requested: number | undefined, actual: number): string | undefined {
  if (requested === undefined || requested === actual) return undefined;
  return `--history-shards ${requested} applies only to a new Temporal cluster: this one was created with ${actual} history shards and keeps them`;
}

/**
 * The history shards to write into Temporal's config: those the cluster recorded when it was
 * created, so that the file says what the server does; for a new cluster the requested
 * number (default DEFAULT_HISTORY_SHARDS). Tells the operator when the request is not taken.
 */
async function historyShardsToWrite(url: string, requested: number | undefined, say: (m: string) => void): Promise<number> {
  const recorded = await recordedHistoryShards(url);
  const note = recorded === undefined ? undefined : historyShardsNote(requested, recorded);
  if (note) say(note);
  return recorded ?? requested ?? DEFAULT_HISTORY_SHARDS;
}

/** The ports of server `i` (1-based): HTTPS and HTTP. */
function serverPorts(config: Config, i: number, portStep: number) {
  const offset = (i - 1) * portStep;
  return { https: config.httpsPort + offset, http: config.httpPort + offset };
}

/** The topology `certflow cluster` starts unless told otherwise (docker-compose.yml mirrors it). */
export const CLUSTER_DEFAULTS = { servers: 2, workers: 2, portStep: 100 } as const;

/** Connections the Postgres needs: Temporal (4 services × its pools) + 10 per certflow process + CLI and spare. */
export function clusterMaxConnections(opts: Pick<ClusterOptions, 'servers' | 'workers'>): number {
  const temporal = 4 * (TEMPORAL_POOLS.default + TEMPORAL_POOLS.visibility);
  return Math.max(100, temporal + 10 * (opts.servers + opts.workers) + 40);
}

/** Builds (or finds) the Temporal server and prepares its databases; returns the binaries. */
async function prepareTemporal(config: Config, url: string, say: (m: string) => void) {
  const binaries = await ensureTemporalServer({ dir: config.temporalServerDir, log: say });
  await setupTemporalSchemas({ sqlTool: binaries.sqlTool, url, log: say });
  return binaries;
}

async function startCluster(config: Config, opts: ClusterOptions, say: (m: string) => void): Promise<void> {
  const log = createLogger('supervisor', 'warn');
  const p = paths(config);
  await mkdir(p.logDir, { recursive: true });
  const sup = new Supervisor(p.runDir, say);
  sup.refuseIfRunning(['server', 'worker'], 'a dev stack (`certflow start`)');
  const workers = Array.from({ length: opts.workers }, (_, i) => `worker-${i + 1}`);
  const servers = Array.from({ length: opts.servers }, (_, i) => `server-${i + 1}`);
  await sup.reapStale(['admin', ...servers, ...workers, 'temporal-ui', 'temporal', 'postgres']);
  stopOnSignals(sup, say);

  try {
    const env: NodeJS.ProcessEnv = {
      ...processEnv(),
      CERTFLOW_HOME: config.home,
      // Every certificate names the same CRL and AIA URLs, whichever worker signs it.
      CERTFLOW_PUBLIC_HTTP_URL: config.publicHttpUrl,
    };
    env.DATABASE_URL = await startDatabase(config, log, sup, say, { settings: [`max_connections=${clusterMaxConnections(opts)}`] });

    const [ip, port] = splitAddress(config.temporal.address);
    let temporalLine: string;
    let tlsFiles: ClusterTlsFiles | undefined;
    if (!config.temporal.external) {
      // Temporal's databases belong to the owner login (the runtime login may not create databases).
      const temporalDbUrl = ownerDatabaseUrl(config) ?? env.DATABASE_URL;
      const binaries = await prepareTemporal(config, temporalDbUrl, say);
      // Temporal's frontend and internode ports require a client certificate of certflow's
      // cluster CA (src/ca/cluster-tls.ts); certflow's processes and the UI server get one.
      say("certificates for Temporal's mTLS (certflow's cluster CA)");
      const tls = await clusterCerts(config, env, ip, say);
      tlsFiles = tls;
      const clientTls = clusterClientTls(tls);
      Object.assign(env, {
        TEMPORAL_TLS_CA: clientTls.caFile,
        TEMPORAL_TLS_CERT: clientTls.certFile,
        TEMPORAL_TLS_KEY: clientTls.keyFile,
        TEMPORAL_TLS_SERVER_NAME: clientTls.serverName,
      });
      const temporalConfig: TemporalClusterConfig = {
        ip,
        port,
        databaseUrl: temporalDbUrl,
        historyShards: await historyShardsToWrite(temporalDbUrl, opts.historyShards, say),
        tls,
      };
      say(`starting the Temporal server ${binaries.version} (${ip}:${port} and the next 9 ports, on Postgres, mTLS)`);
      let historyShards = 0;
      await sup.add({
        name: 'temporal',
        start: async () => {
          const server = await spawnTemporalClusterServer({
            binaries,
            config: temporalConfig,
            configDir: join(config.home, 'temporal'),
            namespace: config.temporal.namespace,
            logFile: join(p.logDir, 'temporal.log'),
            log: say,
            clientTls: temporalTlsOptions(clientTls),
          });
          historyShards = server.historyShards;
          return server;
        },
      });
      temporalLine = `Temporal ${binaries.version} at ${config.temporal.address} (${historyShards} history shards on Postgres, mTLS)`;

      // The Temporal UI on loopback; operators reach it through the console at /temporal/.
      const ui = await ensureTemporalUi({ dir: config.temporalServerDir, log: say });
      const uiConfig = {
        temporalAddress: config.temporal.address,
        host: '127.0.0.1',
        port: config.temporal.uiPort,
        namespace: config.temporal.namespace,
        tls: clientTls,
      };
      say(`starting the Temporal UI server ${ui.version} (127.0.0.1:${uiConfig.port}, served by the console at /temporal/)`);
      await sup.add({
        name: 'temporal-ui',
        start: () =>
          spawnTemporalUiServer({
            binary: ui,
            config: uiConfig,
            dir: join(config.home, 'temporal-ui'),
            logFile: join(p.logDir, 'temporal-ui.log'),
          }),
      });
      env.CERTFLOW_TEMPORAL_UI_PROXY = temporalUiUpstream(uiConfig);
    } else {
      say(`using the Temporal cluster at TEMPORAL_ADDRESS=${config.temporal.address}`);
      await registerNamespace(config, 60_000, say);
      temporalLine = `Temporal at ${config.temporal.address}`;
    }
    env.TEMPORAL_ADDRESS = config.temporal.address;

    const child = (name: string, command: 'server' | 'worker' | 'admin', childEnv: NodeJS.ProcessEnv) => ({
      name,
      start: () => spawnCertflow({ command: [command], env: childEnv, logFile: join(p.logDir, `${name}.log`), readyTimeoutMs: 180_000 }),
    });
    const serverEnv = (i: number): NodeJS.ProcessEnv => {
      const ports = serverPorts(config, i, opts.portStep);
      return { ...env, CERTFLOW_HTTPS_PORT: String(ports.https), CERTFLOW_HTTP_PORT: String(ports.http) };
    };
    // worker-1 creates the CA hierarchy (and the software key passphrase) on a first start,
    // server-1 the HTTPS key and certificate the servers share (tls/): the others follow.
    say(
      `starting ${opts.workers} workers (task queues ${config.temporal.taskQueue}, ${config.temporal.signingTaskQueue}; CA keys: ${config.keys.backend})`,
    );
    await sup.add(child(workers[0]!, 'worker', env));
    const s1 = serverPorts(config, 1, opts.portStep);
    say(
      `starting ${opts.servers} servers (HTTPS ${config.bind}:${s1.https}, HTTP ${s1.http}; each next one ${opts.portStep} ports higher)`,
    );
    await Promise.all([
      ...workers.slice(1).map((name) => sup.add(child(name, 'worker', env))),
      sup.add(child(servers[0]!, 'server', serverEnv(1))),
    ]);
    await Promise.all(servers.slice(1).map((name, i) => sup.add(child(name, 'server', serverEnv(i + 2)))));
    // One operator console for the whole installation (it keeps no state of its own).
    say(`starting the operator console (HTTPS ${config.admin.bind}:${config.admin.port})`);
    await sup.add(child('admin', 'admin', env));
    await announceFirstAdmin(config, log, say);
    if (tlsFiles) keepClusterCertsCurrent({ sup, config, env, ip, files: tlsFiles, children: [...workers, ...servers, 'admin'], say });

    const host = new URL(config.publicHttpsUrl).hostname;
    const directories = servers.map((_, i) => `https://${host}:${serverPorts(config, i + 1, opts.portStep).https}/acme/directory`);
    const consoleUrl = `https://localhost:${config.admin.port}/`;
    const uiLine = env.CERTFLOW_TEMPORAL_UI_PROXY ? `; Temporal UI ${consoleUrl}temporal/ (after console login)` : '';
    say(
      `certflow cluster ready — ACME directories ${directories.join(', ')}; console ${consoleUrl}${uiLine}; trust anchor ${p.rootPem}; ${temporalLine}; logs in ${p.logDir}`,
    );
  } catch (e) {
    say(`cluster start failed: ${errorMessage(e)}`);
    await sup.stopAll();
    process.exit(1);
  }
}

/** Registers the namespace (if missing) and certflow's search attributes at TEMPORAL_ADDRESS. */
async function registerNamespace(config: Config, timeoutMs: number, say: (m: string) => void): Promise<void> {
  const { address, namespace } = config.temporal;
  try {
    const { created } = await untilTemporalReady(
      {
        address,
        namespace,
        what: `Temporal at ${address}`,
        registerNamespaceDays: NAMESPACE_RETENTION_DAYS,
        tls: temporalTlsOptions(config.temporal.tls),
      },
      timeoutMs,
    );
    say(
      created.length
        ? `registered ${created.join(', ')} at ${address}`
        : `namespace ${namespace} and certflow's search attributes exist at ${address}`,
    );
  } catch (e) {
    if (CaError.is(e)) throw e;
    throw new CaError('unavailable', `Temporal at ${address}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Runs `certflow cluster certs` (a process of its own: it opens the CA key store) and
 * returns the files. The Temporal server's certificate names its listening address too
 * when that is not loopback.
 */
async function clusterCerts(config: Config, env: NodeJS.ProcessEnv, ip: string, say: (m: string) => void): Promise<ClusterTlsFiles> {
  const names = isLoopback(ip) ? [] : ['--name', ip];
  const out = await runCertflow(['cluster', 'certs', ...names], env);
  for (const line of out.trim().split('\n')) if (line) say(line.replace(/^certflow: /, '  '));
  return clusterTlsFiles(temporalTlsDir(config.home));
}

/**
 * Temporal's mTLS certificates while the cluster runs: `certflow cluster certs` once a day
 * renews what is due. When the client certificate changes (that renewal, or an operator's
 * `certflow cluster certs --force`), certflow's processes are restarted one at a time, so
 * that their connections use it before the old one expires; the others keep serving
 * meanwhile. The Temporal server and the UI server read renewed files by themselves.
 */
function keepClusterCertsCurrent(args: {
  sup: Supervisor;
  config: Config;
  env: NodeJS.ProcessEnv;
  ip: string;
  files: ClusterTlsFiles;
  children: string[];
  say: (m: string) => void;
}): void {
  const { sup, files, say } = args;
  const fingerprint = () => (existsSync(files.clientCert) ? readFileSync(files.clientCert, 'utf8') : '');
  let current = fingerprint();
  let restarting = false;
  const restartIfRenewed = async () => {
    if (restarting || fingerprint() === current || !fingerprint()) return;
    restarting = true;
    current = fingerprint();
    say(`Temporal's client certificate was renewed: restarting ${args.children.join(', ')} one at a time`);
    try {
      for (const name of args.children) await sup.restart(name);
      say("certflow's processes use the renewed Temporal client certificate");
    } finally {
      restarting = false;
      void restartIfRenewed(); // renewed again meanwhile
    }
  };
  watchFile(files.clientCert, { interval: 5000, persistent: false }, () => void restartIfRenewed());
  setInterval(
    () =>
      void clusterCerts(args.config, args.env, args.ip, say)
        .then(restartIfRenewed)
        .catch((e: unknown) => say(`renewing Temporal's mTLS certificates failed (tried again tomorrow): ${errorMessage(e)}`)),
    86_400_000,
  ).unref();
}

const isLoopback = (ip: string) => ip === 'localhost' || ip === '::1' || /^127\./.test(ip);

const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CaError('malformed', `${name} must be a positive integer, not ${v}`);
  return n;
};

export function registerClusterCommands(root: Command, cli: CliContext): void {
  const cluster = root
    .command('cluster')
    .description(`the production topology on this machine: a Temporal server ${TEMPORAL_SERVER_VERSION} on Postgres, 2 servers, 2 workers`);
  const shardsOption = () =>
    new Option(
      '--history-shards <n>',
      `history shards of a NEW Temporal cluster, fixed once created (default: ${DEFAULT_HISTORY_SHARDS}; an existing cluster keeps its own)`,
    ).argParser(positive('--history-shards'));

  cluster
    .command('run', { isDefault: true })
    .description('start everything, supervised (the default: `certflow cluster`)')
    .addOption(new Option('--servers <n>', 'certflow server processes').default(CLUSTER_DEFAULTS.servers).argParser(positive('--servers')))
    .addOption(new Option('--workers <n>', 'certflow worker processes').default(CLUSTER_DEFAULTS.workers).argParser(positive('--workers')))
    .addOption(
      new Option('--port-step <n>', 'server i listens on the base ports + (i-1) × this')
        .default(CLUSTER_DEFAULTS.portStep)
        .argParser(positive('--port-step')),
    )
    .addOption(shardsOption())
    .action(async (opts: ClusterOptions) => {
      await startCluster(loadConfig(), opts, cli.say);
      await new Promise(() => {}); // runs until a signal stops it
    });

  cluster
    .command('build')
    .description(
      `build the Temporal server ${TEMPORAL_SERVER_VERSION}, temporal-sql-tool and the Temporal UI server ${TEMPORAL_UI_VERSION} from the Go module proxy, or find the earlier builds`,
    )
    .action(async () => {
      const config = loadConfig();
      const build = { dir: config.temporalServerDir, log: cli.say };
      const binaries = await ensureTemporalServer(build);
      const ui = await ensureTemporalUi(build);
      if (cli.json()) cli.printJson({ ...binaries, uiVersion: ui.version, uiServer: ui.uiServer });
      else
        cli.say(
          `Temporal server ${binaries.version}: ${binaries.server}; schema tool: ${binaries.sqlTool}; Temporal UI server ${ui.version}: ${ui.uiServer}`,
        );
    });

  cluster
    .command('certs')
    .description(
      "issue or renew the certificates of Temporal's mTLS from certflow's cluster CA: the Temporal server's and the one certflow's processes and the UI server connect with",
    )
    .option('--name <name...>', 'more names the Temporal server is reached by (SANs of its certificate)', [])
    .option('--dir <dir>', 'where the files go (default: $CERTFLOW_HOME/temporal-tls)')
    .option('--force', 'renew both certificates now, even if they are current')
    .option('--owner <uid:gid>', 'give the files to this user (containers whose Temporal server or UI server runs as another user)')
    .action(async (opts: { name: string[]; dir?: string; force?: boolean; owner?: string }) => {
      const owner = opts.owner === undefined ? undefined : /^(\d+):(\d+)$/.exec(opts.owner);
      if (owner === null) throw new CaError('malformed', `--owner ${opts.owner} is not <uid>:<gid>`);
      const { runClusterCerts } = await import('../temporal/cluster-certs.ts');
      const r = await runClusterCerts(loadConfig(), {
        names: opts.name,
        dir: opts.dir,
        force: Boolean(opts.force),
        say: cli.say,
        owner: owner ? { uid: Number(owner[1]), gid: Number(owner[2]) } : undefined,
      });
      if (cli.json()) cli.printJson(r);
      else cli.say(r.issued.length ? `issued ${r.issued.join(', ')} into ${r.files.dir}` : `all current in ${r.files.dir}`);
    });

  cluster
    .command('setup')
    .description(
      "create Temporal's databases on the Postgres of DATABASE_URL (as CERTFLOW_DATABASE_OWNER_URL's login if set), apply their schemas, write the server's config file",
    )
    .option('--ip <address>', 'address the Temporal server listens on and advertises', '127.0.0.1')
    .addOption(new Option('--port <n>', 'frontend port (the server uses it and the next 9)').default(7233).argParser(positive('--port')))
    .addOption(shardsOption())
    .action(async (opts: { ip: string; port: number; historyShards?: number }) => {
      const config = loadConfig();
      const url = ownerDatabaseUrl(config) ?? databaseUrl(config);
      const binaries = await prepareTemporal(config, url, cli.say);
      // With the files of `certflow cluster certs`, the server requires mTLS.
      const tls = clusterTlsFiles(temporalTlsDir(config.home));
      const configFile = await writeTemporalConfig(join(config.home, 'temporal'), {
        ip: opts.ip,
        port: opts.port,
        databaseUrl: url,
        historyShards: await historyShardsToWrite(url, opts.historyShards, cli.say),
        tls: existsSync(tls.serverCert) ? tls : undefined,
      });
      const command = [binaries.server, ...temporalServerArgs(configFile)];
      if (cli.json()) cli.printJson({ ...binaries, configFile, command, passwordEnv: TEMPORAL_DB_PASSWORD_ENV });
      else
        cli.say(
          `wrote ${configFile}; start the server with ${TEMPORAL_DB_PASSWORD_ENV} set to the database password:\n  ${command.join(' ')}`,
        );
    });

  cluster
    .command('namespace')
    .description("register the namespace and certflow's search attributes at TEMPORAL_ADDRESS (waits for the server)")
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the server').default(120).argParser(positive('--timeout')))
    .action(async (opts: { timeout: number }) => {
      await registerNamespace(loadConfig(), opts.timeout * 1000, cli.say);
    });
}
