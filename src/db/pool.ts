import pg from 'pg';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaError, errorMessage } from '../core/errors.ts';

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
  applicationName?: string;
  /** Called for errors of idle connections (server restart, network); default: ignored. */
  onIdleError?: (err: Error) => void;
}

/** A connection pool with limits suited to certflow's short OLTP queries. */
export function createPool(url: string, opts: PoolOptions = {}): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 10_000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    // A session left inside a transaction holds locks (the migration lock, row locks).
    idle_in_transaction_session_timeout: 60_000,
    application_name: opts.applicationName ?? 'certflow',
  });
  // Without a listener, an idle client's error (e.g. the dev supervisor restarting Postgres)
  // is an unhandled 'error' event that kills the process. pg drops that client by itself.
  pool.on('error', (err) => opts.onIdleError?.(err));
  // A database that cannot be reached (restarting, failing over, out of connections) fails
  // a request as 'unavailable' — 503 with Retry-After, a retried activity — never as an
  // internal error. Queries on the pool, checked-out clients and connect() all map it.
  mapUnavailable(pool, 'query');
  mapUnavailable(pool, 'connect');
  pool.on('connect', (client) => {
    mapUnavailable(client, 'query');
    // pg-pool listens for errors of idle clients only: a checked-out client whose server
    // went away between two queries would emit an unheard 'error' and kill the process.
    // Its next query fails instead (as unavailable) and the pool discards it on release.
    client.on('error', () => {});
  });
  return pool;
}

/** SQLSTATEs of a server that is going away or cannot take the connection (classes 08, 57P, 53300). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** pg's own messages for a connection that broke or never came (no code). */
const UNAVAILABLE_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client was closed/i;

/** True when `e` says the database cannot be reached right now (retrying later can help). */
export function isDatabaseUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET_CODES.has(code))) return true;
  return e instanceof AggregateError ? e.errors.some(isDatabaseUnavailable) : UNAVAILABLE_MESSAGE.test(e.message);
}

function toUnavailable(e: unknown): never {
  if (isDatabaseUnavailable(e)) throw new CaError('unavailable', `the database is unavailable: ${connectError(e)}`, { cause: e });
  throw e;
}

/** Wraps a promise-returning method (callback calls pass through) so that its failures go through toUnavailable. */
function mapUnavailable<T extends object>(target: T, method: 'query' | 'connect'): void {
  const original = (target as Record<string, unknown>)[method] as (...args: unknown[]) => unknown;
  (target as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
    const result = original.apply(target, args);
    return result && typeof (result as Promise<unknown>).then === 'function' ? (result as Promise<unknown>).catch(toUnavailable) : result;
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
export function describeUrl(url: string): string {
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
