import pg from 'pg';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
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

/** The database's state as the pool saw it last: for /healthz and the fail-fast guard. */
export interface DatabaseState {
  /** The last query or connection failed because the database did not answer. */
  down: boolean;
  lastError?: string;
  /** When the database was last seen failing / answering. */
  since?: Date;
}

const states = new WeakMap<Pool, DatabaseState>();

export function databaseState(pool: Pool): DatabaseState {
  return states.get(pool) ?? { down: false };
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
  guard(pool, opts.failFastMs ?? 1000);
  return pool;
}

function guard(pool: Pool, failFastMs: number): void {
  const state: DatabaseState = { down: false };
  states.set(pool, state);
  let openUntil = 0;
  const check = () => {
    if (Date.now() < openUntil) {
      throw new CaError('unavailable', `the database is not answering (${state.lastError ?? 'unknown error'})`, { details: { dependency: 'the database' } });
    }
  };
  const settle = <T>(p: Promise<T>): Promise<T> =>
    p.then(
      (v) => {
        if (state.down) Object.assign(state, { down: false, since: new Date(), lastError: undefined });
        return v;
      },
      (e: unknown) => {
        const fault = dependencyFault(e);
        if (!fault) throw e; // an answer of the database (a constraint, a syntax error): the caller's business
        openUntil = Date.now() + failFastMs;
        if (!state.down) state.since = new Date();
        state.down = true;
        state.lastError = errorMessage(e) || fault.message;
        throw fault;
      },
    );
  const rawQuery = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  const rawConnect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    if (typeof args[args.length - 1] === 'function') return rawQuery(...args);
    check();
    return settle(rawQuery(...args) as Promise<unknown>);
  };
  (pool as unknown as { connect: unknown }).connect = (...args: unknown[]) => {
    if (typeof args[0] === 'function') return rawConnect(...args);
    check();
    return settle(rawConnect() as Promise<PoolClient>).then(guardClient);
  };
}

/**
 * A checked-out client has no 'error' listener in pg-pool: a connection that dies while
 * it is checked out (the database killed between two statements of a transaction) would
 * be an unhandled 'error' event that ends the process. The listener notes the error, and
 * release() hands it to the pool, which then destroys the connection.
 */
function guardClient(client: PoolClient): PoolClient {
  let socketError: Error | undefined;
  const onError = (e: Error) => {
    socketError = e;
  };
  client.on('error', onError);
  const release = client.release.bind(client);
  client.release = (err?: Error | boolean) => {
    client.removeListener('error', onError);
    return release(err ?? socketError);
  };
  return client;
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
