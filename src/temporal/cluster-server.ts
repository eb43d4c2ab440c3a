/**
 * A real Temporal server on Postgres, as `certflow cluster` runs it: the `temporal` and
 * `temporal_visibility` databases created and migrated with temporal-sql-tool (schemas
 * for the `postgres12` plugin, embedded in the tool), one process running all services
 * (frontend, history, matching, worker) from a generated config file, the namespace and
 * certflow's search attributes registered.
 *
 * The config file holds no secret: the database password reaches the server through the
 * environment (TEMPORAL_DB_PASSWORD, read by the file's template), so the same file works
 * under systemd with an EnvironmentFile.
 */
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import protobuf from 'protobufjs/minimal.js';
import { join } from 'node:path';
import { spawnLogged, logTail, runCommand, type ChildHandle } from '../core/child.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { assertPortFree } from '../core/net.ts';
import { ensureDatabase } from '../db/embedded.ts';
import { clusterMetadata } from '../db/temporal-metadata.ts';
import { untilTemporalReady } from './devserver.ts';
import type { TemporalServerBinaries } from './server-build.ts';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config.js';
import { TEMPORAL_TLS_SERVER_NAME, type ClusterTlsFiles } from '../config/index.ts';
import { processEnv } from '../config/env.ts';

/** Names of Temporal's two databases, next to certflow's on the same Postgres server. */
export const TEMPORAL_DATABASES = { default: 'temporal', visibility: 'temporal_visibility' } as const;
/** The environment variable the config template reads the database password from. */
export const TEMPORAL_DB_PASSWORD_ENV = 'TEMPORAL_DB_PASSWORD';
/** History shards of a new cluster (fixed once the cluster exists). */
export const DEFAULT_HISTORY_SHARDS = 4;
/** Connections per service (frontend, history, matching, worker) to each of Temporal's databases. */
export const TEMPORAL_POOLS = { default: 10, visibility: 3 } as const;
/** How long closed workflows are kept in a namespace certflow registers. */
export const NAMESPACE_RETENTION_DAYS = 30;

/** Connection settings of a Postgres server, as Temporal's SQL config and tool take them. */
export interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** sslmode, sslrootcert, ... from the URL's query: passed to the driver as they are. */
  connectAttributes: Record<string, string>;
}

/** The server of a postgres:// URL (the database name in it is not used). */
function postgresTarget(url: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CaError('config', 'the Postgres URL for Temporal is not a valid URL', { rule: 'env.DATABASE_URL' });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new CaError('config', `the Postgres URL for Temporal must start with postgres://, not ${u.protocol}//`, {
      rule: 'env.DATABASE_URL',
    });
  }
  const connectAttributes: Record<string, string> = {};
  for (const [k, v] of u.searchParams) connectAttributes[k] = v;
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    connectAttributes,
  };
}

/** URL of another database on the same server. */
function databaseUrlOn(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Runs `fn` on a short-lived connection to the database of `url`. */
async function onDatabase<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when the database of `url` exists (a user without rights on "postgres" can still use it). */
async function databaseExists(url: string): Promise<boolean> {
  try {
    return await onDatabase(url, async () => true);
  } catch (e) {
    if ((e as { code?: string }).code === '3D000') return false; // invalid_catalog_name
    throw e;
  }
}

/** The cluster name certflow's Temporal config gives the cluster (clusterMetadata). */
const CLUSTER_NAME = 'active';

/**
 * The history shard count Temporal recorded when it first started on the server of `url`
 * (the ClusterMetadata row of its database), or undefined when it never has. Read after
 * setupTemporalSchemas, which creates the database and its tables. Temporal keeps that
 * number whatever a later config says.
 */
export async function recordedHistoryShards(url: string): Promise<number | undefined> {
  const metadata = await onDatabase(databaseUrlOn(url, TEMPORAL_DATABASES.default), (client) => clusterMetadata(client, CLUSTER_NAME));
  return metadata && historyShardCountOf(metadata);
}

/** Field 2 (history_shard_count, varint) of Temporal's persistence ClusterMetadata message. */
export function historyShardCountOf(message: Uint8Array): number | undefined {
  const reader = protobuf.Reader.create(message);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === ((2 << 3) | 0)) return reader.int32();
    reader.skipType(tag & 7);
  }
  return undefined;
}

