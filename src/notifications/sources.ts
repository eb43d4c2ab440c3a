/**
 * The sweep's questions: which certificates, CAs (the CA expiry watch's
 * report, src/ra/ca-expiry.ts) and CRLs are about to expire, which
 * requests are stuck (the one definition, src/db/repos/stuck.ts), whether the audit log
 * still verifies (the check `certflow audit verify` makes). Each answer becomes the notices
 * of notices.ts; recording them (once) and delivering them is the caller's.
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import { verifyAuditLog } from '../admin/audit-verify.ts';
import * as repo from '../db/repos/notifications.ts';
import { stuckRequests } from '../db/repos/stuck.ts';
import { caExpiryReport } from '../ra/ca-expiry.ts';
import { auditVerificationFailed, caExpiring, certificateExpiring, certificateRule, crlExpiring, requestStuck } from './notices.ts';

/** True when there is somewhere to send notices to. */
export function notificationsConfigured(config: Pick<Config, 'notifications'>): boolean {
  const n = config.notifications;
  return (
    n.webhooks.length > 0 || Boolean(n.smtp && (n.email.length || n.requesters || Object.values(n.profiles).some((p) => p.email?.length)))
  );
}

export async function dueNotices(deps: { config: Config; pool: Pool }, now = new Date()): Promise<repo.NewNotice[]> {
  const n = deps.config.notifications;
  const out: Array<repo.NewNotice | undefined> = [];
  // The longest certificate threshold of any profile bounds the query.
  const maxDays = Math.max(0, ...n.expiringDays, ...[...deps.config.profiles.keys()].flatMap((p) => certificateRule(n, p).expiringDays));
  if (maxDays > 0) for (const c of await repo.expiringCertificates(deps.pool, maxDays)) out.push(certificateExpiring(n, c, now));
  for (const ca of await caExpiryReport(deps.pool, deps.config, now)) out.push(caExpiring(n, ca));
  for (const crl of await repo.newestCrls(deps.pool)) out.push(crlExpiring(n, crl, now));
  for (const r of await stuckRequests(deps.pool, deps.config.stuck, { limit: 500 })) out.push(requestStuck(n, r));
  // The check `certflow audit verify` and the console make: the pinned key, the outside checkpoints.
  const audit = await verifyAuditLog(deps.pool, deps.config.home);
  if (!audit.ok) {
    const digest = createHash('sha256')
      .update(JSON.stringify(audit.firstBroken ? [audit.firstBroken.seq, audit.firstBroken.reason] : audit.problems.slice(0, 1)))
      .digest('base64url')
      .slice(0, 16);
    out.push(auditVerificationFailed(n, audit, digest));
  }
  return out.filter((x): x is repo.NewNotice => x !== undefined);
}
