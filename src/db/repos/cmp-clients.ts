/**
 * Registered CMP clients (table `cmp_clients`): a reference (the senderKID of its
 * MAC-protected messages) with an encrypted shared secret, or a pinned signer certificate
 * (for a registration authority). Written by `certflow cmp-client`, read by the CMP front
 * end on every request, so that removing or disabling a client takes effect at once.
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

export interface CmpClientRow {
  ref: string;
  /** AES-256-GCM ciphertext of the secret (src/cmp/secrets.ts); null for certificate clients. */
  secretEnc: string | null;
  /** Hex SHA-256 of a registered signer certificate; null for MAC clients. */
  certSha256: string | null;
  profile: string | null;
  aliases: string[];
  ra: boolean;
  requireApproval: boolean;
  enabled: boolean;
  /** Where notices about its certificates (expiry) go; null: nowhere. */
  email: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewCmpClient {
  ref: string;
  secretEnc?: string | null;
  certSha256?: string | null;
  profile?: string | null;
  aliases?: string[];
  ra?: boolean;
  requireApproval?: boolean;
  email?: string | null;
}

interface DbRow {
  ref: string;
  secret_enc: string | null;
  cert_sha256: string | null;
  profile: string | null;
  aliases: string[];
  ra: boolean;
  require_approval: boolean;
  enabled: boolean;
  email: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'ref, secret_enc, cert_sha256, profile, aliases, ra, require_approval, enabled, email, created_at, updated_at';

function toRow(r: DbRow): CmpClientRow {
  return {
    ref: r.ref,
    secretEnc: r.secret_enc,
    certSha256: r.cert_sha256,
    profile: r.profile,
    aliases: r.aliases,
    ra: r.ra,
    requireApproval: r.require_approval,
    enabled: r.enabled,
    email: r.email,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function insert(db: Queryable, c: NewCmpClient): Promise<CmpClientRow> {
  const { rows } = await db.query<DbRow>(
    `INSERT INTO cmp_clients (ref, secret_enc, cert_sha256, profile, aliases, ra, require_approval, email)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      c.ref,
      c.secretEnc ?? null,
      c.certSha256 ?? null,
      c.profile ?? null,
      c.aliases ?? [],
      c.ra ?? false,
      c.requireApproval ?? false,
      c.email ?? null,
    ],
  );
  if (!rows[0])
    throw new CaError('conflict', `CMP client "${c.ref}" (or a client with that certificate) exists`, { rule: 'cmpClient.exists' });
  return toRow(rows[0]);
}

export async function get(db: Queryable, ref: string): Promise<CmpClientRow | null> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM cmp_clients WHERE ref = $1`, [ref]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function getByCertificate(db: Queryable, sha256Hex: string): Promise<CmpClientRow | null> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM cmp_clients WHERE cert_sha256 = $1`, [sha256Hex]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function list(db: Queryable): Promise<CmpClientRow[]> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM cmp_clients ORDER BY ref`);
  return rows.map(toRow);
}

export async function remove(db: Queryable, ref: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM cmp_clients WHERE ref = $1', [ref]);
  return rowCount === 1;
}

export async function setEnabled(db: Queryable, ref: string, enabled: boolean): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE cmp_clients SET enabled = $2, updated_at = now() WHERE ref = $1', [ref, enabled]);
  return rowCount === 1;
}

export async function setSecret(db: Queryable, ref: string, secretEnc: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE cmp_clients SET secret_enc = $2, updated_at = now() WHERE ref = $1 AND secret_enc IS NOT NULL',
    [ref, secretEnc],
  );
  return rowCount === 1;
}
