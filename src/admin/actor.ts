/** Who does something in the console or the admin API, and the audit entry of what they did. */
import type { Queryable } from '../db/pool.ts';
import { audit, type AuditResult } from '../db/repos/audit.ts';

export interface Actor {
  /** user:<name> | token:<id> | operator:<os user> */
  actor: string;
  role: string | null;
  requestId?: string;
}

export async function record(
  db: Queryable,
  who: Actor,
  action: string,
  object: string | null,
  details: Record<string, unknown> = {},
  result: AuditResult = 'ok',
) {
  await audit(db, { actor: who.actor, role: who.role, action, object, details, result, requestId: who.requestId });
}
