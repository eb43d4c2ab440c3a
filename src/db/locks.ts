/**
 * Postgres advisory locks, named by a string (hashed with hashtext): the one place that
 * spells them in SQL. Transaction-scoped locks end with the transaction; session locks
 * must be released on the same connection.
 */
import type { Pool } from 'pg';
import type { Queryable } from './pool.ts';

/** Waits for the lock `name` until the transaction `tx` ends. */
export async function lockForTransaction(tx: Queryable, name: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
}

/** Waits for the session lock `name` on this connection; release it with unlockSession on the same one. */
export async function lockSession(conn: Queryable, name: string): Promise<void> {
  await conn.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
}

export async function unlockSession(conn: Queryable, name: string): Promise<void> {
  await conn.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
}

/** A cheap round trip: the database answers (health checks). */
export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}

/** Runs `fn` while holding the session lock `certflow:<name>` (waits for it): mutual exclusion between certflow processes. */
export async function withAdvisoryLock<T>(pool: Pool, name: string, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await lockSession(client, `certflow:${name}`);
    try {
      return await fn();
    } finally {
      await unlockSession(client, `certflow:${name}`).catch(() => {});
    }
  } finally {
    client.release();
  }
}
