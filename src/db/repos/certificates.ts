/**
 * Issued certificates (table `certificates`). A row is created in status 'signing' with the
 * TBSCertificate before anything is signed, so that every retry of a signing activity finds
 * the same serial and TBS: one request, one certificate, ever.
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

export type CertStatus = 'signing' | 'valid' | 'revoked' | 'hold';
const CERT_STATUSES: readonly CertStatus[] = ['signing', 'valid', 'revoked', 'hold'];

export interface CertificateRow {
  /** Lower-case hex. */
  serial: string;
  requestId: string;
  protocol: string;
  caName: string;
  /** The generation (key) of the CA that signed it. */
  caGeneration: number;
  profile: string;
  status: CertStatus;
  subject: string;
  /** Typed names: "dns:example.com", "ip:127.0.0.1", "email:…", "uri:…". */
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  tbsDer: Buffer;
  /** null while status = 'signing'. */
  certDer: Buffer | null;
  csrDer: Buffer;
  requester: string | null;
  replaces: string | null;
  revokedAt: Date | null;
  revocationReason: string | null;
  createdAt: Date;
  issuedAt: Date | null;
}

export interface NewPendingCertificate {
  serial: string;
  requestId: string;
  protocol: string;
  caName: string;
  caGeneration: number;
  profile: string;
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  tbsDer: Uint8Array;
  csrDer: Uint8Array;
  requester?: string | null;
  replaces?: string | null;
}

interface DbCertificate {
  serial: string;
  request_id: string;
  protocol: string;
  ca_name: string;
  ca_generation: number;
  profile: string;
  status: CertStatus;
  subject: string;
  sans: string[];
  not_before: Date;
  not_after: Date;
  tbs_der: Buffer;
  cert_der: Buffer | null;
  csr_der: Buffer;
  requester: string | null;
  replaces: string | null;
  revoked_at: Date | null;
  revocation_reason: string | null;
  created_at: Date;
  issued_at: Date | null;
}

const COLUMNS =
  'serial, request_id, protocol, ca_name, ca_generation, profile, status, subject, sans, not_before, not_after, tbs_der, cert_der, ' +
  'csr_der, requester, replaces, revoked_at, revocation_reason, created_at, issued_at';

function toRow(r: DbCertificate): CertificateRow {
  return {
    serial: r.serial,
    requestId: r.request_id,
    protocol: r.protocol,
    caName: r.ca_name,
    caGeneration: r.ca_generation,
    profile: r.profile,
    status: r.status,
    subject: r.subject,
    sans: r.sans,
    notBefore: r.not_before,
    notAfter: r.not_after,
    tbsDer: r.tbs_der,
    certDer: r.cert_der,
    csrDer: r.csr_der,
    requester: r.requester,
    replaces: r.replaces,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
    createdAt: r.created_at,
    issuedAt: r.issued_at,
  };
}

async function selectOne(db: Queryable, where: string, value: string): Promise<CertificateRow | null> {
  const { rows } = await db.query<DbCertificate>(`SELECT ${COLUMNS} FROM certificates WHERE ${where} = $1`, [value]);
  return rows[0] ? toRow(rows[0]) : null;
}

export function get(db: Queryable, serial: string): Promise<CertificateRow | null> {
  return selectOne(db, 'serial', serial);
}

/**
 * Revokes every valid or held certificate CA `caName` issued (the CA itself is revoked),
 * and drops their queued OCSP signing; returns how many.
 */
