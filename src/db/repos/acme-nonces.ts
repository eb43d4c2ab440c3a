/**
 * ACME anti-replay nonces (table `acme_nonces`, RFC 8555 6.5). A nonce is a row until it is
 * used or expires; using it deletes it, so that exactly one request can use it, whichever
 * server process receives that request. Expiry is judged by Postgres' clock, the one clock
 * all server processes share.
 */
import type { Queryable } from '../pool.ts';

/** Stores a new nonce valid for `lifetimeSeconds` from now. */
export async function insert(db: Queryable, value: string, lifetimeSeconds: number): Promise<void> {
  await db.query(`INSERT INTO acme_nonces (value, expires_at) VALUES ($1, now() + make_interval(secs => $2))`, [value, lifetimeSeconds]);
}

/**
 * Uses a nonce: true when it existed and had not expired. The DELETE is the whole check:
 * of two concurrent requests with the same nonce only one gets the row back. An expired
 * row is deleted as well (it is garbage either way) but does not count.
 */
export async function consume(db: Queryable, value: string): Promise<boolean> {
  const { rows } = await db.query<{ valid: boolean }>(
    `WITH used AS (DELETE FROM acme_nonces WHERE value = $1 RETURNING expires_at)
     SELECT expires_at > now() AS valid FROM used`,
    [value],
  );
  return rows[0]?.valid === true;
}

/** Deletes up to `limit` expired nonces; returns how many. Bounded so that it stays cheap. */
export async function deleteExpired(db: Queryable, limit = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM acme_nonces WHERE value IN (SELECT value FROM acme_nonces WHERE expires_at <= now() LIMIT $1)`,
    [limit],
  );
  return rowCount ?? 0;
}

/** Number of stored nonces (tests, metrics). */
export async function count(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM acme_nonces');
  return Number(rows[0]!.n);
}
