/**
 * The worker's schedules (ids and workflow types from workflows/api.ts): the hourly
 * renewal of CRLs and OCSP responses, the periodic signed audit checkpoint and the daily CA
 * expiry watch. Safe to call from every worker start: creation is idempotent and overlapping runs are skipped.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { scheduleIds, WORKFLOWS } from '../../workflows/api.ts';
import type { Config } from '../config/index.ts';

/**
 * Ensures the schedule exists with this interval (created, or updated when the configured
 * interval changed) and triggers it once now (a fresh CA publishes its first CRL right away).
 */
async function ensureSchedule(client: Client, config: Pick<Config, 'temporal'>, scheduleId: string, workflowType: string, everyMs: number) {
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: everyMs }] },
      action: { type: 'startWorkflow', workflowType, taskQueue: config.temporal.taskQueue, args: [{}] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    const handle = client.schedule.getHandle(scheduleId);
    const current = (await handle.describe()).spec.intervals ?? [];
    if (current.length !== 1 || current[0]!.every !== everyMs) {
      await handle.update((previous) => ({ ...previous, spec: { intervals: [{ every: everyMs }] } }));
    }
  }
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}

export async function ensureSchedules(client: Client, config: Pick<Config, 'temporal' | 'audit'>): Promise<void> {
  const queue = config.temporal.taskQueue;
  await ensureSchedule(client, config, scheduleIds.revocationRefresh(queue), WORKFLOWS.crl.type, 3600_000);
  await ensureSchedule(
    client,
    config,
    scheduleIds.auditCheckpoint(queue),
    WORKFLOWS.auditCheckpoint.type,
    config.audit.checkpointSeconds * 1000,
  );
  // Daily; triggered at every worker start too, so a CA that expires too soon is in the audit log at once.
  await ensureSchedule(client, config, scheduleIds.caExpiryWatch(queue), WORKFLOWS.caExpiryWatch.type, 86_400_000);
}
