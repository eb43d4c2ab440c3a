/** Cluster-wide mutual exclusion between certflow processes, by name (Postgres advisory locks). */
import type { Pool } from 'pg';

/** Runs `fn` while holding the session-level advisory lock `certflow:<name>` (waits for it). */
export async function withAdvisoryLock<T>(pool: Pool, name: string, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`certflow:${name}`]);
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`certflow:${name}`]).catch(() => {});
    }
  } finally {
    client.release();
  }
}
