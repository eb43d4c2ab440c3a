/**
 * Notifications in Postgres (migration 060): notices (one per thing worth telling and
 * threshold, never twice), their deliveries (one per channel and recipient, made with the
 * notice and never again), every attempt; and the questions the sweep asks the read model
 * (what expires, what the newest CRLs say, where a requester can be reached).
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { NotificationChannel } from '../../../activities/types.ts';
import { withTransaction, type Queryable } from '../pool.ts';

export type Channel = NotificationChannel;
export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

export interface NewNotice {
  id: string;
  type: string;
  subject: string;
  data: Record<string, unknown>;
  deliveries: Array<{ channel: Channel; target: string }>;
}

export interface NoticeRow {
  id: string;
  type: string;
  subject: string;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface DeliveryRow {
  id: string;
  noticeId: string;
  channel: Channel;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | null;
}

/** The delivery of a notice to one target: a fixed id, so its workflow id is fixed too. */
export function deliveryId(noticeId: string, channel: Channel, target: string): string {
  return createHash('sha256').update(`${noticeId}\n${channel}\n${target}`).digest('base64url').slice(0, 22);
}

/**
 * Records the notices not recorded before, each with its deliveries, in one transaction
 * per notice; returns the ids of the new ones. A notice recorded earlier (by an earlier
 * sweep, or by this one before a crash) is left alone, deliveries included.
 */
export async function recordNotices(pool: Pool, notices: NewNotice[]): Promise<string[]> {
  const created: string[] = [];
  for (const n of notices) {
    const inserted = await withTransaction(pool, async (tx) => {
      const { rowCount } = await tx.query(
        'INSERT INTO notices (id, type, subject, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING',
        [n.id, n.type, n.subject, JSON.stringify(n.data)],
      );
      if (!rowCount) return false;
      for (const d of n.deliveries) {
        await tx.query('INSERT INTO notice_deliveries (id, notice_id, channel, target) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
          deliveryId(n.id, d.channel, d.target),
          n.id,
          d.channel,
          d.target,
        ]);
      }
      return true;
    });
    if (inserted) created.push(n.id);
  }
  return created;
}

const DELIVERY = `d.id, d.notice_id, d.channel, d.target, d.status, d.attempts, d.last_error, d.created_at, d.updated_at, d.delivered_at`;

function toDelivery(r: Record<string, unknown>): DeliveryRow {
  return {
    id: r.id as string,
    noticeId: r.notice_id as string,
    channel: r.channel as Channel,
    target: r.target as string,
    status: r.status as DeliveryStatus,
    attempts: r.attempts as number,
    lastError: r.last_error as string | null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
    deliveredAt: r.delivered_at as Date | null,
  };
}

/** Deliveries still to be made, oldest first. */
export async function pendingDeliveryIds(db: Queryable, limit = 1000): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM notice_deliveries WHERE status = 'pending' ORDER BY created_at, id LIMIT $1",
    [limit],
  );
  return rows.map((r) => r.id);
}

export async function getDelivery(db: Queryable, id: string): Promise<{ delivery: DeliveryRow; notice: NoticeRow } | null> {
  const { rows } = await db.query(
    `SELECT ${DELIVERY}, n.type, n.subject, n.data, n.created_at AS notice_created_at
       FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id WHERE d.id = $1`,
    [id],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    delivery: toDelivery(r),
    notice: { id: r.notice_id, type: r.type, subject: r.subject, data: r.data, createdAt: r.notice_created_at },
  };
}

/** Records one attempt (and, when it worked, the delivery as delivered); returns its number. */
export async function recordAttempt(pool: Pool, id: string, outcome: { ok: boolean; detail: string }): Promise<number> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ attempts: number }>(
      `UPDATE notice_deliveries
          SET attempts = attempts + 1, updated_at = now(), last_error = CASE WHEN $2 THEN NULL ELSE $3 END,
              status = CASE WHEN $2 THEN 'delivered' ELSE status END, delivered_at = CASE WHEN $2 THEN now() ELSE delivered_at END
        WHERE id = $1 RETURNING attempts`,
      [id, outcome.ok, outcome.detail.slice(0, 2000)],
    );
    const attempt = rows[0]?.attempts ?? 0;
    if (attempt) {
      await tx.query('INSERT INTO notice_attempts (delivery_id, attempt, ok, detail) VALUES ($1, $2, $3, $4)', [
        id,
        attempt,
        outcome.ok,
        outcome.detail.slice(0, 2000),
      ]);
    }
    return attempt;
  });
}

/** After the last attempt: dead-lettered (shown by the console and `notifications list --status dead`). */
export async function markDead(db: Queryable, id: string, error: string): Promise<void> {
  await db.query("UPDATE notice_deliveries SET status = 'dead', last_error = $2, updated_at = now() WHERE id = $1 AND status = 'pending'", [
    id,
    error.slice(0, 2000),
  ]);
}

/** A dead delivery tried again (by an operator): pending once more; false if it was not dead. */
export async function requeue(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    "UPDATE notice_deliveries SET status = 'pending', updated_at = now() WHERE id = $1 AND status = 'dead'",
    [id],
  );
  return Boolean(rowCount);
}

export interface DeliveryView extends DeliveryRow {
  type: string;
  subject: string;
}

