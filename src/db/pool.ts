import pg from 'pg';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaError, dependencyFault, errorMessage } from '../core/errors.ts';

/**
 * Anything that runs a parameterized query: a Pool, a checked-out PoolClient or a Client.
 * Repositories take this so that callers choose between autocommit and a transaction.
 */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

export interface PoolOptions {
  /** Connections per process (default 10: the server, worker and CLI share one Postgres). */
  max?: number;
  /** Server-side limit of one statement (default 30 s): a stuck query fails instead of hanging a request. */
  statementTimeoutMs?: number;
  /** How long pool.connect() waits for a connection (default 10 s). */
  connectionTimeoutMs?: number;
  /**
   * Client-side limit of one query (default statementTimeoutMs + 2 s). The server-side
   * statement_timeout does not fire when the server itself is stuck (SIGSTOP, a network
   * that drops packets); this does.
   */
  queryTimeoutMs?: number;
  /**
   * After a query fails because the database does not answer, further queries fail at once
   * (CaError 'unavailable') for this long instead of each waiting for its own timeout
   * (default 1 s); then queries go through again, so the pool recovers by itself.
   */
  failFastMs?: number;
  applicationName?: string;
  /** Called for errors of idle connections (server restart, network); default: ignored. */
  onIdleError?: (err: Error) => void;
}

/**
 * A connection pool with limits suited to certflow's short OLTP queries. Its query() and
 * connect() turn "the database does not answer" (refused or reset connections, timeouts,
 * SQLSTATE classes 08/53/57) into CaError('unavailable'), fail fast for `failFastMs` after
 * such a failure, and recover on their own: pg replaces dead connections.
 */
export function createPool(url: string, opts: PoolOptions = {}): Pool {
  const statementTimeout = opts.statementTimeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 10_000,
    statement_timeout: statementTimeout,
    query_timeout: opts.queryTimeoutMs ?? statementTimeout + 2000,
    // A session left inside a transaction holds locks (the migration lock, row locks).
    idle_in_transaction_session_timeout: 60_000,
    application_name: opts.applicationName ?? 'certflow',
  });
  // Without a listener, an idle client's error (e.g. the dev supervisor restarting Postgres)
  // is an unhandled 'error' event that kills the process. pg drops that client by itself.
  pool.on('error', (err) => opts.onIdleError?.(err));
  // A database that cannot be reached (restarting, failing over, out of connections, a
  // frozen server) fails a request as 'unavailable' — 503 with Retry-After, a retried
  // activity — never as an internal error. Queries on the pool, checked-out clients and
  // connect() all map it; after such a failure the pool fails fast for `failFastMs`.
  const watch = watchAvailability(opts.failFastMs ?? 1000);
  mapUnavailable(pool, 'query', watch, prepareStatement);
  mapUnavailable(pool, 'connect', watch);
  pool.on('connect', (client) => {
    // Inside a checked-out client (a transaction) the query runs: no fail-fast check.
    mapUnavailable(client, 'query', { ...watch, check: () => {} }, prepareStatement);
    // pg-pool listens for errors of idle clients only: a checked-out client whose server
    // went away between two queries would emit an unheard 'error' and kill the process.
    // Its next query fails instead (as unavailable) and the pool discards it on release.
    client.on('error', () => {});
  });
  return pool;
}

/** True when `e` says the database cannot be reached or cannot serve right now (retrying later can help). */
export function isDatabaseUnavailable(e: unknown): boolean {
  return dependencyFault(e) !== undefined;
}

/** Failures that say the server itself is unreachable or frozen, not just one connection. */
const SERVER_DOWN =
  /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|timeout exceeded when trying to connect|connection timeout|Query read timeout|57P03|53300/i;

interface Watch {
  /** Throws at once while the pool fails fast. */
  check(): void;
  ok(): void;
  failed(e: unknown): void;
}

function watchAvailability(failFastMs: number): Watch {
  let openUntil = 0;
  let lastError = '';
  return {
    check() {
      if (Date.now() < openUntil) {
        throw new CaError('unavailable', `the database is unavailable: not answering (${lastError})`, {
          details: { dependency: 'the database' },
        });
      }
    },
    ok() {
      openUntil = 0;
    },
    failed(e) {
      // Only a server that cannot be reached at all (refused, timed out, not accepting
      // connections) makes the next queries fail at once; one connection that died does not.
      if (!SERVER_DOWN.test(`${(e as { code?: string }).code ?? ''} ${connectError(e)}`)) return;
      openUntil = Date.now() + failFastMs;
      lastError = connectError(e);
    },
  };
}

/** Distinct statement texts run as prepared statements per process (and so per connection), at most. */
const MAX_PREPARED = 500;
/** Statement text -> its prepared statement's name (a hash of the text: one name, one text). */
const preparedNames = new Map<string, string>();
/** Texts that must run unnamed: their prepared plan broke (a migration changed their result type). */
const unprepared = new Set<string>();
/** `SELECT *`-like results change shape with the table: such texts are never prepared. */
const STAR_RESULT = /(SELECT|RETURNING)\s+(\w+\.)?\*|\w\.\*/i;

