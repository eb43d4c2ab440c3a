/**
 * Failed authentications per key (table `auth_failures`, migration 051): the two steps of
 * one attempt, each a single locked row update in Postgres, so the counts are exact across
 * concurrent requests and processes. The policy (which keys, which limits) is in
 * src/http/auth-limiter.ts.
 */
import type { FailureRule } from '../../config/index.ts';
import type { Queryable } from '../pool.ts';

export interface Attempt {
  allowed: boolean;
  /** Seconds until a refused key may try again. */
  retryAfter: number;
  /** Attempts refused earlier and not reported yet (the caller audits them once). */
  reportRefused: number;
  reportSince: Date | null;
}

/** Takes a slot for an attempt of `key` (before the credentials are checked). */
export async function attempt(db: Queryable, key: string, rule: FailureRule): Promise<Attempt> {
  const { rows } = await db.query<{ allowed: boolean; retry_after: number; report_refused: number; report_since: Date | null }>(
    // Named columns: the pool prepares no text with `SELECT *`, and this runs for every request.
    'SELECT allowed, retry_after, report_refused, report_since FROM certflow_auth_attempt($1, $2, $3)',
    [key, rule.maxFailures, rule.windowSeconds],
  );
  const r = rows[0]!;
  return { allowed: r.allowed, retryAfter: r.retry_after, reportRefused: r.report_refused, reportSince: r.report_since };
}

/** Settles an allowed attempt; `lockedNow` when this failure locked the key. */
export async function settle(
  db: Queryable,
  key: string,
  ok: boolean,
  rule: FailureRule,
): Promise<{ lockedNow: boolean; failures: number; lockedUntil: Date | null }> {
  const { rows } = await db.query<{ locked_now: boolean; failures: number; locked_until: Date | null }>(
    'SELECT locked_now, failures, locked_until FROM certflow_auth_settle($1, $2, $3, $4)',
    [key, ok, rule.maxFailures, rule.lockSeconds],
  );
  const r = rows[0]!;
  return { lockedNow: r.locked_now, failures: r.failures, lockedUntil: r.locked_until };
}
