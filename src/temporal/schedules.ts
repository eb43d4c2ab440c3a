import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config/index.ts';

/** Id of the schedule that renews CRLs and OCSP responses (one per task queue). */
export function revocationScheduleId(config: Pick<Config, 'temporal'>): string {
  return `${config.temporal.taskQueue}-revocation-refresh`;
}

/**
 * Ensures the hourly schedule that renews CRLs and OCSP responses exists, and triggers it
 * once now, so a fresh CA publishes its first CRL right away. Safe to call from every
 * worker start: creation is idempotent and overlapping runs are skipped.
 */
export async function ensureRevocationSchedule(client: Client, config: Pick<Config, 'temporal'>): Promise<void> {
  await ensureSchedule(client, config, {
    scheduleId: revocationScheduleId(config),
    everyMs: 3_600_000,
    workflowType: 'crlWorkflow',
    args: [{}],
  });
}

/**
 * Creates a schedule that starts `workflowType` on the main task queue every `everyMs`
 * (idempotent: an existing one is kept, its interval brought to `everyMs` when the
 * configuration changed; overlapping runs are skipped) and triggers it once now. Safe to
 * call from every worker start.
 */
export async function ensureSchedule(
  client: Client,
  config: Pick<Config, 'temporal'>,
  s: { scheduleId: string; everyMs: number; workflowType: string; args: unknown[]; catchupWindow?: string },
): Promise<void> {
  try {
    await client.schedule.create({
      scheduleId: s.scheduleId,
      spec: { intervals: [{ every: s.everyMs }] },
      action: { type: 'startWorkflow', workflowType: s.workflowType, taskQueue: config.temporal.taskQueue, args: s.args },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: (s.catchupWindow ?? '1 hour') as '1 hour' },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    const handle = client.schedule.getHandle(s.scheduleId);
    const current = (await handle.describe()).spec.intervals ?? [];
    if (current.length !== 1 || current[0]!.every !== s.everyMs) {
      await handle.update((previous) => ({ ...previous, spec: { intervals: [{ every: s.everyMs }] } }));
    }
  }
  await client.schedule.getHandle(s.scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}

/** Id of the schedule of the CA expiry watch (one per task queue). */
export function caExpiryScheduleId(config: Pick<Config, 'temporal'>): string {
  return `${config.temporal.taskQueue}-ca-expiry-watch`;
}

/**
 * The daily CA expiry watch (src/ca/expiry.ts), triggered once at every worker start too so
 * a CA that expires too soon is in the audit log at once.
 */
export async function ensureCaExpirySchedule(client: Client, config: Pick<Config, 'temporal'>): Promise<void> {
  await ensureSchedule(client, config, {
    scheduleId: caExpiryScheduleId(config),
    everyMs: 86_400_000,
    workflowType: 'caExpiryWatchWorkflow',
    args: [],
    catchupWindow: '1 day',
  });
}
