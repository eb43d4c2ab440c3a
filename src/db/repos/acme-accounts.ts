/**
 * ACME accounts (table `acme_accounts`, RFC 8555 7.3). Written by the ACME front end only
 * (new-account, account update, key change); an account is found by id (its kid URL) or by
 * the RFC 7638 thumbprint of its key, which is unique per ACME alias.
 */
import type { JWK } from 'jose';
import { CaError } from '../../core/errors.ts';
import { notify } from '../listen.ts';
import type { Queryable } from '../pool.ts';

/** An ACME account as stored (table acme_accounts). */
export interface AcmeAccount {
  id: string;
  alias: string;
  jwk: JWK;
  /** RFC 7638 thumbprint (base64url) of the account key: the key authorization's suffix. */
  thumbprint: string;
  status: 'valid' | 'deactivated' | 'revoked';
  contact: string[];
  tosAgreed: string | null;
  eabKid: string | null;
  createdAt: Date;
}

export type AcmeAccountStatus = AcmeAccount['status'];

export interface NewAcmeAccount {
  id: string;
  alias: string;
  jwk: JWK;
  thumbprint: string;
  contact: string[];
  tosAgreed: string | null;
  eabKid: string | null;
  /** Client address the account was created from (rate limit). */
  createdIp?: string;
}

interface DbAccount {
  id: string;
  alias: string;
  jwk: JWK;
  thumbprint: string;
  status: AcmeAccountStatus;
  contact: string[];
  tos_agreed: string | null;
  eab_kid: string | null;
  created_at: Date;
}

const COLUMNS = 'id, alias, jwk, thumbprint, status, contact, tos_agreed, eab_kid, created_at';

function toAccount(r: DbAccount): AcmeAccount {
  return {
    id: r.id,
    alias: r.alias,
    jwk: r.jwk,
    thumbprint: r.thumbprint,
    status: r.status,
    contact: r.contact,
    tosAgreed: r.tos_agreed,
    eabKid: r.eab_kid,
    createdAt: r.created_at,
  };
}

export async function get(db: Queryable, id: string): Promise<AcmeAccount | null> {
  const { rows } = await db.query<DbAccount>(`SELECT ${COLUMNS} FROM acme_accounts WHERE id = $1`, [id]);
  return rows[0] ? toAccount(rows[0]) : null;
}

/** The account of an alias whose key has this thumbprint. */
export async function getByThumbprint(db: Queryable, alias: string, thumbprint: string): Promise<AcmeAccount | null> {
  const { rows } = await db.query<DbAccount>(`SELECT ${COLUMNS} FROM acme_accounts WHERE alias = $1 AND thumbprint = $2`, [
    alias,
    thumbprint,
  ]);
  return rows[0] ? toAccount(rows[0]) : null;
}

/**
 * Stores a new valid account; null when the alias already has an account with this key
 * (a concurrent new-account with the same key): the caller then answers with that one.
 * ON CONFLICT DO NOTHING rather than catching 23505 keeps a caller's transaction usable.
 */
export async function insert(db: Queryable, a: NewAcmeAccount): Promise<AcmeAccount | null> {
  const { rows } = await db.query<DbAccount>(
    `INSERT INTO acme_accounts (id, alias, jwk, thumbprint, status, contact, tos_agreed, eab_kid, created_ip)
     VALUES ($1, $2, $3, $4, 'valid', $5, $6, $7, $8)
     ON CONFLICT (alias, thumbprint) DO NOTHING
     RETURNING ${COLUMNS}`,
    // jsonb columns: pg would send a JS array as a Postgres array, so stringify.
    [a.id, a.alias, JSON.stringify(a.jwk), a.thumbprint, JSON.stringify(a.contact), a.tosAgreed, a.eabKid, a.createdIp ?? null],
  );
  return rows[0] ? toAccount(rows[0]) : null;
}

/** Accounts created from `address` since `since` (rate limit; the caller holds its lock). */
export async function countCreatedFrom(db: Queryable, address: string, since: Date): Promise<{ count: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    'SELECT count(*)::int AS n, min(created_at) AS oldest FROM acme_accounts WHERE created_ip = $1 AND created_at > $2',
    [address, since],
  );
  return { count: rows[0]!.n, oldest: rows[0]!.oldest };
}

