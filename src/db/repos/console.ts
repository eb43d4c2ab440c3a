/**
 * Read-only queries of the operator console: certificate search, reports and statistics,
 * the dashboard's counts, CRL and OCSP freshness, enrollments (stuck ones: stuck.ts). A certificate's
 * console state is derived: active, suspended (on hold), revoked, expired, or signing.
 */
import type { Queryable } from '../pool.ts';

export const CERT_STATES = ['active', 'suspended', 'revoked', 'expired', 'signing'] as const;
export type CertState = (typeof CERT_STATES)[number];

const STATE_SQL = `CASE WHEN c.status = 'signing' THEN 'signing' WHEN c.status = 'revoked' THEN 'revoked'
  WHEN c.not_after <= now() THEN 'expired' WHEN c.status = 'hold' THEN 'suspended' ELSE 'active' END`;

export interface CertificateSearch {
  /** Hex prefix (colons and case ignored by the caller's normalization). */
  serial?: string;
  subject?: string;
  san?: string;
  state?: CertState;
  profile?: string;
  protocol?: string;
  ca?: string;
  requester?: string;
  issuedFrom?: Date;
  issuedTo?: Date;
  expiresFrom?: Date;
  expiresTo?: Date;
  revokedFrom?: Date;
  revokedTo?: Date;
  limit?: number;
  offset?: number;
}

export interface CertificateListRow {
  serial: string;
  state: CertState;
  status: string;
  subject: string;
  sans: string[];
  profile: string;
  caName: string;
  protocol: string;
  requester: string | null;
  requestId: string;
  issuedAt: Date | null;
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  revocationReason: string | null;
}

const like = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function searchWhere(q: CertificateSearch): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    where.push(sql(`$${values.length}`));
  };
  if (q.serial) add((p) => `c.serial LIKE ${p}`, `${q.serial.replace(/[\\%_]/g, '')}%`);
  if (q.subject) add((p) => `c.subject ILIKE ${p}`, like(q.subject));
  if (q.san) add((p) => `c.sans::text ILIKE ${p}`, like(q.san));
  if (q.state) add((p) => `(${STATE_SQL}) = ${p}`, q.state);
  if (q.profile) add((p) => `c.profile = ${p}`, q.profile);
  if (q.protocol) add((p) => `c.protocol = ${p}`, q.protocol);
  if (q.ca) add((p) => `c.ca_name = ${p}`, q.ca);
  if (q.requester) add((p) => `c.requester ILIKE ${p}`, like(q.requester));
  if (q.issuedFrom) add((p) => `c.issued_at >= ${p}`, q.issuedFrom);
  if (q.issuedTo) add((p) => `c.issued_at < ${p}`, q.issuedTo);
  if (q.expiresFrom) add((p) => `c.not_after >= ${p}`, q.expiresFrom);
  if (q.expiresTo) add((p) => `c.not_after < ${p}`, q.expiresTo);
  if (q.revokedFrom) add((p) => `c.revoked_at >= ${p}`, q.revokedFrom);
  if (q.revokedTo) add((p) => `c.revoked_at < ${p}`, q.revokedTo);
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', values };
}

