/**
 * API tokens of the console (table `admin_tokens`): for automation, each bound to one role
 * and to the console user it belongs to (owner). The secret is 256 random bits, so a plain
 * SHA-256 of it is what is stored.
 */
import type { Queryable } from '../pool.ts';

export interface TokenRow {
  id: string;
  name: string;
  role: string;
  /** The console user the token belongs to (null: made before tokens had users; it does not work). */
  owner: string | null;
  secretHash: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const COLUMNS = 'id, name, role, owner, secret_hash, created_by, created_at, expires_at, last_used_at, revoked_at';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toRow(r: any): TokenRow {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    owner: r.owner,
    secretHash: r.secret_hash,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export async function insert(
  db: Queryable,
  t: { id: string; name: string; role: string; owner: string; secretHash: string; createdBy: string; expiresAt: Date },
): Promise<TokenRow> {
  const { rows } = await db.query(
    `INSERT INTO admin_tokens (id, name, role, owner, secret_hash, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [t.id, t.name, t.role, t.owner, t.secretHash, t.createdBy, t.expiresAt],
  );
  return toRow(rows[0]);
}

export async function get(db: Queryable, id: string): Promise<TokenRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM admin_tokens WHERE id = $1`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function list(db: Queryable): Promise<TokenRow[]> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM admin_tokens ORDER BY created_at DESC, id`);
  return rows.map(toRow);
}

/** Marks a token revoked; false when there is no such token or it was revoked already. */
export async function revoke(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE admin_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
  return rowCount === 1;
}

/** Records a use (at most once a minute per token, to keep API calls write-free). */
export async function touch(db: Queryable, id: string): Promise<void> {
  await db.query(
    "UPDATE admin_tokens SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    [id],
  );
}