export async function revokeAllOfCa(db: Queryable, caName: string, revokedAt: Date, reason: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3 WHERE ca_name = $1 AND status IN ('valid', 'hold')`,
    [caName, revokedAt, reason],
  );
  await db.query('DELETE FROM ocsp_queue q USING certificates c WHERE c.serial = q.serial AND c.ca_name = $1', [caName]);
  return rowCount ?? 0;
}

/** Serials of the signed, unexpired certificates of one key generation of a CA. */
export async function unexpiredSerials(db: Queryable, caName: string, generation: number): Promise<string[]> {
  const { rows } = await db.query<{ serial: string }>(
    `SELECT serial FROM certificates WHERE ca_name = $1 AND ca_generation = $2 AND status <> 'signing' AND not_after > now()`,
    [caName, generation],
  );
  return rows.map((r) => r.serial);
}

/** The certificates with these serials (unknown ones are left out). */
export async function getMany(db: Queryable, serials: string[]): Promise<CertificateRow[]> {
  const { rows } = await db.query<DbCertificate>(`SELECT ${COLUMNS} FROM certificates WHERE serial = ANY($1)`, [serials]);
  return rows.map(toRow);
}

/** A certificate and where it was issued: `via` is the EST label or CMP alias of its request (null for ACME and operator requests). */
export interface CertificateWithOrigin extends CertificateRow {
  via: string | null;
}

/** The certificate with this serial and the label or alias it was issued through (the read model's request). */
export async function getWithOrigin(db: Queryable, serial: string): Promise<CertificateWithOrigin | null> {
  const { rows } = await db.query<DbCertificate & { via: string | null }>(
    `SELECT ${COLUMNS.split(', ')
      .map((c) => `c.${c}`)
      .join(', ')}, r.label AS via
     FROM certificates c LEFT JOIN issuance_requests r ON r.id = c.request_id
     WHERE c.serial = $1`,
    [serial],
  );
  return rows[0] ? { ...toRow(rows[0]), via: rows[0].via } : null;
}

export function getByRequest(db: Queryable, requestId: string): Promise<CertificateRow | null> {
  return selectOne(db, 'request_id', requestId);
}

/** Thrown by insertPending when the serial is taken by another request: draw a new serial. */
export class SerialCollisionError extends CaError {
  constructor(serial: string, cause: unknown) {
    super('conflict', `serial ${serial} is already used by another certificate`, {
      rule: 'certificate.serialCollision',
      details: { serial },
      cause,
    });
  }
}

export function isSerialCollision(e: unknown): e is SerialCollisionError {
  return e instanceof SerialCollisionError;
}

/**
 * Stores the TBS of a request's certificate in status 'signing' and returns the row that is
 * now stored for `requestId`. A retried or concurrent call for the same request gets the
 * first row (its serial and TBS), never a second one: ON CONFLICT (request_id) DO NOTHING
 * waits for a concurrent inserter to commit, and the SELECT after it sees that row.
 * A serial used by a *different* request throws SerialCollisionError.
 */
export async function insertPending(db: Queryable, c: NewPendingCertificate): Promise<CertificateRow> {
  try {
    const { rows } = await db.query<DbCertificate>(
      `INSERT INTO certificates (serial, request_id, protocol, ca_name, profile, status, subject, sans,
                                 not_before, not_after, tbs_der, csr_der, requester, replaces, ca_generation)
       VALUES ($1, $2, $3, $4, $5, 'signing', $6, $7, $8, $9, $10, $11, $12, $13, $14)
       ON CONFLICT (request_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [
        c.serial,
        c.requestId,
        c.protocol,
        c.caName,
        c.profile,
        c.subject,
        // pg would send a JS array as a Postgres array; the column is jsonb.
        JSON.stringify(c.sans),
        c.notBefore,
        c.notAfter,
        c.tbsDer,
        c.csrDer,
        c.requester ?? null,
        c.replaces ?? null,
        c.caGeneration,
      ],
    );
    if (rows[0]) return toRow(rows[0]);
  } catch (e) {
    const pgErr = e as { code?: string; constraint?: string };
    if (pgErr.code === '23505' && pgErr.constraint === 'certificates_pkey') throw new SerialCollisionError(c.serial, e);
    throw e;
  }
  const stored = await getByRequest(db, c.requestId);
  // Only possible if the conflicting row was deleted in between; certflow never deletes.
  if (!stored) throw new CaError('internal', `certificate of request ${c.requestId} vanished during insert`);
  return stored;
}

