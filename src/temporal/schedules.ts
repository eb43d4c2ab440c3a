/**
 * The worker's schedules (ids and workflow types from workflows/api.ts): the hourly
 * renewal of CRLs and OCSP responses, the periodic signed audit checkpoint, the daily CA
 * expiry watch and the notification sweep. Safe to call from every worker start: creation
 * is idempotent and overlapping runs are skipped.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { scheduleIds, WORKFLOWS } from '../../workflows/api.ts';
import type { Config } from '../config/index.ts';

interface ScheduleSpec {
  scheduleId: string;
  workflowType: string;
  everyMs: number;
  args: unknown[];
  /** How late a missed run may still start. */
  catchupWindow: string;
  /** Trigger it once now (a fresh CA publishes its first CRL right away). */
  triggerNow: boolean;
}

/** Ensures the schedule exists with this interval (created, or updated when the configured interval changed). */
async function ensureSchedule(client: Client, config: Pick<Config, 'temporal'>, s: ScheduleSpec) {
  try {
    await client.schedule.create({
      scheduleId: s.scheduleId,
      spec: { intervals: [{ every: s.everyMs }] },
      action: { type: 'startWorkflow', workflowType: s.workflowType, taskQueue: config.temporal.taskQueue, args: s.args },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: s.catchupWindow },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    const handle = client.schedule.getHandle(s.scheduleId);
    const current = (await handle.describe()).spec.intervals ?? [];
    if (current.length !== 1 || current[0]!.every !== s.everyMs) {
      await handle.update((previous) => ({ ...previous, spec: { intervals: [{ every: s.everyMs }] } }));
    }
  }
  if (s.triggerNow) await client.schedule.getHandle(s.scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}

export async function ensureSchedules(client: Client, config: Pick<Config, 'temporal' | 'audit' | 'notifications'>): Promise<void> {
  const queue = config.temporal.taskQueue;
  await ensureSchedule(client, config, {
    scheduleId: scheduleIds.revocationRefresh(queue),
    workflowType: WORKFLOWS.crl.type,
    everyMs: 3600_000,
    args: [{}],
    catchupWindow: '1 hour',
    triggerNow: true,
  });
  await ensureSchedule(client, config, {
    scheduleId: scheduleIds.auditCheckpoint(queue),
    workflowType: WORKFLOWS.auditCheckpoint.type,
    everyMs: config.audit.checkpointSeconds * 1000,
    args: [{}],
    catchupWindow: '1 hour',
    triggerNow: true,
  });
  // Daily; triggered at every worker start too, so a CA that expires too soon is in the audit log at once.
  await ensureSchedule(client, config, {
    scheduleId: scheduleIds.caExpiryWatch(queue),
    workflowType: WORKFLOWS.caExpiryWatch.type,
    everyMs: 86_400_000,
    args: [{}],
    catchupWindow: '1 hour',
    triggerNow: true,
  });
  // A sweep still running when the next is due is not doubled; missed ones are not made up.
  await ensureSchedule(client, config, {
    scheduleId: scheduleIds.notificationSweep(queue),
    workflowType: WORKFLOWS.notificationSweep.type,
    everyMs: config.notifications.intervalMinutes * 60_000,
    args: [],
    catchupWindow: '1 minute',
    triggerNow: false,
  });
}
