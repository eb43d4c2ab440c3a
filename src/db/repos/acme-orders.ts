/**
 * ACME orders, authorizations and challenges (tables acme_orders, acme_authzs,
 * acme_challenges): written by the order and authz workflows' storage activities, read by
 * the front end (polling costs no Temporal call).
 */
import type { Queryable } from '../pool.ts';
import type { AcmeIdentifier, AuthzRecord, AuthzStatus, OrderRecord, OrderStatus, Problem } from '../../../activities/acme-types.ts';

export interface OrderRow {
  id: string;
  accountId: string;
  alias: string;
  status: OrderStatus;
  identifiers: AcmeIdentifier[];
  authzIds: string[];
  notBefore: Date | null;
  notAfter: Date | null;
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
  challenges: ChallengeRow[];
}

const ORDER_COLUMNS =
  'id, account_id, alias, status, identifiers, authz_ids, not_before, not_after, expires_at, profile, acme_profile, replaces, error, serial, created_at, updated_at';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toOrder(r: any): OrderRow {
  return {
    id: r.id,
    accountId: r.account_id,
    alias: r.alias,
    status: r.status,
    identifiers: r.identifiers,
    authzIds: r.authz_ids,
    notBefore: r.not_before,
    notAfter: r.not_after,
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

/** An account's orders, newest first, keyset-paginated by (created_at, id). */
export async function listOrders(db: Queryable, accountId: string, limit: number, offset: number): Promise<OrderRow[]> {
  const { rows } = await db.query(
    `SELECT ${ORDER_COLUMNS} FROM acme_orders WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
    [accountId, limit, offset],
  );
  return rows.map(toOrder);
}

/**
 * Orders for operators, newest first. `stuck`: orders the server should have moved on but
 * did not — processing for over `processingSeconds`, a challenge validating for over
 * `validatingSeconds`, or still open past their expiry (the expiry timer should have fired).
 */
export async function findOrders(
  db: Queryable,
  opts: { status?: string; stuck?: { processingSeconds: number; validatingSeconds: number }; limit?: number },
): Promise<OrderRow[]> {
  const { rows } = await db.query(
    `SELECT ${ORDER_COLUMNS} FROM acme_orders o
     WHERE ($1::text IS NULL OR o.status = $1)
       AND (NOT $2::boolean OR
            (o.status = 'processing' AND o.updated_at < now() - make_interval(secs => $3)) OR
            (o.status IN ('pending', 'ready', 'processing') AND o.expires_at < now() - interval '1 minute') OR
            (o.status = 'pending' AND EXISTS (
               SELECT 1 FROM acme_challenges c WHERE c.authz_id = ANY(o.authz_ids)
                 AND c.status = 'processing' AND c.updated_at < now() - make_interval(secs => $4))))
     ORDER BY o.updated_at DESC LIMIT $5`,
    [opts.status ?? null, Boolean(opts.stuck), opts.stuck?.processingSeconds ?? 0, opts.stuck?.validatingSeconds ?? 0, opts.limit ?? 100],
  );
  return rows.map(toOrder);
}

export async function countRecentOrders(db: Queryable, accountId: string, since: Date): Promise<{ count: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    'SELECT count(*)::int AS n, min(created_at) AS oldest FROM acme_orders WHERE account_id = $1 AND created_at > $2',
    [accountId, since],
  );
  return { count: rows[0]!.n, oldest: rows[0]!.oldest };
}

/** Valid orders since `since` that named `domain` or a name below it (per registered domain limit). */
export async function countIssuedForDomain(db: Queryable, domain: string, since: Date): Promise<{ count: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(o.created_at) AS oldest FROM acme_orders o
     WHERE o.status = 'valid' AND o.created_at > $2
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(o.identifiers) i
                   WHERE i->>'type' = 'dns' AND (i->>'value' = $1 OR i->>'value' LIKE '%.' || $1))`,
    [domain, since],
  );
  return { count: rows[0]!.n, oldest: rows[0]!.oldest };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toChallenge(r: any): ChallengeRow {
  return { id: r.id, authzId: r.authz_id, type: r.type, token: r.token, status: r.status, validatedAt: r.validated_at, error: r.error };
}

export async function getAuthzs(db: Queryable, ids: string[]): Promise<AuthzRow[]> {
  if (!ids.length) return [];
  const { rows } = await db.query(
    'SELECT id, account_id, alias, identifier_type, identifier_value, wildcard, status, expires_at FROM acme_authzs WHERE id = ANY($1)',
    [ids],
  );
  const { rows: chals } = await db.query(
    'SELECT id, authz_id, type, token, status, validated_at, error FROM acme_challenges WHERE authz_id = ANY($1) ORDER BY type',
    [ids],
  );
  const byId = new Map(
    rows.map((r) => [
      r.id as string,
      {
        id: r.id,
        accountId: r.account_id,
        alias: r.alias,
        identifier: { type: r.identifier_type, value: r.identifier_value },
        wildcard: r.wildcard,
        status: r.status,
        expiresAt: r.expires_at,
        challenges: chals.filter((c) => c.authz_id === r.id).map(toChallenge),
      } as AuthzRow,
    ]),
  );
  return ids.map((id) => byId.get(id)).filter((a): a is AuthzRow => a !== undefined);
}

export async function getAuthz(db: Queryable, id: string): Promise<AuthzRow | null> {
  return (await getAuthzs(db, [id]))[0] ?? null;
}

/** A still-valid authorization of the account for the identifier, lasting at least until `until`. */
export async function findReusableAuthz(
  db: Queryable,
  a: { accountId: string; alias: string; identifier: AcmeIdentifier; wildcard: boolean; until: Date },
): Promise<AuthzRow | null> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM acme_authzs
     WHERE account_id = $1 AND alias = $2 AND identifier_type = $3 AND identifier_value = $4 AND wildcard = $5
       AND status = 'valid' AND expires_at > $6
     ORDER BY expires_at DESC LIMIT 1`,
    [a.accountId, a.alias, a.identifier.type, a.identifier.value, a.wildcard, a.until],
  );
  return rows[0] ? getAuthz(db, rows[0].id) : null;
}

export async function getChallenge(db: Queryable, id: string): Promise<ChallengeRow | null> {
  const { rows } = await db.query('SELECT id, authz_id, type, token, status, validated_at, error FROM acme_challenges WHERE id = $1', [id]);
  return rows[0] ? toChallenge(rows[0]) : null;
}

// ---- writes (storage activities only) ----

async function insertAuthz(db: Queryable, a: AuthzRecord): Promise<void> {
  await db.query(
    `INSERT INTO acme_authzs (id, account_id, alias, identifier_type, identifier_value, wildcard, status, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
    [a.id, a.accountId, a.alias, a.identifier.type, a.identifier.value, a.wildcard, a.status, a.expiresAt],
  );
  for (const c of a.challenges) {
    await db.query(
      `INSERT INTO acme_challenges (id, authz_id, type, token, status) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
      [c.id, a.id, c.type, c.token, c.status],
    );
  }
}

export async function insertOrderRecords(db: Queryable, o: OrderRecord, authzs: AuthzRecord[]): Promise<void> {
  for (const a of authzs) await insertAuthz(db, a);
  await db.query(
    `INSERT INTO acme_orders (id, account_id, alias, status, identifiers, authz_ids, expires_at, profile, acme_profile, replaces)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
    [o.id, o.accountId, o.alias, o.status, JSON.stringify(o.identifiers), o.authzIds, o.expiresAt, o.profile, o.acmeProfile ?? null, o.replaces ?? null],
  );
}

export { insertAuthz as insertAuthzRecords };

export async function updateOrder(db: Queryable, p: { id: string; status: OrderStatus; error?: Problem; serial?: string }): Promise<void> {
  await db.query(
    `UPDATE acme_orders SET status = $2, error = COALESCE($3, error), serial = COALESCE($4, serial), updated_at = now() WHERE id = $1`,
    [p.id, p.status, p.error ? JSON.stringify(p.error) : null, p.serial ?? null],
  );
}

export async function updateAuthz(db: Queryable, p: { id: string; status: AuthzStatus; expiresAt?: string }): Promise<void> {
  await db.query(`UPDATE acme_authzs SET status = $2, expires_at = COALESCE($3, expires_at), updated_at = now() WHERE id = $1`, [
    p.id,
    p.status,
    p.expiresAt ?? null,
  ]);
}

export async function updateChallenge(
  db: Queryable,
  p: { id: string; status: string; error?: Problem; validatedAt?: string },
): Promise<void> {
  await db.query(
    `UPDATE acme_challenges SET status = $2, error = COALESCE($3, error), validated_at = COALESCE($4, validated_at), updated_at = now() WHERE id = $1`,
    [p.id, p.status, p.error ? JSON.stringify(p.error) : null, p.validatedAt ?? null],
  );
}
