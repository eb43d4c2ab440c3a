/** CRLs and pre-signed OCSP responses (tables `crls`, `ocsp_responses`). */
import type { Queryable } from '../pool.ts';

export interface CrlRow {
  caName: string;
  /** The CA's key generation that signed it. */
  generation: number;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Buffer;
  /** A delta CRL: the number of the complete CRL it is based on (RFC 5280 5.2.4). */
  deltaBase?: bigint | null;
}

/**
 * The latest complete CRL of a CA's key generation (default: the generation in use for
 * issuance is not known here, so 1), or with `delta` its latest delta CRL.
 */
export async function latestCrl(db: Queryable, caName: string, generation = 1, opts: { delta?: boolean } = {}): Promise<CrlRow | null> {
  const { rows } = await db.query<{
    ca_name: string;
    generation: number;
    crl_number: string;
    this_update: Date;
    next_update: Date;
    entries: number;
    der: Buffer;
    delta_base: string | null;
  }>(
    `SELECT ca_name, generation, crl_number::text, this_update, next_update, entries, der, delta_base::text FROM crls
     WHERE ca_name = $1 AND generation = $2 AND (delta_base IS NOT NULL) = $3 ORDER BY crl_number DESC LIMIT 1`,
    [caName, generation, opts.delta === true],
  );
  const r = rows[0];
  return r
    ? {
        caName: r.ca_name,
        generation: r.generation,
        crlNumber: BigInt(r.crl_number),
        thisUpdate: r.this_update,
        nextUpdate: r.next_update,
        entries: r.entries,
        der: r.der,
        deltaBase: r.delta_base === null ? null : BigInt(r.delta_base),
      }
    : null;
}

/** The next CRL number of a CA, over all its key generations (monotonic, RFC 5280 5.2.3). */
export async function nextCrlNumber(db: Queryable, caName: string): Promise<bigint> {
  const { rows } = await db.query<{ n: string }>('SELECT (coalesce(max(crl_number), 0) + 1)::text AS n FROM crls WHERE ca_name = $1', [
    caName,
  ]);
  return BigInt(rows[0]!.n);
}

/** Stores a CRL; false when that number exists already (a concurrent worker made it). */
export async function insertCrl(db: Queryable, c: CrlRow): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO crls (ca_name, generation, crl_number, this_update, next_update, entries, der, delta_base)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT DO NOTHING`,
    [c.caName, c.generation, c.crlNumber.toString(), c.thisUpdate, c.nextUpdate, c.entries, c.der, c.deltaBase?.toString() ?? null],
  );
  return rowCount === 1;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: string | null;
}

/**
 * What the CRL of a CA's key generation lists: the revoked or held certificates it signed
 * that have not expired yet, and the certificates of revoked subordinate CAs it signed.
 * With `since` (a delta CRL), only the entries revoked at or after that time.
 */
export async function revokedEntries(
  db: Queryable,
  caName: string,
  now: Date,
  generation = 1,
  opts: { since?: Date } = {},
): Promise<RevokedEntry[]> {
  const { rows } = await db.query<{ serial: string; revoked_at: Date; revocation_reason: string | null }>(
    `SELECT serial, revoked_at, revocation_reason FROM (
       SELECT serial, revoked_at, revocation_reason FROM certificates
       WHERE ca_name = $1 AND ca_generation = $3 AND status IN ('revoked', 'hold') AND not_after > $2
       UNION ALL
       SELECT k.serial, c.revoked_at, c.revocation_reason FROM cas c JOIN ca_keys k ON k.ca_name = c.name
       WHERE c.parent = $1 AND k.parent_generation = $3 AND c.status = 'revoked' AND k.cert_der IS NOT NULL AND k.not_after > $2
     ) e WHERE $4::timestamptz IS NULL OR revoked_at >= $4
     ORDER BY revoked_at, serial`,
    [caName, now, generation, opts.since ?? null],
  );
  return rows.map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.revocation_reason }));
}

export interface OcspRow {
  serial: string;
  hashAlg: string;
  certStatus: string;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Buffer;
}

/** Stores OCSP responses (new or replacing the previous one per serial and hash), in one statement. */
export async function upsertOcsp(db: Queryable, rows: OcspRow[]): Promise<void> {
  if (!rows.length) return;
  await db.query(
    `INSERT INTO ocsp_responses (serial, hash_alg, cert_status, this_update, next_update, der)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bytea[])
     ON CONFLICT (serial, hash_alg) DO UPDATE
       SET cert_status = EXCLUDED.cert_status, this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, der = EXCLUDED.der`,
    [
      rows.map((r) => r.serial),
      rows.map((r) => r.hashAlg),
      rows.map((r) => r.certStatus),
      rows.map((r) => r.thisUpdate),
      rows.map((r) => r.nextUpdate),
      rows.map((r) => r.der),
    ],
  );
}

export async function getOcsp(db: Queryable, serial: string, hashAlg: string): Promise<OcspRow | null> {
  const { rows } = await db.query<{
    serial: string;
    hash_alg: string;
    cert_status: string;
    this_update: Date;
    next_update: Date;
    der: Buffer;
  }>('SELECT serial, hash_alg, cert_status, this_update, next_update, der FROM ocsp_responses WHERE serial = $1 AND hash_alg = $2', [
    serial,
    hashAlg,
  ]);
  const r = rows[0];
  return r
    ? { serial: r.serial, hashAlg: r.hash_alg, certStatus: r.cert_status, thisUpdate: r.this_update, nextUpdate: r.next_update, der: r.der }
    : null;
}

/**
 * Unexpired issued certificates (with their CA and its key generation) whose OCSP responses
 * are missing or expire before `before`. Certificates of revoked CAs are left out: their
 * CA signed its last responses at its revocation.
 */
export async function serialsNeedingOcsp(
  db: Queryable,
  before: Date,
  now: Date,
  limit: number,
): Promise<Array<{ serial: string; caName: string; generation: number }>> {
  const { rows } = await db.query<{ serial: string; ca_name: string; ca_generation: number }>(
    `SELECT c.serial, c.ca_name, c.ca_generation FROM certificates c JOIN cas a ON a.name = c.ca_name
     WHERE c.status <> 'signing' AND c.not_after > $2 AND a.status = 'active'
       AND (SELECT count(*) FROM ocsp_responses o WHERE o.serial = c.serial AND o.next_update > $1) < 2
     ORDER BY c.serial LIMIT $3`,
    [before, now, limit],
  );
  return rows.map((r) => ({ serial: r.serial, caName: r.ca_name, generation: r.ca_generation }));
}