/**
 * Records the signed certificate: 'signing' -> 'valid'. Idempotent: when the certificate is
 * already issued, the stored row is returned unchanged. First writer wins: if a zombie
 * attempt of the signing activity stored a different signature (ECDSA is randomized) of
 * the same TBS first, the caller gets that stored certificate back — compare
 * `returned.certDer` with the argument to notice — so that a request never ends up with
 * two different certificates.
 */
export async function markIssued(db: Queryable, serial: string, certDer: Uint8Array): Promise<CertificateRow> {
  const { rows } = await db.query<DbCertificate>(
    `UPDATE certificates SET status = 'valid', cert_der = $2, issued_at = now()
     WHERE serial = $1 AND status = 'signing'
     RETURNING ${COLUMNS}`,
    [serial, certDer],
  );
  if (rows[0]) return toRow(rows[0]);
  const stored = await get(db, serial);
  if (!stored) throw new CaError('notFound', `no certificate with serial ${serial}`, { rule: 'certificate.unknown' });
  return stored;
}

export interface ListOptions {
  status?: CertStatus;
  caName?: string;
  profile?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
}

/** Newest first. */
export async function list(db: Queryable, opts: ListOptions = {}): Promise<CertificateRow[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const filter = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    values.push(value);
    where.push(`${column} = $${values.length}`);
  };
  filter('status', opts.status);
  filter('ca_name', opts.caName);
  filter('profile', opts.profile);
  values.push(Math.min(Math.max(opts.limit ?? 100, 1), 1000), Math.max(opts.offset ?? 0, 0));
  const { rows } = await db.query<DbCertificate>(
    `SELECT ${COLUMNS} FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY created_at DESC, serial LIMIT $${values.length - 1} OFFSET $${values.length}`,
    values,
  );
  return rows.map(toRow);
}

/** Number of certificates per status; every status is present (0 if none). */
export async function countByStatus(db: Queryable): Promise<Record<CertStatus, number>> {
  const { rows } = await db.query<{ status: CertStatus; n: string }>('SELECT status, count(*) AS n FROM certificates GROUP BY status');
  const counts = Object.fromEntries(CERT_STATUSES.map((s) => [s, 0])) as Record<CertStatus, number>;
  for (const r of rows) counts[r.status] = Number(r.n);
  return counts;
}

/** Status changes after issuance: revoke, hold ("certificateHold") and release from hold. */
export type StatusChange = 'revoked' | 'hold' | 'valid';

/** From which statuses each change is allowed; 'revoked' is final. */
const ALLOWED_FROM: Record<StatusChange, CertStatus[]> = {
  revoked: ['valid', 'hold'],
  hold: ['valid'],
  valid: ['hold'],
};

/**
 * Revokes, holds or releases a certificate and returns the stored row. Asking for the status
 * the certificate already has is a no-op (the first revocation's time and reason stay);
 * any other illegal transition (revoked -> valid, signing -> revoked) is a 'conflict'.
 */
export async function setStatus(
  db: Queryable,
  serial: string,
  status: StatusChange,
  opts: { reason?: string | null; at?: Date } = {},
): Promise<CertificateRow> {
  const releasing = status === 'valid';
  const { rows } = await db.query<DbCertificate>(
    `UPDATE certificates
     SET status = $2, revoked_at = $3, revocation_reason = $4
     WHERE serial = $1 AND status = ANY($5::text[])
     RETURNING ${COLUMNS}`,
    [
      serial,
      status,
      releasing ? null : (opts.at ?? new Date()),
      releasing ? null : (opts.reason ?? (status === 'hold' ? 'certificateHold' : null)),
      ALLOWED_FROM[status],
    ],
  );
  if (rows[0]) return toRow(rows[0]);
  const stored = await get(db, serial);
  if (!stored) throw new CaError('notFound', `no certificate with serial ${serial}`, { rule: 'certificate.unknown' });
  if (stored.status === status) return stored;
  throw new CaError('conflict', `certificate ${serial} is ${stored.status}; it cannot become ${status}`, {
    rule: 'certificate.status',
    details: { serial, from: stored.status, to: status },
  });
}