/** One page of matching certificates (newest first) and the number of all matches. */
export async function searchCertificates(db: Queryable, q: CertificateSearch): Promise<{ total: number; rows: CertificateListRow[] }> {
  const { sql, values } = searchWhere(q);
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 10_000);
  const offset = Math.max(q.offset ?? 0, 0);
  const [{ rows: countRows }, { rows }] = await Promise.all([
    db.query<{ n: string }>(`SELECT count(*) AS n FROM certificates c ${sql}`, values),
    db.query(
      `SELECT c.serial, ${STATE_SQL} AS state, c.status, c.subject, c.sans, c.profile, c.ca_name, c.protocol, c.requester, c.request_id,
              c.issued_at, c.not_before, c.not_after, c.revoked_at, c.revocation_reason
       FROM certificates c ${sql}
       ORDER BY coalesce(c.issued_at, c.created_at) DESC, c.serial
       LIMIT $${values.length + 1} OFFSET $${values.length + 2}`,
      [...values, limit, offset],
    ),
  ]);
  return {
    total: Number(countRows[0]!.n),
    rows: rows.map((r) => ({
      serial: r.serial,
      state: r.state,
      status: r.status,
      subject: r.subject,
      sans: r.sans,
      profile: r.profile,
      caName: r.ca_name,
      protocol: r.protocol,
      requester: r.requester,
      requestId: r.request_id,
      issuedAt: r.issued_at,
      notBefore: r.not_before,
      notAfter: r.not_after,
      revokedAt: r.revoked_at,
      revocationReason: r.revocation_reason,
    })),
  };
}

/** Certificates per console state; every state is present. */
export async function countByState(db: Queryable, opts: { ca?: string } = {}): Promise<Record<CertState, number>> {
  const { rows } = await db.query<{ state: CertState; n: string }>(
    `SELECT ${STATE_SQL} AS state, count(*) AS n FROM certificates c WHERE $1::text IS NULL OR c.ca_name = $1 GROUP BY 1`,
    [opts.ca ?? null],
  );
  const out = Object.fromEntries(CERT_STATES.map((s) => [s, 0])) as Record<CertState, number>;
  for (const r of rows) out[r.state] = Number(r.n);
  return out;
}

/** Issued certificates per UTC day and protocol over the last `days` days (oldest first, every day present). */
export async function issuancePerDay(db: Queryable, days: number): Promise<Array<{ day: string; protocol: string; count: number }>> {
  const { rows } = await db.query<{ day: string; protocol: string; n: string }>(
    `SELECT to_char(d.day, 'YYYY-MM-DD') AS day, c.protocol, count(c.serial) AS n
     FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($1::int - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d(day)
     LEFT JOIN certificates c ON c.issued_at IS NOT NULL AND (c.issued_at AT TIME ZONE 'UTC')::date = d.day::date
     GROUP BY 1, 2 ORDER BY 1, 2`,
    [days],
  );
  return rows.map((r) => ({ day: r.day, protocol: r.protocol ?? '', count: Number(r.n) }));
}

/** Active certificates that expire within each horizon (seconds from now). */
export async function expiringCounts(db: Queryable, horizons: number[]): Promise<number[]> {
  const { rows } = await db.query<{ n: string[] }>(
    `SELECT array_agg((SELECT count(*) FROM certificates c WHERE c.status = 'valid' AND c.not_after > now()
                       AND c.not_after <= now() + make_interval(secs => h))::text ORDER BY i) AS n
     FROM unnest($1::int[]) WITH ORDINALITY AS t(h, i)`,
    [horizons],
  );
  return (rows[0]?.n ?? []).map(Number);
}

export interface GroupCount {
  key: string;
  state: CertState;
  count: number;
}

/** Certificates per (CA | profile | protocol | month of issue | revocation reason) and state. */
export async function countsBy(
  db: Queryable,
  by: 'ca' | 'profile' | 'protocol' | 'month' | 'reason',
  q: CertificateSearch = {},
): Promise<GroupCount[]> {
  const column = {
    ca: 'c.ca_name',
    profile: 'c.profile',
    protocol: 'c.protocol',
    month: "to_char(coalesce(c.issued_at, c.created_at) AT TIME ZONE 'UTC', 'YYYY-MM')",
    reason: "coalesce(c.revocation_reason, '-')",
  }[by];
  const { sql, values } = searchWhere(q);
  const { rows } = await db.query<{ key: string; state: CertState; n: string }>(
    `SELECT ${column} AS key, ${STATE_SQL} AS state, count(*) AS n FROM certificates c ${sql} GROUP BY 1, 2 ORDER BY 1, 2`,
    values,
  );
  return rows.map((r) => ({ key: r.key, state: r.state, count: Number(r.n) }));
}

