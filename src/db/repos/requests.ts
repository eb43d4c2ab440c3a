/**
 * Issuance requests (table `issuance_requests`): the read model of the enrollment
 * workflows. The workflow is the only writer of a request's state; it projects each
 * transition here so that the CLI and list pages read Postgres, not Temporal.
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

/**
 * pending -> (awaiting-approval ->) signing -> issued; failed when the CA refuses the
 * request (policy), rejected when an operator refuses it; stalled (and back to signing)
 * while a server fault keeps it from being signed; abandoned when the requester gave up
 * (EST serverkeygen after a timeout). CMP adds issued -> confirmed (certConf, implicit
 * confirmation) or issued -> revoked (rejected or missing certConf).
 */
export const REQUEST_STATES = [
  'pending',
  'awaiting-approval',
  'signing',
  'stalled',
  'issued',
  'confirmed',
  'revoked',
  'failed',
  'rejected',
  'abandoned',
] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

export interface RequestRow {
  id: string;
  protocol: string;
  workflowId: string;
  profile: string;
  state: RequestState;
  csrDer: Buffer;
  requester: string | null;
  /** Serial (hex) of the certificate, once one exists. */
  serial: string | null;
  error: string | null;
  /** EST label / CMP alias the request came through. */
  label: string | null;
  kind: string | null;
  /** sha256 (hex) of the request as received. */
  requestHash: string | null;
  replaces: string | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** When it last made progress (entered a new state; see PROGRESS_AT). */
  progressAt: Date;
}

export interface RequestUpsert {
  id: string;
  protocol: string;
  workflowId: string;
  profile: string;
  state: RequestState;
  csrDer: Uint8Array;
  requester?: string | null;
  serial?: string | null;
  error?: string | null;
  label?: string | null;
  kind?: string | null;
  requestHash?: string | null;
  replaces?: string | null;
  decidedBy?: string | null;
  decidedAt?: Date | null;
}

interface DbRequest {
  id: string;
  protocol: string;
  workflow_id: string;
  profile: string;
  state: RequestState;
  csr_der: Buffer;
  requester: string | null;
  serial: string | null;
  error: string | null;
  label: string | null;
  kind: string | null;
  request_hash: string | null;
  replaces: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
  updated_at: Date;
  progress_at: Date;
}

const COLUMNS =
  'id, protocol, workflow_id, profile, state, csr_der, requester, serial, error, label, kind, request_hash, replaces, ' +
  'decided_by, decided_at, created_at, updated_at, progress_at';

function toRow(r: DbRequest): RequestRow {
  return {
    id: r.id,
    protocol: r.protocol,
    workflowId: r.workflow_id,
    profile: r.profile,
    state: r.state,
    csrDer: r.csr_der,
    requester: r.requester,
    serial: r.serial,
    error: r.error,
    label: r.label,
    kind: r.kind,
    requestHash: r.request_hash,
    replaces: r.replaces,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    progressAt: r.progress_at,
  };
}

/**
 * progress_at of a request that moves to `next` (SQL over the row as it was): a new state is
 * progress; the same state projected again is not, and neither is a server fault's cycle
 * (stalled -> signing again -> stalled): a request that keeps failing is stuck since its
 * first fault, which is what "since when" means in src/db/repos/stuck.ts.
 */
const PROGRESS_AT = (next: string) => `CASE
  WHEN ${next} = issuance_requests.state THEN issuance_requests.progress_at
  WHEN issuance_requests.state = 'stalled' AND ${next} = 'signing' THEN issuance_requests.progress_at
  WHEN issuance_requests.state = 'signing' AND ${next} = 'stalled' AND issuance_requests.error IS NOT NULL THEN issuance_requests.progress_at
  ELSE now() END`;

/**
 * Creates the request or moves it to `state`. A projection without a serial keeps the one
 * already stored; the error is replaced (a later success clears it). The identity columns
 * (protocol, workflow, profile, CSR) keep their first values.
 */
export async function upsert(db: Queryable, r: RequestUpsert): Promise<RequestRow> {
  const { rows } = await db.query<DbRequest>(
    `INSERT INTO issuance_requests (id, protocol, workflow_id, profile, state, csr_der, requester, serial, error,
                                    label, kind, request_hash, replaces, decided_by, decided_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (id) DO UPDATE
       SET state = EXCLUDED.state,
           serial = COALESCE(EXCLUDED.serial, issuance_requests.serial),
           error = EXCLUDED.error,
           decided_by = COALESCE(EXCLUDED.decided_by, issuance_requests.decided_by),
           decided_at = COALESCE(EXCLUDED.decided_at, issuance_requests.decided_at),
           progress_at = ${PROGRESS_AT('EXCLUDED.state')},
           updated_at = now()
     RETURNING ${COLUMNS}`,
    [
      r.id,
      r.protocol,
      r.workflowId,
      r.profile,
      r.state,
      r.csrDer,
      r.requester ?? null,
      r.serial ?? null,
      r.error ?? null,
      r.label ?? null,
      r.kind ?? null,
      r.requestHash ?? null,
      r.replaces ?? null,
      r.decidedBy ?? null,
      r.decidedAt ?? null,
    ],
  );
  return toRow(rows[0]!);
}

/** Moves an existing request to `state`; same serial/error rules as upsert. */
export async function setState(
  db: Queryable,
  id: string,
  state: RequestState,
  opts: { serial?: string | null; error?: string | null } = {},
): Promise<RequestRow> {
  const { rows } = await db.query<DbRequest>(
    `UPDATE issuance_requests
     SET state = $2, serial = COALESCE($3, serial), error = $4, progress_at = ${PROGRESS_AT('$2')}, updated_at = now()
     WHERE id = $1
     RETURNING ${COLUMNS}`,
    [id, state, opts.serial ?? null, opts.error ?? null],
  );
  if (!rows[0]) throw new CaError('notFound', `no issuance request ${id}`, { rule: 'request.unknown' });
  return toRow(rows[0]);
}

export async function get(db: Queryable, id: string): Promise<RequestRow | null> {
  const { rows } = await db.query<DbRequest>(`SELECT ${COLUMNS} FROM issuance_requests WHERE id = $1`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Newest first; `limit` defaults to 100 (at most 1000). Stuck ones: src/db/repos/stuck.ts. */
export async function list(
  db: Queryable,
  opts: { state?: RequestState; protocol?: string; limit?: number; offset?: number } = {},
): Promise<RequestRow[]> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
  const offset = Math.max(opts.offset ?? 0, 0);
  const { rows } = await db.query<DbRequest>(
    `SELECT ${COLUMNS} FROM issuance_requests
     WHERE ($1::text IS NULL OR state = $1)
       AND ($4::text IS NULL OR protocol = $4)
     ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
    [opts.state ?? null, limit, offset, opts.protocol ?? null],
  );
  return rows.map(toRow);
}
