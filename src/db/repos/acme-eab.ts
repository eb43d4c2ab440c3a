/**
 * External account binding keys (table `acme_eab_keys`, RFC 8555 7.3.4): created by the
 * operator (`certflow eab create`), each usable once, for one ACME alias. Using a key binds
 * it to the new account in the transaction that creates the account.
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

export interface EabKeyRow {
  kid: string;
  /** ACME alias the key is for ('' = the default directory). */
  alias: string;
  /** The MAC key, sealed under the secrets key (src/acme/eab.ts opens it). */
  hmacKeyEnc: string | null;
  /** A MAC key written in clear before migration 053, until the server seals it. */
  plaintextKey: Buffer | null;
  /** The account the key was used for; null while unused. */
  accountId: string | null;
  createdAt: Date;
  usedAt: Date | null;
}

interface DbEabKey {
  kid: string;
  alias: string;
  hmac_key: Buffer | null;
  hmac_key_enc: string | null;
  account_id: string | null;
  created_at: Date;
  used_at: Date | null;
}

const COLUMNS = 'kid, alias, hmac_key, hmac_key_enc, account_id, created_at, used_at';

function toRow(r: DbEabKey): EabKeyRow {
  return {
    kid: r.kid,
    alias: r.alias,
    hmacKeyEnc: r.hmac_key_enc,
    plaintextKey: r.hmac_key,
    accountId: r.account_id,
    createdAt: r.created_at,
    usedAt: r.used_at,
  };
}

export async function insert(db: Queryable, k: { kid: string; alias: string; hmacKeyEnc: string }): Promise<EabKeyRow> {
  const { rows } = await db.query<DbEabKey>(
    `INSERT INTO acme_eab_keys (kid, alias, hmac_key_enc) VALUES ($1, $2, $3)
     ON CONFLICT (kid) DO NOTHING RETURNING ${COLUMNS}`,
    [k.kid, k.alias, k.hmacKeyEnc],
  );
  if (!rows[0]) throw new CaError('conflict', `EAB key id "${k.kid}" exists`, { rule: 'eab.exists' });
  return toRow(rows[0]);
}

export async function get(db: Queryable, kid: string): Promise<EabKeyRow | null> {
  const { rows } = await db.query<DbEabKey>(`SELECT ${COLUMNS} FROM acme_eab_keys WHERE kid = $1`, [kid]);
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * Binds an unused key to an account; false when the key was used meanwhile. Call it in the
 * transaction that inserts the account: the row lock taken by the UPDATE makes a second
 * transaction with the same key wait, then find account_id set and get false.
 */
export async function bind(db: Queryable, kid: string, accountId: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE acme_eab_keys SET account_id = $2, used_at = now() WHERE kid = $1 AND account_id IS NULL', [
    kid,
    accountId,
  ]);
  return rowCount === 1;
}

/** Keys still in clear (written before migration 053). */
export async function listPlaintext(db: Queryable): Promise<EabKeyRow[]> {
  const { rows } = await db.query<DbEabKey>(`SELECT ${COLUMNS} FROM acme_eab_keys WHERE hmac_key IS NOT NULL ORDER BY kid`);
  return rows.map(toRow);
}

/** Replaces a key in clear by its sealed form; false when another process sealed it first. */
export async function seal(db: Queryable, kid: string, hmacKeyEnc: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE acme_eab_keys SET hmac_key_enc = $2, hmac_key = NULL WHERE kid = $1 AND hmac_key IS NOT NULL',
    [kid, hmacKeyEnc],
  );
  return rowCount === 1;
}

/** Oldest first. */
export async function list(db: Queryable, opts: { alias?: string } = {}): Promise<EabKeyRow[]> {
  const { rows } = await db.query<DbEabKey>(
    `SELECT ${COLUMNS} FROM acme_eab_keys WHERE $1::text IS NULL OR alias = $1 ORDER BY created_at, kid`,
    [opts.alias ?? null],
  );
  return rows.map(toRow);
}
