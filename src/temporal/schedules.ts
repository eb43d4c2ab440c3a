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
  const scheduleId = revocationScheduleId(config);
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1 hour' }] },
      action: { type: 'startWorkflow', workflowType: 'crlWorkflow', taskQueue: config.temporal.taskQueue, args: [{}] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
  }
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}
