/**
 * What "stuck", "waiting for a person" and "waiting for the client" mean: the one definition
 * behind every surface — `certflow requests|orders list --stuck|--waiting`, the console's
 * dashboard and requests page, the admin API, the `certflow_requests_stuck` and
 * `certflow_requests_waiting` gauges of /metrics, and notifications. Nothing else decides it.
 *
 * An open request (ACME order, EST/CMP/operator enrollment) is
 * - stuck when a server fault has stalled it (at once), or when it has made no progress in
 *   its phase for longer than the phase's bound (configuration `stuck`, StuckBounds): an ACME
 *   challenge validating past the retry window, an ACME order processing (signing) past its
 *   bound or still open a minute past its expiry, an EST/CMP/operator request pending or
 *   signing past theirs;
 * - waiting for a person: an enrollment that waits for an operator's approval;
 * - waiting for the client: an ACME order pending its challenge answers or ready to be
 *   finalized, a CMP certificate waiting for its certConf;
 * - otherwise moving along (within its bound), or finished.
 * Waiting is never stuck: the CA has done its part.
 *
 * Two halves, both here. PHASES says, in SQL over the read model, what each open request
 * is doing (its phase) and since when it has made no progress. rules() says what each phase
 * means and after how long, as data: the SQL joins them (so a list, a count or a gauge is
 * one query), and classifyRequest() applies them to one request without a database.
 */
import type { StuckBounds } from '../../config/index.ts';
import { WORKFLOWS } from '../../../workflows/api.ts';
import type { Queryable } from '../pool.ts';