/** Server processes cache accounts (src/acme/account-cache.ts); a change is announced here. */
export const ACCOUNT_CHANNEL = 'certflow_acme_account';

export interface AccountChanges {
  contact?: string[];
  /** URL of the terms of service the account (now) agrees to. */
  tosAgreed?: string;
  /** Only ever to 'deactivated' or 'revoked': no way back to 'valid'. */
  status?: Exclude<AcmeAccountStatus, 'valid'>;
}

/**
 * Applies changes to a valid account and returns it; null when there is no valid account
 * with this id (deactivated meanwhile: RFC 8555 7.3.6 makes that final).
 */
export async function update(db: Queryable, id: string, changes: AccountChanges): Promise<AcmeAccount | null> {
  const { rows } = await db.query<DbAccount>(
    `UPDATE acme_accounts
     SET contact = COALESCE($2::jsonb, contact),
         tos_agreed = COALESCE($3, tos_agreed),
         status = COALESCE($4, status),
         updated_at = now()
     WHERE id = $1 AND status = 'valid'
     RETURNING ${COLUMNS}`,
    [id, changes.contact ? JSON.stringify(changes.contact) : null, changes.tosAgreed ?? null, changes.status ?? null],
  );
  if (rows[0]) await notify(db, ACCOUNT_CHANNEL, id);
  return rows[0] ? toAccount(rows[0]) : null;
}

/**
 * Thrown by changeKey when another account of the alias has the new key. It does not name
 * that account: inside a transaction the failed UPDATE has aborted it, so look it up after
 * the rollback (getByThumbprint).
 */
export class KeyInUseError extends CaError {
  constructor(thumbprint: string, cause?: unknown) {
    super('conflict', 'another account uses this key', { rule: 'acme.account.keyInUse', details: { thumbprint }, cause });
  }
}

/**
 * Replaces the key of a valid account whose key is still `oldThumbprint` (RFC 8555 7.3.5);
 * null when the account changed meanwhile (another key change, deactivation). A new key
 * that another account of the alias has (unique (alias, thumbprint)) throws KeyInUseError.
 */
export async function changeKey(
  db: Queryable,
  a: { id: string; oldThumbprint: string; jwk: JWK; thumbprint: string },
): Promise<AcmeAccount | null> {
  try {
    const { rows } = await db.query<DbAccount>(
      `UPDATE acme_accounts SET jwk = $3, thumbprint = $4, updated_at = now()
       WHERE id = $1 AND thumbprint = $2 AND status = 'valid'
       RETURNING ${COLUMNS}`,
      [a.id, a.oldThumbprint, JSON.stringify(a.jwk), a.thumbprint],
    );
    if (rows[0]) await notify(db, ACCOUNT_CHANNEL, a.id);
    return rows[0] ? toAccount(rows[0]) : null;
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new KeyInUseError(a.thumbprint, e);
    throw e;
  }
}

/**
 * Whether the account holds a valid, unexpired authorization for every identifier (RFC 8555
 * 7.6: such an account may revoke a certificate for them). DNS values compare case-insensitively;
 * a wildcard name needs a wildcard authorization of its base domain.
 */
export async function holdsValidAuthorizations(
  db: Queryable,
  accountId: string,
  identifiers: Array<{ type: 'dns' | 'ip'; value: string }>,
): Promise<boolean> {
  if (!identifiers.length) return false;
  const keys = identifiers.map((i) => {
    const wildcard = i.type === 'dns' && i.value.startsWith('*.');
    const value = wildcard ? i.value.slice(2) : i.value;
    return { type: i.type, value: i.type === 'dns' ? value.toLowerCase() : value, wildcard };
  });
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(DISTINCT (k.type, k.value, k.wildcard)) AS n
     FROM jsonb_to_recordset($2::jsonb) AS k(type text, value text, wildcard boolean)
     JOIN acme_authzs a ON a.account_id = $1 AND a.identifier_type = k.type
       AND lower(a.identifier_value) = k.value AND a.wildcard = k.wildcard
       AND a.status = 'valid' AND a.expires_at > now()`,
    [accountId, JSON.stringify(keys)],
  );
  const distinct = new Set(keys.map((k) => `${k.type}\n${k.value}\n${k.wildcard}`)).size;
  return Number(rows[0]!.n) === distinct;
}