export interface CrlInfo {
  caName: string;
  crlNumber: string;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  size: number;
  /** The CA key generation that signed it. */
  generation: number;
  /** A delta CRL: the number of its base CRL. */
  deltaBase: string | null;
}

/** CRLs, newest first; only the latest per CA with `latestOnly`. */
export async function listCrls(db: Queryable, opts: { ca?: string; latestOnly?: boolean; limit?: number } = {}): Promise<CrlInfo[]> {
  const { rows } = await db.query(
    `SELECT ca_name, generation, delta_base::text AS delta_base, crl_number::text AS crl_number, this_update, next_update, entries,
            octet_length(der) AS size FROM crls k
     WHERE ($1::text IS NULL OR ca_name = $1)
       AND (NOT $2::boolean OR crl_number = (SELECT max(crl_number) FROM crls l
                                             WHERE l.ca_name = k.ca_name AND l.generation = k.generation
                                               AND (l.delta_base IS NULL) = (k.delta_base IS NULL)))
     ORDER BY this_update DESC, ca_name, crl_number DESC LIMIT $3`,
    [opts.ca ?? null, Boolean(opts.latestOnly), opts.limit ?? 200],
  );
  return rows.map((r) => ({
    caName: r.ca_name,
    generation: r.generation,
    deltaBase: r.delta_base,
    crlNumber: r.crl_number,
    thisUpdate: r.this_update,
    nextUpdate: r.next_update,
    entries: r.entries,
    size: r.size,
  }));
}

export async function getCrlDer(db: Queryable, caName: string, crlNumber: string): Promise<Buffer | null> {
  if (!/^\d{1,30}$/.test(crlNumber)) return null;
  const { rows } = await db.query<{ der: Buffer }>('SELECT der FROM crls WHERE ca_name = $1 AND crl_number = $2::numeric', [
    caName,
    crlNumber,
  ]);
  return rows[0]?.der ?? null;
}

export interface OcspFreshness {
  caName: string;
  /** Certificates that should have responses (issued, not expired). */
  certificates: number;
  /** Of those, how many lack a current response for SHA-1 or SHA-256 certIDs. */
  missingOrExpired: number;
  /** Responses that expire within `dueSeconds`. */
  dueSoon: number;
  oldestThisUpdate: Date | null;
  earliestNextUpdate: Date | null;
}

export async function ocspFreshness(db: Queryable, dueSeconds: number): Promise<OcspFreshness[]> {
  const { rows } = await db.query(
    `SELECT c.ca_name,
            count(DISTINCT c.serial) AS certificates,
            count(DISTINCT c.serial) FILTER (WHERE (SELECT count(*) FROM ocsp_responses o WHERE o.serial = c.serial AND o.next_update > now()) < 2) AS missing,
            count(o.serial) FILTER (WHERE o.next_update > now() AND o.next_update <= now() + make_interval(secs => $1)) AS due,
            min(o.this_update) AS oldest, min(o.next_update) AS earliest
     FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial
     WHERE c.status <> 'signing' AND c.not_after > now()
     GROUP BY c.ca_name ORDER BY c.ca_name`,
    [dueSeconds],
  );
  return rows.map((r) => ({
    caName: r.ca_name,
    certificates: Number(r.certificates),
    missingOrExpired: Number(r.missing),
    dueSoon: Number(r.due),
    oldestThisUpdate: r.oldest,
    earliestNextUpdate: r.earliest,
  }));
}

/**
 * Enrollment requests (EST, CMP, operator), optionally of one state or protocol, newest
 * first; `ids`: only these; `first`: these before the others (the stuck ones, from
 * src/db/repos/stuck.ts).
 */