export async function listDeliveries(
  db: Queryable,
  q: { status?: DeliveryStatus; channel?: Channel; noticeIds?: string[]; limit?: number } = {},
): Promise<DeliveryView[]> {
  const { rows } = await db.query(
    `SELECT ${DELIVERY}, n.type, n.subject FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id
      WHERE ($1::text IS NULL OR d.status = $1) AND ($2::text IS NULL OR d.channel = $2) AND ($3::text[] IS NULL OR d.notice_id = ANY($3))
      ORDER BY d.updated_at DESC, d.id LIMIT $4`,
    [q.status ?? null, q.channel ?? null, q.noticeIds ?? null, Math.min(Math.max(q.limit ?? 100, 1), 10_000)],
  );
  return rows.map((r) => ({ ...toDelivery(r), type: r.type as string, subject: r.subject as string }));
}

/** Deliveries by channel and status, and how long the oldest pending one has waited (/metrics). */
export async function deliveryCounts(
  db: Queryable,
): Promise<Array<{ channel: Channel; status: DeliveryStatus; count: number; oldestSeconds: number | null }>> {
  const { rows } = await db.query(
    `SELECT channel, status, count(*)::int AS count, extract(epoch FROM now() - min(created_at))::float8 AS oldest
       FROM notice_deliveries GROUP BY 1, 2`,
  );
  return rows.map((r) => ({
    channel: r.channel,
    status: r.status,
    count: r.count,
    oldestSeconds: r.status === 'pending' ? Math.round(r.oldest) : null,
  }));
}

// ---- what the sweep asks the read model ----------------------------------------------------

export interface ExpiringCertificate {
  serial: string;
  subject: string;
  sans: string[];
  profile: string;
  caName: string;
  protocol: string;
  requester: string | null;
  notAfter: Date;
  /** Where its requester can be reached: the ACME account's mailto: contacts, the EST/CMP client's e-mail. */
  requesterEmails: string[];
}

/**
 * Valid certificates that expire within `days` and that nothing newer replaces (a valid
 * certificate with the same subject and names, or one that says it replaces it, expiring
 * later, or at the same second but made after it): a renewed certificate is not worth a
 * notice, even when its renewal was issued within the same second.
 */
export async function expiringCertificates(db: Queryable, days: number, limit = 5000): Promise<ExpiringCertificate[]> {
  const { rows } = await db.query(
    `SELECT c.serial, c.subject, c.sans, c.profile, c.ca_name, c.protocol, c.requester, c.not_after,
            CASE c.protocol
              WHEN 'acme' THEN (SELECT coalesce(array_agg(substr(x, 8)), '{}') FROM acme_accounts a, jsonb_array_elements_text(a.contact) x
                                 WHERE a.id = c.requester AND x LIKE 'mailto:%')
              WHEN 'est' THEN (SELECT array_remove(array_agg(e.email), NULL) FROM est_clients e WHERE e.name = c.requester)
              WHEN 'cmp' THEN (SELECT array_remove(array_agg(m.email), NULL) FROM cmp_clients m WHERE 'ref:' || m.ref = c.requester)
            END AS emails
       FROM certificates c
      WHERE c.status = 'valid' AND c.not_after > now() AND c.not_after <= now() + make_interval(days => $1)
        AND NOT EXISTS (
          SELECT 1 FROM certificates n
           WHERE n.status = 'valid' AND (n.not_after, n.created_at, n.serial) > (c.not_after, c.created_at, c.serial)
             AND (n.replaces = c.serial OR (n.subject = c.subject AND n.sans = c.sans AND n.profile = c.profile)))
      ORDER BY c.not_after, c.serial LIMIT $2`,
    [days, limit],
  );
  return rows.map((r) => ({
    serial: r.serial,
    subject: r.subject,
    sans: r.sans,
    profile: r.profile,
    caName: r.ca_name,
    protocol: r.protocol,
    requester: r.requester,
    notAfter: r.not_after,
    requesterEmails: r.emails ?? [],
  }));
}

/**
 * The validity of every CA's certificate in use (root, issuing and whatever other roles the
 * table holds): the newest generation that has a certificate and has taken over (migration
 * 070); revoked CAs are left out.
 */
export async function caValidity(
  db: Queryable,
): Promise<Array<{ name: string; role: string; subject: string; serial: string; notAfter: Date }>> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (c.name) c.name, c.role, k.subject, k.serial, k.not_after
       FROM cas c JOIN ca_keys k ON k.ca_name = c.name
      WHERE c.status <> 'revoked' AND k.cert_der IS NOT NULL AND k.activate_at <= now()
      ORDER BY c.name, k.generation DESC`,
  );
  return rows.map((r) => ({ name: r.name, role: r.role, subject: r.subject, serial: r.serial, notAfter: r.not_after }));
}

/** The newest CRL of each CA that has one. */
export async function newestCrls(db: Queryable): Promise<Array<{ caName: string; crlNumber: string; thisUpdate: Date; nextUpdate: Date }>> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (ca_name) ca_name, crl_number::text AS crl_number, this_update, next_update
       FROM crls ORDER BY ca_name, crl_number DESC`,
  );
  return rows.map((r) => ({ caName: r.ca_name, crlNumber: r.crl_number, thisUpdate: r.this_update, nextUpdate: r.next_update }));
}