/**
 * A parameterized query runs as a named (prepared) statement: Postgres parses and plans
 * its text once per connection instead of at every execution (certflow's
 * statements are few, short and run thousands of times). Texts without parameters (BEGIN,
 * COMMIT, migrations) run as they are; a process prepares at most MAX_PREPARED texts.
 */
function prepareStatement(args: unknown[]): unknown[] {
  const [text, values] = args;
  if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0 || unprepared.has(text)) return args;
  let name = preparedNames.get(text);
  if (name === undefined) {
    if (preparedNames.size >= MAX_PREPARED || STAR_RESULT.test(text)) return args;
    name = `certflow_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;
    preparedNames.set(text, name);
  }
  return [{ name, text, values }, ...args.slice(2)];
}

/** A prepared statement whose plan a schema change invalidated: its text runs unnamed from now on. */
function forgetBrokenPlan(args: unknown[], e: unknown): void {
  const text = args[0] as { name?: string; text?: string } | string;
  if (typeof text === 'object' && text?.name && (e as { code?: string }).code === '0A000' && text.text) {
    unprepared.add(text.text);
    preparedNames.delete(text.text);
  }
}

/**
 * Wraps a promise-returning method (callback calls pass through): its failures that mean
 * "the database is unavailable" become CaError('unavailable', dependency "the database").
 * `rewrite` changes the arguments of promise calls (prepareStatement).
 */
function mapUnavailable<T extends object>(
  target: T,
  method: 'query' | 'connect',
  watch: Watch,
  rewrite: (args: unknown[]) => unknown[] = (args) => args,
): void {
  const original = (target as Record<string, unknown>)[method] as (...args: unknown[]) => unknown;
  (target as Record<string, unknown>)[method] = function (this: unknown, ...given: unknown[]) {
    if (typeof given[given.length - 1] === 'function') return original.apply(target, given);
    try {
      watch.check();
    } catch (e) {
      return Promise.reject(e);
    }
    const args = rewrite(given);
    const result = original.apply(target, args);
    if (!result || typeof (result as Promise<unknown>).then !== 'function') return result;
    return (result as Promise<unknown>).then(
      (v) => {
        watch.ok();
        return v;
      },
      (e: unknown) => {
        forgetBrokenPlan(args, e);
        if (e instanceof CaError || !isDatabaseUnavailable(e)) throw e; // an answer of the database: the caller's business
        watch.failed(e);
        throw new CaError('unavailable', `the database is unavailable: ${connectError(e)}`, {
          cause: e,
          details: { dependency: 'the database' },
        });
      },
    );
  };
}
/**
 * Runs `fn` inside BEGIN/COMMIT on one connection; rolls back and rethrows on error. A
 * connection whose ROLLBACK failed is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw e;
  } finally {
    client.release(broken);
  }
}

/** "host:port" of a connection URL, for messages (never the password). */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/** SQLSTATEs that mean "not yet": the server is starting or shutting down, too many clients, the database is being created. */
const TRANSIENT_SQLSTATES = new Set(['57P03', '57P01', '53300', '3D000']);
/** SQLSTATEs that no amount of waiting fixes: wrong password, unknown role, no pg_hba entry. */
const FATAL_SQLSTATES = new Set(['28P01', '28000']);

/**
 * Waits until Postgres at `url` accepts a connection and answers `SELECT 1`, retrying
 * socket errors (refused, reset, timeout) and "not yet" answers until `timeoutMs`.
 * Authentication errors fail at once with 'config': retrying cannot fix them.
 */
export async function waitForDatabase(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    const remaining = deadline - Date.now();
    try {
      await probe(url, Math.max(500, Math.min(remaining, 5000)));
      return;
    } catch (e) {
      lastError = e;
      if (e instanceof pg.DatabaseError && e.code && FATAL_SQLSTATES.has(e.code)) {
        throw new CaError('config', `Postgres at ${describeUrl(url)} rejected the connection: ${connectError(e)}`, { cause: e });
      }
      // Any other answer from the server itself is not going to change by waiting.
      if (e instanceof pg.DatabaseError && !TRANSIENT_SQLSTATES.has(e.code ?? '')) break;
    }
    if (Date.now() + delay > deadline) break;
    await sleep(delay);
  }
  throw new CaError(
    'unavailable',
    `cannot connect to Postgres at ${describeUrl(url)} within ${Math.round(timeoutMs / 1000)} s: ${connectError(lastError)}`,
    { cause: lastError },
  );
}

/**
 * Socket errors of a host with several addresses (localhost = ::1 and 127.0.0.1) arrive as an
 * AggregateError whose own message is empty: show the inner ones.
 */
function connectError(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length) return e.errors.map(connectError).join('; ');
  return errorMessage(e) || String((e as { code?: unknown }).code ?? 'unknown error');
}

async function probe(url: string, connectTimeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  // A connection dropped after connect() surfaces as an 'error' event; the query rejects anyway.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}
