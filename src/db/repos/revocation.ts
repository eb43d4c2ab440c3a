/** CRLs and pre-signed OCSP responses (tables `crls`, `ocsp_responses`). */
import type { Queryable } from '../pool.ts';

export interface CrlRow {
  caName: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Buffer;
}

export async function latestCrl(db: Queryable, caName: string): Promise<CrlRow | null> {
  const { rows } = await db.query<{
    ca_name: string;
    crl_number: string;
    this_update: Date;
    next_update: Date;
    entries: number;
    der: Buffer;
  }>(
    `SELECT ca_name, crl_number::text, this_update, next_update, entries, der FROM crls
     WHERE ca_name = $1 ORDER BY crl_number DESC LIMIT 1`,
    [caName],
  );
  const r = rows[0];
  return r
    ? {
        caName: r.ca_name,
        crlNumber: BigInt(r.crl_number),
        thisUpdate: r.this_update,
        nextUpdate: r.next_update,
        entries: r.entries,
        der: r.der,
      }
    : null;
}

/** The next CRL number of a CA (monotonic, RFC 5280 5.2.3). */
export async function nextCrlNumber(db: Queryable, caName: string): Promise<bigint> {
  const { rows } = await db.query<{ n: string }>('SELECT (coalesce(max(crl_number), 0) + 1)::text AS n FROM crls WHERE ca_name = $1', [
    caName,
  ]);
  return BigInt(rows[0]!.n);
}

/** Stores a CRL; false when that number exists already (a concurrent worker made it). */
export async function insertCrl(db: Queryable, c: CrlRow): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO crls (ca_name, crl_number, this_update, next_update, entries, der) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT DO NOTHING`,
    [c.caName, c.crlNumber.toString(), c.thisUpdate, c.nextUpdate, c.entries, c.der],
  );
  return rowCount === 1;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: string | null;
}

/** Revoked or held certificates of a CA that have not expired yet (what the CRL lists). */
export async function revokedEntries(db: Queryable, caName: string, now: Date): Promise<RevokedEntry[]> {
  const { rows } = await db.query<{ serial: string; revoked_at: Date; revocation_reason: string | null }>(
    `SELECT serial, revoked_at, revocation_reason FROM certificates
     WHERE ca_name = $1 AND status IN ('revoked', 'hold') AND not_after > $2 ORDER BY revoked_at, serial`,
    [caName, now],
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

/** Unexpired issued certificates (with their CA) whose OCSP responses are missing or expire before `before`. */
export async function serialsNeedingOcsp(
  db: Queryable,
  before: Date,
  now: Date,
  limit: number,
): Promise<Array<{ serial: string; caName: string }>> {
  const { rows } = await db.query<{ serial: string; ca_name: string }>(
    `SELECT c.serial, c.ca_name FROM certificates c
     WHERE c.status <> 'signing' AND c.not_after > $2
       AND (SELECT count(*) FROM ocsp_responses o WHERE o.serial = c.serial AND o.next_update > $1) < 2
     ORDER BY c.serial LIMIT $3`,
    [before, now, limit],
  );
  return rows.map((r) => ({ serial: r.serial, caName: r.ca_name }));
}
