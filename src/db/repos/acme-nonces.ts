/**
 * ACME nonces (RFC 8555 6.5): the HMAC key every server process shares (acme_nonce_keys, sealed)
 * and the set of used nonces (acme_used_nonces). Nonces themselves are not stored: see
 * src/acme/nonce.ts.
 */
import type { Queryable } from '../pool.ts';

/**
 * The HMAC key `id`, as stored (sealed: src/acme/nonce.ts opens it); the first caller
 * stores `generate()`, concurrent callers all get that one.
 */
export async function sealedHmacKey(db: Queryable, id: number, generate: () => string): Promise<string> {
  const read = async () =>
    (await db.query<{ hmac_key_enc: string }>('SELECT hmac_key_enc FROM acme_nonce_keys WHERE id = $1', [id])).rows[0]?.hmac_key_enc;
  const existing = await read();
  if (existing) return existing;
  await db.query('INSERT INTO acme_nonce_keys (id, hmac_key_enc) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, generate()]);
  const stored = await read();
  if (!stored) throw new Error(`ACME nonce key ${id} vanished`);
  return stored;
}

/**
 * Records the use of a nonce: true when this is its first use. Of two concurrent uses only
 * one inserts the row; the other conflicts (ON CONFLICT waits for the first to commit).
 */
export async function use(db: Queryable, nonce: Buffer, keepUntil: Date): Promise<boolean> {
  const { rowCount } = await db.query('INSERT INTO acme_used_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING', [
    nonce,
    keepUntil,
  ]);
  return rowCount === 1;
}

/** Deletes up to `limit` rows of nonces that can no longer be accepted; returns how many. */
export async function deleteExpired(db: Queryable, limit = 5000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM acme_used_nonces WHERE nonce IN (SELECT nonce FROM acme_used_nonces WHERE expires_at <= now() LIMIT $1)`,
    [limit],
  );
  return rowCount ?? 0;
}

/** Number of used-nonce rows (tests, metrics). */
export async function countUsed(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM acme_used_nonces');
  return Number(rows[0]!.n);
}