export const PROTOCOLS = ['acme', 'est', 'cmp', 'operator'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Why a request is stuck: the phase it is stuck in (the `reason` label of certflow_requests_stuck). */
export const STUCK_REASONS = ['stalled', 'pending', 'signing', 'validating', 'processing', 'expired'] as const;
export type StuckReason = (typeof STUCK_REASONS)[number];

/** Whom a waiting request waits for (the `on` label of certflow_requests_waiting). */
export const WAITING_ON = ['person', 'client'] as const;
export type WaitingOn = (typeof WAITING_ON)[number];

/** An ACME order open for this long past its expiry is stuck (its workflow's expiry timer should have ended it). */
export const EXPIRY_GRACE_SECONDS = 60;

/**
 * What an open request is doing. Orders: pending (waiting for challenge answers), validating
 * (a challenge answer is being checked), ready, processing (signing), expired (open past its
 * expiry). Enrollments: their state, with a CMP `issued` (waiting for certConf) as confirming.
 */
export type Phase =
  'pending' | 'validating' | 'ready' | 'processing' | 'expired' | 'awaiting-approval' | 'signing' | 'stalled' | 'confirming';

/** One phase's meaning: stuck (the phase is the reason) or waiting for a person / the client, after afterSeconds without progress. */
export interface Rule {
  protocol: Protocol;
  phase: Phase;
  verdict: 'stuck' | WaitingOn;
  /** 0: at once; otherwise only after more than this many seconds without progress. */
  afterSeconds: number;
}

/** The definition, as data. A phase without a rule is moving along. */
export function rules(bounds: StuckBounds): Rule[] {
  const out: Rule[] = [
    { protocol: 'acme', phase: 'pending', verdict: 'client', afterSeconds: 0 },
    { protocol: 'acme', phase: 'ready', verdict: 'client', afterSeconds: 0 },
    { protocol: 'acme', phase: 'validating', verdict: 'stuck', afterSeconds: bounds.acme.validatingSeconds },
    { protocol: 'acme', phase: 'processing', verdict: 'stuck', afterSeconds: bounds.acme.processingSeconds },
    { protocol: 'acme', phase: 'expired', verdict: 'stuck', afterSeconds: EXPIRY_GRACE_SECONDS },
  ];
  for (const protocol of ['est', 'cmp', 'operator'] as const) {
    out.push(
      { protocol, phase: 'stalled', verdict: 'stuck', afterSeconds: 0 },
      { protocol, phase: 'pending', verdict: 'stuck', afterSeconds: bounds[protocol].pendingSeconds },
      { protocol, phase: 'signing', verdict: 'stuck', afterSeconds: bounds[protocol].signingSeconds },
      { protocol, phase: 'awaiting-approval', verdict: 'person', afterSeconds: 0 },
    );
  }
  out.push({ protocol: 'cmp', phase: 'confirming', verdict: 'client', afterSeconds: 0 });
  return out;
}

export type Condition =
  { condition: 'stuck'; reason: StuckReason; boundSeconds: number } | { condition: 'waiting'; on: WaitingOn; boundSeconds: number };

/**
 * The definition applied to one request: stuck, waiting, or null (moving along or unknown).
 * `since`: when it last made progress. The SQL below joins the same rules with the same test.
 */
export function classifyRequest(
  r: { protocol: string; phase: string; since: Date },
  bounds: StuckBounds,
  now: Date = new Date(),
): Condition | null {
  const rule = rules(bounds).find((x) => x.protocol === r.protocol && x.phase === r.phase);
  if (!rule) return null;
  if (rule.afterSeconds > 0 && !(r.since.getTime() < now.getTime() - rule.afterSeconds * 1000)) return null;
  return rule.verdict === 'stuck'
    ? { condition: 'stuck', reason: rule.phase as StuckReason, boundSeconds: rule.afterSeconds }
    : { condition: 'waiting', on: rule.verdict, boundSeconds: 0 };
}

/** What an operator can do about a request (the workflow Updates that take it); the viewer's role decides which it may use. */
export type RequestAction = 'retry' | 'cancel' | 'approve' | 'reject';

/** The actions a request in `phase` takes. Orders: retry what is validating or signing, cancel an open one; enrollments: retry a stalled one, decide an awaiting one. */
export function actionsFor(kind: 'order' | 'request', state: string, phase: string): RequestAction[] {
  const out: RequestAction[] = [];
  if (kind === 'order') {
    if (phase === 'validating' || phase === 'processing') out.push('retry');
    if (state === 'pending' || state === 'ready') out.push('cancel');
  } else if (phase === 'stalled') out.push('retry');
  else if (phase === 'awaiting-approval') out.push('approve', 'reject');
  return out;
}

/** A stuck or waiting request, as every surface shows it. */
export interface RequestCondition {
  /** order: an ACME order (`certflow orders`); request: an EST/CMP/operator request (`certflow requests`). */
  kind: 'order' | 'request';
  id: string;
  protocol: Protocol;
  /** Its state in the read model (order status or request state). */
  state: string;
  phase: Phase;
  condition: 'stuck' | 'waiting';
  /** Stuck: why (the phase it is stuck in). */
  reason: StuckReason | null;
  /** Waiting: for whom. */
  on: WaitingOn | null;
  /** When it last made progress: stuck or waiting since then. */
  since: Date;
  /** How long: seconds since `since`. */
  seconds: number;
  /** Stuck: the bound it has passed (seconds; 0 for a server fault, stuck at once). */
  boundSeconds: number;
  /** The last error the read model has for it (a server fault), if any. */
  lastError: string | null;
  /** Why it is stuck or what it waits for, in words: the last error when there is one. */
  why: string;
  workflowId: string;
  /** EST label, CMP alias, ACME alias. */
  label: string | null;
  requester: string | null;
  profile: string;
  actions: RequestAction[];
}

/**
 * Every open request with its phase and since when it has made no progress. $1: "now"
 * (null: the database's clock).
 */
const PHASES = `
  n AS (SELECT coalesce($1::timestamptz, now()) AS now),
  phases AS (
    SELECT 'order' AS kind, o.id, 'acme' AS protocol, o.status AS state,
           CASE WHEN o.expires_at < n.now THEN 'expired' WHEN v.since IS NOT NULL THEN 'validating' ELSE o.status END AS phase,
           CASE WHEN o.expires_at < n.now THEN o.expires_at WHEN v.since IS NOT NULL THEN v.since ELSE o.updated_at END AS since,
           CASE WHEN o.status = 'processing' THEN o.signing_fault END AS last_error,
           NULL::text AS workflow_id, o.alias AS label, o.account_id AS requester, o.profile
    FROM acme_orders o CROSS JOIN n
    LEFT JOIN LATERAL (SELECT min(c.updated_at) AS since FROM acme_challenges c
                       WHERE o.status = 'pending' AND c.authz_id = ANY(o.authz_ids) AND c.status = 'processing') v ON true
    WHERE o.status IN ('pending', 'ready', 'processing')
    UNION ALL
    SELECT 'request', r.id, r.protocol, r.state, CASE WHEN r.state = 'issued' THEN 'confirming' ELSE r.state END,
           r.progress_at, r.error, r.workflow_id, r.label, r.requester, r.profile
    FROM issuance_requests r
    WHERE r.state IN ('pending', 'awaiting-approval', 'signing', 'stalled') OR (r.protocol = 'cmp' AND r.state = 'issued')
  ),
  classified AS (
    SELECT p.*, k.verdict, k."afterSeconds" AS after_seconds, extract(epoch FROM n.now - p.since)::float8 AS seconds
    FROM phases p CROSS JOIN n
    JOIN jsonb_to_recordset($2::jsonb) AS k(protocol text, phase text, verdict text, "afterSeconds" float8)
      ON k.protocol = p.protocol AND k.phase = p.phase
    WHERE k."afterSeconds" = 0 OR p.since < n.now - make_interval(secs => k."afterSeconds")
  )`;

export interface ConditionQuery {
  protocol?: string;
  /** Only stuck ones with this reason. */
  reason?: StuckReason;
  /** Only waiting ones for this party. */
  on?: WaitingOn;
  /** Only these requests (order or request ids). */
  ids?: string[];
  limit?: number;
  /** Evaluate as of this time instead of the database's clock (tests). */
  now?: Date;
}

async function conditions(db: Queryable, bounds: StuckBounds, which: 'stuck' | 'waiting', q: ConditionQuery): Promise<RequestCondition[]> {
  const { rows } = await db.query(
    `WITH ${PHASES}
     SELECT * FROM classified
     WHERE ((verdict = 'stuck') = ($3 = 'stuck'))
       AND ($4::text IS NULL OR protocol = $4) AND ($5::text IS NULL OR phase = $5) AND ($6::text IS NULL OR verdict = $6)
       AND ($7::text[] IS NULL OR id = ANY($7))
     ORDER BY since, id LIMIT $8`,
    [
      q.now ?? null,
      JSON.stringify(rules(bounds)),
      which,
      q.protocol ?? null,
      which === 'stuck' ? (q.reason ?? null) : null,
      which === 'waiting' ? (q.on ?? null) : null,
      q.ids ?? null,
      Math.min(Math.max(q.limit ?? 500, 1), 10_000),
    ],
  );
  return rows.map((r) => {
    const stuck = r.verdict === 'stuck';
    const entry: Omit<RequestCondition, 'why'> = {
      kind: r.kind,
      id: r.id,
      protocol: r.protocol,
      state: r.state,
      phase: r.phase,
      condition: stuck ? 'stuck' : 'waiting',
      reason: stuck ? r.phase : null,
      on: stuck ? null : r.verdict,
      since: r.since,
      seconds: Math.max(0, Math.round(r.seconds)),
      boundSeconds: stuck ? Number(r.after_seconds) : 0,
      lastError: r.last_error,
      workflowId: r.workflow_id ?? WORKFLOWS.acmeOrder.id(r.id),
      label: r.label,
      requester: r.requester,
      profile: r.profile,
      actions: actionsFor(r.kind, r.state, r.phase),
    };
    return { ...entry, why: describeCondition(entry) };
  });
}

/** Stuck requests, longest stuck first: the definition above. */
export function stuckRequests(db: Queryable, bounds: StuckBounds, q: ConditionQuery = {}): Promise<RequestCondition[]> {
  return conditions(db, bounds, 'stuck', q);
}

/** Requests waiting for a person or their client, longest waiting first. */
export function waitingRequests(db: Queryable, bounds: StuckBounds, q: ConditionQuery = {}): Promise<RequestCondition[]> {
  return conditions(db, bounds, 'waiting', q);
}

export interface ConditionCounts {
  /** Every (protocol, reason) the definition knows, 0 included. */
  stuck: Array<{ protocol: Protocol; reason: StuckReason; count: number; oldestSeconds: number | null }>;
  /** Every (protocol, on) the definition knows, 0 included. */
  waiting: Array<{ protocol: Protocol; on: WaitingOn; count: number; oldestSeconds: number | null }>;
}

/** Stuck requests per protocol and reason, waiting ones per protocol and party (dashboard, /metrics). One query. */
export async function countStuckAndWaiting(db: Queryable, bounds: StuckBounds, opts: { now?: Date } = {}): Promise<ConditionCounts> {
  const all = rules(bounds);
  const { rows } = await db.query<{ protocol: Protocol; phase: string; verdict: string; n: number; oldest: number }>(
    `WITH ${PHASES}
     SELECT protocol, phase, verdict, count(*)::int AS n, max(seconds) AS oldest FROM classified GROUP BY 1, 2, 3`,
    [opts.now ?? null, JSON.stringify(all)],
  );
  const counts = new Map(rows.map((r) => [`${r.protocol} ${r.phase}`, r]));
  const out: ConditionCounts = { stuck: [], waiting: [] };
  for (const rule of all) {
    const r = counts.get(`${rule.protocol} ${rule.phase}`);
    const count = r?.n ?? 0;
    const oldestSeconds = r ? Math.round(r.oldest) : null;
    if (rule.verdict === 'stuck') out.stuck.push({ protocol: rule.protocol, reason: rule.phase as StuckReason, count, oldestSeconds });
    else {
      // One line per (protocol, on): CMP waits for a person (approval) and for the client (certConf); ACME for the client twice.
      const same = out.waiting.find((w) => w.protocol === rule.protocol && w.on === rule.verdict);
      if (!same) out.waiting.push({ protocol: rule.protocol, on: rule.verdict, count, oldestSeconds });
      else {
        same.count += count;
        same.oldestSeconds = oldestSeconds === null ? same.oldestSeconds : Math.max(same.oldestSeconds ?? 0, oldestSeconds);
      }
    }
  }
  return out;
}

/** "42 s", "17 min", "5 h", "3 days": how long, as the surfaces show it. */
export function describeDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

/** Why, in words: the last error when the read model has one, otherwise what the phase means. */
function describeCondition(c: Omit<RequestCondition, 'why'>): string {
  if (c.condition === 'stuck' && c.lastError) return c.lastError;
  const bound = describeDuration(c.boundSeconds);
  switch (c.phase) {
    case 'validating':
      return `a challenge has been validated for over ${bound} (past the retry window) without an outcome`;
    case 'processing':
      return `no certificate after ${bound} of signing: is a worker polling the signing task queue?`;
    case 'expired':
      return `still open ${bound} past its expiry: its workflow did not end it`;
    case 'signing':
      return `not signed within ${bound}: is a worker polling the signing task queue?`;
    case 'pending':
      return c.protocol === 'acme' ? 'waiting for the client to answer a challenge' : `not taken up by a worker within ${bound}`;
    case 'ready':
      return 'waiting for the client to finalize the order';
    case 'awaiting-approval':
      return 'waiting for an operator to approve or reject it';
    case 'confirming':
      return 'waiting for the client to confirm the certificate (certConf)';
    default:
      return c.lastError ?? c.phase;
  }
}