/**
 * Creates Temporal's two databases unless they exist, then brings their schemas to the
 * version this temporal-sql-tool knows (idempotent: a current schema is left alone).
 * `url` is any database URL of the server (certflow's own); its user needs CREATEDB, or
 * the databases must exist already.
 */
export async function setupTemporalSchemas(args: { sqlTool: string; url: string; log?: (msg: string) => void }): Promise<void> {
  const target = postgresTarget(args.url);
  for (const [kind, database] of Object.entries(TEMPORAL_DATABASES)) {
    try {
      if (!(await databaseExists(databaseUrlOn(args.url, database)))) await ensureDatabase(databaseUrlOn(args.url, 'postgres'), database);
    } catch (e) {
      throw new CaError(
        'config',
        `cannot create the database ${database} on ${target.host}:${target.port} as ${target.user}: ${errorMessage(e)}. ` +
          `Create it (owned by ${target.user}) and start again`,
        { cause: e },
      );
    }
    const schema = `postgresql/v12/${kind === 'default' ? 'temporal' : 'visibility'}`;
    const env: NodeJS.ProcessEnv = {
      ...processEnv(),
      SQL_PLUGIN: 'postgres12',
      SQL_HOST: target.host,
      SQL_PORT: String(target.port),
      SQL_USER: target.user,
      // In the environment, not on the command line (ps shows arguments to everyone).
      SQL_PASSWORD: target.password,
      SQL_DATABASE: database,
      SQL_CONNECT_ATTRIBUTES: new URLSearchParams(target.connectAttributes).toString(),
    };
    // setup-schema -v 0.0 creates the version tables (IF NOT EXISTS) and leaves a newer
    // version alone; update-schema applies the versioned steps the database lacks.
    await runCommand(args.sqlTool, ['setup-schema', '-v', '0.0'], { env, what: `temporal-sql-tool setup-schema (${database})` });
    await runCommand(args.sqlTool, ['update-schema', '--schema-name', schema], {
      env,
      what: `temporal-sql-tool update-schema (${database})`,
    });
    args.log?.(`Temporal schema ${schema} is current in database ${database}`);
  }
}

export interface TemporalClusterConfig {
  /** Address the server listens on and advertises (membership, frontend). */
  ip: string;
  /**
   * Frontend gRPC port; the server also takes the next 9 ports: history, matching and
   * worker gRPC (+1..+3), their and the frontend's membership ports (+4..+7), the
   * frontend's HTTP API (+8) and Prometheus metrics (+9).
   */
  port: number;
  /** Any database URL of the Postgres server holding Temporal's two databases. */
  databaseUrl: string;
  historyShards: number;
  logLevel?: string;
  /**
   * mTLS with certificates of certflow's cluster CA (src/ca/cluster-tls.ts): the frontend
   * (gRPC and HTTP API) and the internode ports require a client certificate of that CA.
   */
  tls?: ClusterTlsFiles;
}

/**
 * Temporal keeps its members' ports in a smallint column (cluster_membership.rpc_port): a
 * membership port of 32768 or more makes the server fail at start.
 */
const TEMPORAL_MAX_PORT = 32767 - 9;

/** The ports a server on `port` uses, for messages and for checking that they are free. */
function temporalPorts(port: number) {
  if (!Number.isInteger(port) || port < 1 || port > TEMPORAL_MAX_PORT) {
    throw new CaError(
      'config',
      `the Temporal server's port must be between 1 and ${TEMPORAL_MAX_PORT}, not ${port}: it takes the next 9 ports too, and Temporal stores ports as smallint`,
      {
        rule: 'cluster.temporalPort',
      },
    );
  }
  return {
    frontend: port,
    history: port + 1,
    matching: port + 2,
    worker: port + 3,
    frontendMembership: port + 4,
    historyMembership: port + 5,
    matchingMembership: port + 6,
    workerMembership: port + 7,
    http: port + 8,
    metrics: port + 9,
  };
}

const yamlString = (s: string) => JSON.stringify(s);

