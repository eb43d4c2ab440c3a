/**
 * ACME orders, authorizations and challenges (tables acme_orders, acme_authzs,
 * acme_challenges). The front end inserts an order with its new authorizations in the
 * transaction that counts it against the rate limits, then starts the order's workflow;
 * from then on the order's workflow (or an authorization's own workflow) changes them,
 * through its activities. Polling costs no Temporal call: GETs read these tables.
 *
 * Postgres row locks decide every race between the paths that change an authorization:
 * validation (beginValidation / completeValidation), deactivation and issuance
 * (lockForIssuance). Whoever commits first wins; the loser sees the winner's result.
 */
import { lockForTransaction } from '../locks.ts';
import type { Queryable } from '../pool.ts';
import { CaError } from '../../core/errors.ts';
import type { AcmeIdentifier, AuthzRecord, AuthzStatus, OrderRecord, OrderStatus, Problem } from '../../../activities/acme-types.ts';

export interface OrderRow {
  id: string;
  accountId: string;
  alias: string;
  status: OrderStatus;
  identifiers: AcmeIdentifier[];
  authzIds: string[];
  expiresAt: Date;
  profile: string;
  acmeProfile: string | null;
  replaces: string | null;
  error: Problem | null;
  serial: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ChallengeRow {
  id: string;
  authzId: string;
  type: string;
  token: string;
  status: string;
  validatedAt: Date | null;
  error: Problem | null;
}

export interface AuthzRow {
  id: string;
  accountId: string;
  alias: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AuthzStatus;
  expiresAt: Date;
  /** The order that created it (its workflow validates it while the order is open); null: pre-authorization. */
  ownerOrderId: string | null;
  /** Status of the owner order (null without one). */
  ownerOrderStatus: OrderStatus | null;
  validatedAt: Date | null;
  challenges: ChallengeRow[];
}

const ORDER_COLUMNS =
  'id, account_id, alias, status, identifiers, authz_ids, expires_at, profile, acme_profile, replaces, error, serial, created_at, updated_at';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toOrder(r: any): OrderRow {
  return {
    id: r.id,
    accountId: r.account_id,
    alias: r.alias,
    status: r.status,
    identifiers: r.identifiers,
    authzIds: r.authz_ids,
    expiresAt: r.expires_at,
    profile: r.profile,
    acmeProfile: r.acme_profile,
    replaces: r.replaces,
    error: r.error,
    serial: r.serial,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function getOrder(db: Queryable, id: string): Promise<OrderRow | null> {
  const { rows } = await db.query(`SELECT ${ORDER_COLUMNS} FROM acme_orders WHERE id = $1`, [id]);
  return rows[0] ? toOrder(rows[0]) : null;
}

/** An account's orders, newest first. */
export async function listOrders(db: Queryable, accountId: string, limit: number, offset: number): Promise<OrderRow[]> {
  const { rows } = await db.query(
    `SELECT ${ORDER_COLUMNS} FROM acme_orders WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
    [accountId, limit, offset],
  );
  return rows.map(toOrder);
}

/**
 * Orders for operators, most recently changed first; `ids`: only these; `first`: these
 * before the others (the stuck ones, from src/db/repos/stuck.ts).
 */
export async function findOrders(
  db: Queryable,
  opts: { status?: string; ids?: string[]; first?: string[]; limit?: number },
): Promise<OrderRow[]> {
  const { rows } = await db.query(
    `SELECT ${ORDER_COLUMNS} FROM acme_orders o
     WHERE ($1::text IS NULL OR o.status = $1) AND ($2::text[] IS NULL OR o.id = ANY($2))
     ORDER BY o.id = ANY($4::text[]) DESC, o.updated_at DESC LIMIT $3`,
    [opts.status ?? null, opts.ids ?? null, opts.limit ?? 100, opts.first ?? []],
  );
  return rows.map(toOrder);
}

/** Open orders (pending or ready) of an account. */
export async function openOrderIds(db: Queryable, accountId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>("SELECT id FROM acme_orders WHERE account_id = $1 AND status IN ('pending', 'ready')", [
    accountId,
  ]);
  return rows.map((r) => r.id);
}

// ---- rate-limit counts (callers hold the matching advisory lock) ----

/**
 * Takes the transaction-scoped advisory lock of a rate-limit key (an account, a registered
 * domain, a client address): counting and inserting under it make a limit exact under
 * concurrency. Keys are locked in a fixed order (account first, then domains sorted).
 */
export async function lockRateKey(db: Queryable, key: string): Promise<void> {
  await lockForTransaction(db, `certflow:acme-rate:${key}`);
}

/** New orders and pre-authorizations (newAuthz) of the account since `since`. */
export async function countRecentOrders(db: Queryable, accountId: string, since: Date): Promise<{ count: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(created_at) AS oldest FROM (
       SELECT created_at FROM acme_orders WHERE account_id = $1 AND created_at > $2
       UNION ALL
       SELECT created_at FROM acme_authzs WHERE account_id = $1 AND created_at > $2 AND owner_order_id IS NULL) r`,
    [accountId, since],
  );
  return { count: rows[0]!.n, oldest: rows[0]!.oldest };
}

/** Pending, unexpired authorizations of the account, and when the first of them expires. */
export async function countPendingAuthzs(db: Queryable, accountId: string): Promise<{ count: number; firstExpiry: Date | null }> {
  const { rows } = await db.query<{ n: number; first: Date | null }>(
    `SELECT count(*)::int AS n, min(expires_at) AS first FROM acme_authzs WHERE account_id = $1 AND status = 'pending' AND expires_at > now()`,
    [accountId],
  );
  return { count: rows[0]!.n, firstExpiry: rows[0]!.first };
}

/**
 * The per-domain certificate limit, counted as Boulder does: certificates of ACME orders
 * (issued, or stored and being signed: a stored TBS is always signed) whose names fall under
 * the registered domain or IP address `key`, since `since`. Locks each key first (sorted),
 * so that the caller's insert of a certificate is counted by the next one; returns the first
 * key at `limit`, with the time of its oldest certificate, or undefined.
 */
export async function domainAtCertificateLimit(
  db: Queryable,
  keys: readonly string[],
  limit: number,
  since: Date,
): Promise<{ key: string; oldest: Date } | undefined> {
  for (const key of [...keys].sort()) {
    await lockRateKey(db, `domain:${key}`);
    // An order that got its certificate in the window was updated then (updated_at only grows).
    const { rows } = await db.query<{ n: number; oldest: Date | null }>(
      `SELECT count(*)::int AS n, min(c.created_at) AS oldest
       FROM acme_orders o JOIN certificates c ON c.request_id = o.id
       WHERE o.registered_domains @> ARRAY[$1] AND o.updated_at > $2 AND c.created_at > $2`,
      [key, since],
    );
    if (rows[0]!.n >= limit) return { key, oldest: rows[0]!.oldest ?? new Date() };
  }
  return undefined;
}

/** Authorizations of the account for the identifier that failed validation since `since`. */
export async function countFailedValidations(
  db: Queryable,
  accountId: string,
  identifier: AcmeIdentifier,
  since: Date,
): Promise<{ count: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(updated_at) AS oldest FROM acme_authzs
     WHERE account_id = $1 AND identifier_value = $2 AND identifier_type = $3 AND status = 'invalid' AND updated_at > $4`,
    [accountId, identifier.value, identifier.type, since],
  );
  return { count: rows[0]!.n, oldest: rows[0]!.oldest };
}

// ---- authorizations ----

const AUTHZ_SELECT = `
  SELECT a.id, a.account_id, a.alias, a.identifier_type, a.identifier_value, a.wildcard, a.status, a.expires_at,
         a.owner_order_id, a.validated_at, o.status AS owner_status,
         COALESCE((SELECT json_agg(json_build_object('id', c.id, 'type', c.type, 'token', c.token, 'status', c.status,
                                                     'validatedAt', c.validated_at, 'error', c.error) ORDER BY c.type)
                   FROM acme_challenges c WHERE c.authz_id = a.id), '[]') AS challenges
  FROM acme_authzs a LEFT JOIN acme_orders o ON o.id = a.owner_order_id`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toAuthz(r: any): AuthzRow {
  return {
    id: r.id,
    accountId: r.account_id,
    alias: r.alias,
    identifier: { type: r.identifier_type, value: r.identifier_value },
    wildcard: r.wildcard,
    status: r.status,
    expiresAt: r.expires_at,
    ownerOrderId: r.owner_order_id,
    ownerOrderStatus: r.owner_status ?? null,
    validatedAt: r.validated_at,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    challenges: (r.challenges as any[]).map((c) => ({
      id: c.id,
      authzId: r.id,
      type: c.type,
      token: c.token,
      status: c.status,
      validatedAt: c.validatedAt ? new Date(c.validatedAt) : null,
      error: c.error,
    })),
  };
}

/** Authorizations with their challenges (one query), in the order of `ids`. */
export async function getAuthzs(db: Queryable, ids: string[]): Promise<AuthzRow[]> {
  if (!ids.length) return [];
  const { rows } = await db.query(`${AUTHZ_SELECT} WHERE a.id = ANY($1)`, [ids]);
  const byId = new Map(rows.map((r) => [r.id as string, toAuthz(r)]));
  return ids.map((id) => byId.get(id)).filter((a): a is AuthzRow => a !== undefined);
}

/**
 * One authorization: `= $1`, not `= ANY($1)`, whose plan Postgres would make anew at every
 * call (a one-element array looks cheaper than its generic plan's guess of ten).
 */
export async function getAuthz(db: Queryable, id: string): Promise<AuthzRow | null> {
  const { rows } = await db.query(`${AUTHZ_SELECT} WHERE a.id = $1`, [id]);
  return rows[0] ? toAuthz(rows[0]) : null;
}

/**
 * Still-valid authorizations of the account for these identifiers, lasting at least until
 * `until`, one per identifier (the longest-lived), locked FOR SHARE: a concurrent
 * deactivation waits for the caller's transaction, and then finds the order that uses it.
 */
export async function lockReusableAuthzs(
  db: Queryable,
  a: { accountId: string; alias: string; identifiers: Array<{ identifier: AcmeIdentifier; wildcard: boolean }>; until: Date },
): Promise<Map<string, { id: string; validatedAt: Date | null; method: string | null }>> {
  const keys = a.identifiers.map((i) => ({ type: i.identifier.type, value: i.identifier.value, wildcard: i.wildcard }));
  const { rows } = await db.query<{ id: string; key: string; validated_at: Date | null; method: string | null }>(
    `SELECT a.id, a.identifier_type || ':' || a.identifier_value || ':' || a.wildcard AS key, a.validated_at,
            (SELECT c.type FROM acme_challenges c WHERE c.authz_id = a.id AND c.status = 'valid' LIMIT 1) AS method
     FROM acme_authzs a
     JOIN jsonb_to_recordset($3::jsonb) AS k(type text, value text, wildcard boolean)
       ON a.identifier_type = k.type AND a.identifier_value = k.value AND a.wildcard = k.wildcard
     WHERE a.account_id = $1 AND a.alias = $2 AND a.status = 'valid' AND a.expires_at > $4
     ORDER BY a.expires_at DESC
     FOR SHARE OF a`,
    [a.accountId, a.alias, JSON.stringify(keys), a.until],
  );
  const out = new Map<string, { id: string; validatedAt: Date | null; method: string | null }>();
  for (const r of rows) if (!out.has(r.key)) out.set(r.key, { id: r.id, validatedAt: r.validated_at, method: r.method });
  return out;
}

export function reuseKey(identifier: AcmeIdentifier, wildcard: boolean): string {
  return `${identifier.type}:${identifier.value}:${wildcard}`;
}

// ---- creation (front end, inside the rate-limit transaction) ----

export async function insertAuthz(db: Queryable, a: AuthzRecord & { ownerOrderId?: string }): Promise<void> {
  // One statement: the authorization and its challenges (the foreign key is checked at its end).
  await db.query(
    `WITH a AS (INSERT INTO acme_authzs (id, account_id, alias, identifier_type, identifier_value, wildcard, status, expires_at, owner_order_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id)
     INSERT INTO acme_challenges (id, authz_id, type, token, status)
     SELECT x.id, a.id, x.type, x.token, 'pending' FROM a, jsonb_to_recordset($10::jsonb) AS x(id text, type text, token text)`,
    [
      a.id,
      a.accountId,
      a.alias,
      a.identifier.type,
      a.identifier.value,
      a.wildcard,
      a.status,
      a.expiresAt,
      a.ownerOrderId ?? null,
      JSON.stringify(a.challenges.map((c) => ({ id: c.id, type: c.type, token: c.token }))),
    ],
  );
}

/** Thrown by insertOrder when another order that is not invalid replaces the same certificate. */
export class AlreadyReplacedError extends CaError {
  constructor(replaces: string, cause: unknown) {
    super('conflict', `certificate ${replaces} has already been replaced`, { rule: 'acme.order.alreadyReplaced', cause });
  }
}

export async function insertOrder(db: Queryable, o: OrderRecord & { registeredDomains: string[] }): Promise<void> {
  try {
    await db.query(
      `INSERT INTO acme_orders (id, account_id, alias, status, identifiers, authz_ids, expires_at, profile, acme_profile, replaces, registered_domains)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        o.id,
        o.accountId,
        o.alias,
        o.status,
        JSON.stringify(o.identifiers),
        o.authzIds,
        o.expiresAt,
        o.profile,
        o.acmeProfile ?? null,
        o.replaces ?? null,
        o.registeredDomains,
      ],
    );
  } catch (e) {
    const pgErr = e as { code?: string; constraint?: string };
    if (pgErr.code === '23505' && pgErr.constraint === 'acme_orders_replaces_uniq') throw new AlreadyReplacedError(o.replaces ?? '', e);
    throw e;
  }
}

// ---- validation (the validation activity) ----

export type BeginValidation =
  | { state: 'started' | 'alreadyValid'; thumbprint: string; validatedAt: Date | null; expiresAt: Date }
  | { state: 'authzGone'; authzStatus: AuthzStatus }
  | { state: 'accountGone'; accountStatus: string };

/**
 * Marks a challenge 'processing' (its authorization must be pending) and returns the
 * account key's current thumbprint: the key authorization is computed from the key the
 * account has now (after a key change the old one no longer validates). A retried attempt
 * of a validation that already succeeded finds it valid ('alreadyValid').
 */
export async function beginValidation(db: Queryable, p: { authzId: string; challengeId: string }): Promise<BeginValidation> {
  // One statement: the CTE locks the authorization (waiting for a deactivation under way,
  // then reading its outcome) before the challenge is marked.
  const { rows } = await db.query<{
    status: AuthzStatus;
    expires_at: Date;
    validated_at: Date | null;
    challenge_status: string;
    thumbprint: string;
    account_status: string;
  }>(
    `WITH a AS (SELECT id, status, expires_at, validated_at, account_id FROM acme_authzs WHERE id = $1 FOR UPDATE),
          marked AS (UPDATE acme_challenges c SET status = 'processing', updated_at = now()
                     FROM a JOIN acme_accounts acc ON acc.id = a.account_id
                     WHERE c.id = $2 AND c.authz_id = a.id AND c.status = 'pending' AND a.status = 'pending'
                       AND a.expires_at > now() AND acc.status = 'valid'
                     RETURNING c.id)
     SELECT a.status, a.expires_at, a.validated_at, c.status AS challenge_status, acc.thumbprint, acc.status AS account_status
     FROM a JOIN acme_challenges c ON c.authz_id = a.id AND c.id = $2 JOIN acme_accounts acc ON acc.id = a.account_id`,
    [p.authzId, p.challengeId],
  );
  const r = rows[0];
  if (!r) throw new CaError('internal', `authorization ${p.authzId} or its challenge ${p.challengeId} is missing`);
  if (r.account_status !== 'valid') return { state: 'accountGone', accountStatus: r.account_status };
  if (r.status === 'valid' && r.challenge_status === 'valid') {
    return { state: 'alreadyValid', thumbprint: r.thumbprint, validatedAt: r.validated_at, expiresAt: r.expires_at };
  }
  if (r.status !== 'pending' || r.expires_at.getTime() <= Date.now())
    return { state: 'authzGone', authzStatus: r.status === 'pending' ? 'expired' : r.status };
  return { state: 'started', thumbprint: r.thumbprint, validatedAt: null, expiresAt: r.expires_at };
}

/**
 * Records a successful validation in one transaction: the challenge and its authorization
 * become valid, and the owning order becomes ready when this was its last authorization —
 * the transition a client observes (authorization valid) and the one that lets it finalize
 * (order ready) are the same commit. The order row is locked first, so two authorizations
 * of one order finishing at once serialize and the second sees the first. Call inside a
 * transaction.
 */
export async function completeValidation(
  db: Queryable,
  p: { orderId?: string; authzId: string; challengeId: string; validatedAt: Date; expiresAt: Date },
): Promise<{ orderReady: boolean; validated?: AuthzTransition }> {
  if (p.orderId) await db.query('SELECT 1 FROM acme_orders WHERE id = $1 FOR UPDATE', [p.orderId]);
  const { rows } = await db.query<AuthzTransition>(
    `WITH c AS (UPDATE acme_challenges SET status = 'valid', validated_at = $2, error = NULL, updated_at = now() WHERE id = $4 RETURNING 1)
     UPDATE acme_authzs SET status = 'valid', validated_at = $2, expires_at = $3, updated_at = now() WHERE id = $1 AND status = 'pending'
     RETURNING ${AUTHZ_TRANSITION}`,
    [p.authzId, p.validatedAt, p.expiresAt, p.challengeId],
  );
  let orderReady = false;
  if (p.orderId) {
    const { rowCount } = await db.query(
      `UPDATE acme_orders o SET status = 'ready', updated_at = now()
       WHERE o.id = $1 AND o.status = 'pending' AND NOT EXISTS (
         SELECT 1 FROM acme_authzs a WHERE a.id = ANY(o.authz_ids) AND NOT (a.status = 'valid' AND a.expires_at > now()))`,
      [p.orderId],
    );
    orderReady = rowCount === 1;
  }
  return rows[0] ? { orderReady, validated: rows[0] } : { orderReady };
}

/**
 * Records a failed validation: the challenge (with the problem) and its authorization
 * become invalid, and so does the order (when given and still open) — one transaction.
 */
export async function failValidation(
  db: Queryable,
  p: { orderId?: string; authzId: string; challengeId: string; error: Problem; orderError?: Problem },
): Promise<{ failed?: AuthzTransition & { orderInvalid: boolean } }> {
  const { rows } = await db.query<AuthzTransition & { orderInvalid: boolean }>(
    `WITH c AS (UPDATE acme_challenges SET status = 'invalid', error = $3, updated_at = now() WHERE id = $2 AND status <> 'valid' RETURNING 1),
          a AS (UPDATE acme_authzs SET status = 'invalid', updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING ${AUTHZ_TRANSITION}),
          o AS (UPDATE acme_orders SET status = 'invalid', error = $5, updated_at = now()
                WHERE id = $4 AND status IN ('pending', 'ready') RETURNING 1)
     SELECT a.*, EXISTS (SELECT 1 FROM o) AS "orderInvalid" FROM a`,
    [p.authzId, p.challengeId, JSON.stringify(p.error), p.orderId ?? null, JSON.stringify(p.orderError ?? p.error)],
  );
  return rows[0] ? { failed: rows[0] } : {};
}

/** Who an authorization belongs to and what it names, as returned by the statements that change its status. */
export interface AuthzTransition {
  accountId: string;
  identifier: string;
}
const AUTHZ_TRANSITION = `account_id AS "accountId", identifier_type || ':' || CASE WHEN wildcard THEN '*.' ELSE '' END || identifier_value AS identifier`;

// ---- deactivation (the authorization workflow's activity) ----

export type Deactivation =
  | { state: 'deactivated'; orderIds: string[]; authz: AuthzTransition }
  | { state: 'alreadyDeactivated'; orderIds: string[] }
  | { state: 'refused'; reason: string };

/**
 * Deactivates an authorization (RFC 8555 7.5.2) unless it is being validated (refused: the
 * validation has the row, and its outcome stands) or is no longer pending/valid. Returns
 * the open orders that use it, which the caller tells: they can no longer be issued.
 * Call inside a transaction.
 */
export async function deactivateAuthz(db: Queryable, authzId: string): Promise<Deactivation> {
  const { rows } = await db.query<{ status: AuthzStatus; expires_at: Date; validating: boolean } & AuthzTransition>(
    `SELECT a.status, a.expires_at, ${AUTHZ_TRANSITION},
            EXISTS (SELECT 1 FROM acme_challenges c WHERE c.authz_id = a.id AND c.status = 'processing') AS validating
     FROM acme_authzs a WHERE a.id = $1 FOR UPDATE`,
    [authzId],
  );
  const r = rows[0];
  if (!r) return { state: 'refused', reason: `no authorization ${authzId}` };
  if (r.status === 'deactivated') return { state: 'alreadyDeactivated', orderIds: [] };
  if (r.status === 'pending' && r.validating) {
    return { state: 'refused', reason: 'the authorization is being validated; deactivate it once the validation has ended' };
  }
  const expired = r.expires_at.getTime() <= Date.now();
  if ((r.status !== 'pending' && r.status !== 'valid') || expired) {
    return {
      state: 'refused',
      reason: `an authorization that is ${expired && r.status !== 'invalid' ? 'expired' : r.status} cannot be deactivated`,
    };
  }
  await db.query(`UPDATE acme_authzs SET status = 'deactivated', updated_at = now() WHERE id = $1`, [authzId]);
  const orders = await db.query<{ id: string }>(
    `SELECT id FROM acme_orders WHERE authz_ids @> ARRAY[$1] AND status IN ('pending', 'ready')`,
    [authzId],
  );
  return { state: 'deactivated', orderIds: orders.rows.map((o) => o.id), authz: { accountId: r.accountId, identifier: r.identifier } };
}

// ---- issuance (the signing activity, inside its transactions) ----

/**
 * Issuance of an order may start: marks the order 'processing' (which locks it), checks
 * that every authorization is still valid, unexpired and the order's account's (FOR SHARE:
 * a deactivation waits, or was first and wins), and returns the identifiers they authorize
 * (wildcards with their "*."): what the CA may sign; and the order's rate-limit keys
 * (registered domains, IP addresses). Throws 'unauthorized' when an
 * authorization is not valid; the caller's transaction then rolls the mark back. Call
 * inside a transaction.
 */
export async function beginIssuance(
  db: Queryable,
  orderId: string,
  authzIds: string[],
): Promise<{ authorized: AcmeIdentifier[]; limitKeys: string[] }> {
  // Marking the order processing locks its row (a retry finds it processing already, and
  // keeps the time it began: how long it has been processing is what makes it stuck).
  await db.query(
    `UPDATE acme_orders SET status = 'processing', updated_at = CASE WHEN status = 'processing' THEN updated_at ELSE now() END
     WHERE id = $1 AND status IN ('ready', 'processing')`,
    [orderId],
  );
  const { rows } = await db.query<{
    id: string;
    identifier_type: AcmeIdentifier['type'];
    identifier_value: string;
    wildcard: boolean;
    status: string;
    expired: boolean;
    registered_domains: string[];
  }>(
    `SELECT a.id, a.identifier_type, a.identifier_value, a.wildcard, a.status, a.expires_at <= now() AS expired, o.registered_domains
     FROM acme_authzs a JOIN acme_orders o ON o.id = $2 AND o.account_id = a.account_id
     WHERE a.id = ANY($1) FOR SHARE OF a`,
    [authzIds, orderId],
  );
  const bad = rows.find((r) => r.status !== 'valid' || r.expired);
  if (bad || rows.length !== new Set(authzIds).size) {
    const what = bad
      ? `the authorization for ${bad.identifier_value} is ${bad.expired && bad.status === 'valid' ? 'expired' : bad.status}`
      : 'an authorization is missing';
    throw new CaError('unauthorized', `${what}: the order can no longer be issued`, { rule: 'acme.order.authorization' });
  }
  return {
    authorized: rows.map((r) => ({ type: r.identifier_type, value: `${r.wildcard ? '*.' : ''}${r.identifier_value}` })),
    limitKeys: rows[0]?.registered_domains ?? [],
  };
}

/**
 * A server fault of the order's signing activity (HSM gone, database down), which the
 * activity retries: the order stays processing and this says why (src/db/repos/stuck.ts).
 * Best effort, by the failing attempt; it does not count as a change of the order.
 */
export async function recordSigningFault(db: Queryable, orderId: string, fault: string): Promise<void> {
  await db.query(`UPDATE acme_orders SET signing_fault = $2 WHERE id = $1 AND status = 'processing'`, [orderId, fault.slice(0, 2000)]);
}

/** The order's certificate is issued (same transaction as the certificate itself). */
export async function markOrderValid(db: Queryable, orderId: string, serial: string): Promise<void> {
  await db.query(`UPDATE acme_orders SET status = 'valid', serial = $2, updated_at = now() WHERE id = $1`, [orderId, serial]);
}

// ---- projections of the workflows ----

/** Returns the status the order had before, and its account; null when there is no such order. */
export async function updateOrder(
  db: Queryable,
  p: { id: string; status: OrderStatus; error?: Problem; serial?: string },
): Promise<{ before: OrderStatus; accountId: string } | null> {
  const { rows } = await db.query<{ before: OrderStatus; accountId: string }>(
    `WITH prev AS (SELECT id, status FROM acme_orders WHERE id = $1 FOR UPDATE)
     UPDATE acme_orders o SET status = $2, error = COALESCE($3, o.error), serial = COALESCE($4, o.serial), updated_at = now()
     FROM prev WHERE o.id = prev.id
     RETURNING prev.status AS before, o.account_id AS "accountId"`,
    [p.id, p.status, p.error ? JSON.stringify(p.error) : null, p.serial ?? null],
  );
  return rows[0] ?? null;
}

export async function updateAuthz(db: Queryable, p: { id: string; status: AuthzStatus }): Promise<void> {
  await db.query(`UPDATE acme_authzs SET status = $2, updated_at = now() WHERE id = $1 AND status IN ('pending', 'valid')`, [
    p.id,
    p.status,
  ]);
}

/**
 * The front end, once Temporal confirmed that an Update was accepted (durable) but before
 * its outcome: what a client reads next shows that its request is being worked on.
 * Conditional, so it never overwrites the workflow's own later state.
 */
export async function markChallengeProcessing(db: Queryable, challengeId: string): Promise<void> {
  await db.query(`UPDATE acme_challenges SET status = 'processing', updated_at = now() WHERE id = $1 AND status = 'pending'`, [
    challengeId,
  ]);
}

export async function markOrderProcessing(db: Queryable, orderId: string): Promise<void> {
  await db.query(`UPDATE acme_orders SET status = 'processing', updated_at = now() WHERE id = $1 AND status = 'ready'`, [orderId]);
}
