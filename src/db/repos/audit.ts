/** Append-only audit log (table `audit_log`): who did what to which object. */
import type { Queryable } from '../pool.ts';

export interface AuditEntry {
  /** operator | worker | acme:<account> | est:<client> | … */
  actor: string;
  /** ca.create | cert.issue | cert.revoke | … */
  action: string;
  /** Serial, CA name, order id; null when the action has no single object. */
  object?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditRow extends Required<AuditEntry> {
  id: number;
  at: Date;
}

/**
 * Appends an entry. Pass the transaction's client to make the entry commit (or roll back)
 * with the change it describes.
 */
export async function audit(db: Queryable, entry: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, object, details) VALUES ($1, $2, $3, $4)', [
    entry.actor,
    entry.action,
    entry.object ?? null,
    JSON.stringify(entry.details ?? {}),
  ]);
}

/** Newest first, optionally for one object. */
export async function list(db: Queryable, opts: { object?: string; limit?: number } = {}): Promise<AuditRow[]> {
  const { rows } = await db.query<{ id: string; at: Date; actor: string; action: string; object: string | null; details: Record<string, unknown> }>(
    `SELECT id, at, actor, action, object, details FROM audit_log
     WHERE $1::text IS NULL OR object = $1
     ORDER BY id DESC LIMIT $2`,
    [opts.object ?? null, Math.min(Math.max(opts.limit ?? 100, 1), 1000)],
  );
  // bigserial arrives as a string; audit ids stay far below 2^53.
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}