/**
 * The Temporal server's Postgres driver, in `certflow cluster`'s config and as
 * docker-compose.yml's `DB` (test/unit/compose.test.ts): pgx, which prepares each statement
 * once per connection and keeps it, where the `postgres12` plugin's lib/pq parses and plans
 * every statement anew (with a round trip more): a fifth less Postgres CPU per ACME order
 * (docs/development.md). Same schema, same databases: a cluster set up with either runs
 * with either.
 */
export const TEMPORAL_SQL_PLUGIN = 'postgres12_pgx';

/**
 * The server's config file. Pools: each of the four services opens its own pool per
 * store, so the server holds at most 4 × (10 + 3) = 52 connections (TEMPORAL_POOLS);
 * history does most of the writing.
 */
function renderTemporalConfig(c: TemporalClusterConfig, dynamicConfigFile: string): string {
  const target = postgresTarget(c.databaseUrl);
  const p = temporalPorts(c.port);
  const attrs = Object.entries(target.connectAttributes);
  const datastore = (database: string, maxConns: number) =>
    [
      '      sql:',
      `        pluginName: "${TEMPORAL_SQL_PLUGIN}"`,
      `        databaseName: ${yamlString(database)}`,
      `        connectAddr: ${yamlString(`${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`)}`,
      '        connectProtocol: "tcp"',
      `        user: ${yamlString(target.user)}`,
      `        password: {{ env "${TEMPORAL_DB_PASSWORD_ENV}" | quote }}`,
      `        maxConns: ${maxConns}`,
      `        maxIdleConns: ${maxConns}`,
      '        maxConnLifetime: "1h"',
      ...(attrs.length ? ['        connectAttributes:', ...attrs.map(([k, v]) => `          ${yamlString(k)}: ${yamlString(v)}`)] : []),
    ].join('\n');
  const service = (name: string, grpc: number, membership: number, http?: number) =>
    [
      `  ${name}:`,
      '    rpc:',
      `      grpcPort: ${grpc}`,
      `      membershipPort: ${membership}`,
      `      bindOnIP: ${yamlString(c.ip)}`,
      ...(http ? [`      httpPort: ${http}`] : []),
    ].join('\n');
  const tls = c.tls ? renderTls(c.tls) : '';
  return `# enable-template
# Written by \`certflow cluster\` at every start: edit the command's options, not this file.
# The database password comes from the environment variable ${TEMPORAL_DB_PASSWORD_ENV}.
log:
  stdout: true
  level: ${yamlString(c.logLevel ?? 'info')}

persistence:
  # Fixed when the cluster is created: Temporal keeps the number it recorded then.
  numHistoryShards: ${c.historyShards}
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  datastores:
    postgres-default:
${datastore(TEMPORAL_DATABASES.default, TEMPORAL_POOLS.default)}
    postgres-visibility:
${datastore(TEMPORAL_DATABASES.visibility, TEMPORAL_POOLS.visibility)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: ${yamlString(c.ip)}
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: ${yamlString(`${c.ip}:${p.metrics}`)}
${tls}
services:
${service('frontend', p.frontend, p.frontendMembership, p.http)}
${service('history', p.history, p.historyMembership)}
${service('matching', p.matching, p.matchingMembership)}
${service('worker', p.worker, p.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "${CLUSTER_NAME}"
  currentClusterName: "${CLUSTER_NAME}"
  clusterInformation:
    ${CLUSTER_NAME}:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: ${yamlString(`${c.ip}:${p.frontend}`)}

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: ${yamlString(dynamicConfigFile)}
  pollInterval: "60s"
`;
}

/**
 * global.tls: one certificate of the cluster CA serves the frontend and the internode
 * ports, and is the client certificate of internode calls and of the server's own system
 * workers calling the frontend; clients must present a certificate of the cluster CA (and
 * only that CA: a certificate of certflow's issuing CA, which devices get, opens nothing).
 * The files are read again every minute, so renewed certificates apply without a restart.
 */
function renderTls(f: ClusterTlsFiles): string {
  const server = [
    '      server:',
    `        certFile: ${yamlString(f.serverCert)}`,
    `        keyFile: ${yamlString(f.serverKey)}`,
    '        requireClientAuth: true',
    `        clientCaFiles: [${yamlString(f.ca)}]`,
  ];
  const client = [
    '      client:',
    `        serverName: ${yamlString(TEMPORAL_TLS_SERVER_NAME)}`,
    `        rootCaFiles: [${yamlString(f.ca)}]`,
  ];
  return ['  tls:', '    refreshInterval: "1m"', '    internode:', ...server, ...client, '    frontend:', ...server, ...client, ''].join(
    '\n',
  );
}

/**
 * Dynamic config: the transfer queue's poll rate raised as in dev mode (its default of 20
 * polls/s per shard leaves new tasks waiting when many workflows start at once).
 */
export const DYNAMIC_CONFIG = `# Written by \`certflow cluster\`.
history.transferProcessorMaxPollRPS:
  - value: 10000
`;

/** Writes config.yaml and dynamic-config.yaml into `dir`; returns the config file's path. */
export async function writeTemporalConfig(dir: string, c: TemporalClusterConfig): Promise<string> {
  const configFile = join(dir, 'config.yaml');
  const dynamicFile = join(dir, 'dynamic-config.yaml');
  await writeFileAtomic(dynamicFile, DYNAMIC_CONFIG);
  await writeFileAtomic(configFile, renderTemporalConfig(c, dynamicFile));
  return configFile;
}

/** The command line that runs the server from a config file (also for systemd units). */
export function temporalServerArgs(configFile: string): string[] {
  // No authorizer: who may call the frontend is decided by mTLS (a certificate of the
  // cluster CA) and the address it listens on; see docs/operations.md.
  return ['--config-file', configFile, '--allow-no-auth', 'start'];
}

export interface TemporalClusterServerHandle extends ChildHandle {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** The history shards the cluster was created with (Temporal ignores a config that says otherwise). */
  historyShards: number;
}

export interface SpawnTemporalClusterOptions {
  binaries: TemporalServerBinaries;
  config: TemporalClusterConfig;
  /** Where config.yaml and dynamic-config.yaml are written. */
  configDir: string;
  namespace: string;
  logFile: string;
  /** How long to wait for the frontend, the namespace and the search attributes (default 120 s). */
  timeoutMs?: number;
  log?: (msg: string) => void;
  /** The client side of the mTLS (when config.tls is set). */
  clientTls?: TLSConfig;
}

/**
 * Writes the config, starts the server and waits until it serves the namespace with
 * certflow's search attributes (registering them on a new cluster).
 */
export async function spawnTemporalClusterServer(opts: SpawnTemporalClusterOptions): Promise<TemporalClusterServerHandle> {
  const { config } = opts;
  for (const [what, port] of Object.entries(temporalPorts(config.port))) {
    await assertPortFree(config.ip, port, `the Temporal server (${what} port)`);
  }
  mkdirSync(opts.configDir, { recursive: true });
  const configFile = await writeTemporalConfig(opts.configDir, config);
  const address = `${config.ip.includes(':') ? `[${config.ip}]` : config.ip}:${config.port}`;
  const child = spawnLogged(opts.binaries.server, temporalServerArgs(configFile), {
    logFile: opts.logFile,
    env: { ...processEnv(), [TEMPORAL_DB_PASSWORD_ENV]: postgresTarget(config.databaseUrl).password },
  });
  try {
    const { created, historyShards } = await untilTemporalReady(
      {
        address,
        namespace: opts.namespace,
        exited: child.exited,
        what: 'the Temporal server',
        registerNamespaceDays: NAMESPACE_RETENTION_DAYS,
        tls: opts.clientTls,
      },
      opts.timeoutMs ?? 120_000,
    );
    if (created.length) opts.log?.(`registered ${created.join(', ')}`);
    return { ...child, address, namespace: opts.namespace, historyShards };
  } catch (e) {
    await child.stop(10_000);
    const tail = await logTail(opts.logFile, 3000);
    throw new CaError(
      'unavailable',
      `the Temporal server did not start on ${address}: ${errorMessage(e)}\n--- ${opts.logFile} (end) ---\n${tail}`,
      {
        cause: e,
      },
    );
  }
}