export async function listEnrollments(
  db: Queryable,
  opts: { state?: string; protocol?: string; ids?: string[]; first?: string[]; limit?: number; offset?: number },
) {
  const { rows } = await db.query(
    `SELECT id, protocol, workflow_id, profile, state, requester, label, kind, serial, error, decided_by, decided_at, created_at, updated_at
     FROM issuance_requests
     WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR protocol = $2) AND ($6::text[] IS NULL OR id = ANY($6))
     ORDER BY id = ANY($5::text[]) DESC, created_at DESC, id LIMIT $3 OFFSET $4`,
    [opts.state ?? null, opts.protocol ?? null, Math.min(opts.limit ?? 100, 1000), opts.offset ?? 0, opts.first ?? [], opts.ids ?? null],
  );
  return rows.map((r) => ({
    id: r.id as string,
    protocol: r.protocol as string,
    workflowId: r.workflow_id as string,
    profile: r.profile as string,
    state: r.state as string,
    requester: r.requester as string | null,
    label: r.label as string | null,
    kind: r.kind as string | null,
    serial: r.serial as string | null,
    error: r.error as string | null,
    decidedBy: r.decided_by as string | null,
    decidedAt: r.decided_at as Date | null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  }));
}

/** Whether a table exists (e.g. cmp_clients, which arrives with CMP). */
export async function tableExists(db: Queryable, name: string): Promise<boolean> {
  const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]);
  return Boolean(rows[0]?.t);
}

/** All rows of a table, with the columns whose name says they hold a secret left out. */
export async function rowsWithoutSecrets(db: Queryable, table: string, limit = 1000): Promise<Array<Record<string, unknown>>> {
  const { rows: cols } = await db.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  const shown = cols.map((c) => c.column_name).filter((c) => !/secret|password|hash|key|mac|salt/i.test(c));
  if (!shown.length) return [];
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const { rows } = await db.query(`SELECT ${shown.map(ident).join(', ')} FROM ${ident(table)} LIMIT $1`, [limit]);
  return rows;
}

/** The non-CA keys of the key store that the database knows of: key archive and audit keys. */
export async function serviceKeys(
  db: Queryable,
): Promise<Array<{ keyId: string; purpose: string; alg: string; backend: string; createdAt: Date }>> {
  const { rows } = await db.query(
    `SELECT key_id, 'key archive (EST serverkeygen)' AS purpose, 'rsa-3072' AS alg, key_backend, created_at FROM archive_keys
     UNION ALL
     SELECT key_id, 'audit checkpoints', key_alg, key_backend, created_at FROM audit_keys
     ORDER BY created_at`,
  );
  return rows.map((r) => ({ keyId: r.key_id, purpose: r.purpose, alg: r.alg, backend: r.key_backend, createdAt: r.created_at }));
}

/** Certificates that expired within the last `days` days and have no cert.expire audit entry yet. */
export async function expiredWithoutAudit(
  db: Queryable,
  days: number,
  limit: number,
): Promise<Array<{ serial: string; notAfter: Date; caName: string; subject: string }>> {
  const { rows } = await db.query(
    `SELECT c.serial, c.not_after, c.ca_name, c.subject FROM certificates c
     WHERE c.status IN ('valid', 'hold') AND c.not_after <= now() AND c.not_after > now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.dedup_key = 'cert.expire:' || c.serial)
     ORDER BY c.not_after LIMIT $2`,
    [days, limit],
  );
  return rows.map((r) => ({ serial: r.serial, notAfter: r.not_after, caName: r.ca_name, subject: r.subject }));
}

/** Certificates with an archived private key (EST serverkeygen with archiveServerKeys), newest first. */
export async function archivedKeys(
  db: Queryable,
  limit = 200,
): Promise<Array<{ serial: string; subject: string; state: CertState; archivedAt: Date }>> {
  const { rows } = await db.query(
    `SELECT c.serial, c.subject, ${STATE_SQL} AS state, a.created_at FROM archived_keys a JOIN certificates c ON c.serial = a.serial
     ORDER BY a.created_at DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ serial: r.serial, subject: r.subject, state: r.state, archivedAt: r.created_at }));
}
