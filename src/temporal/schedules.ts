/**
 * The worker's schedules (ids and workflow types from workflows/api.ts): the hourly
 * renewal of CRLs and OCSP responses, and the periodic signed audit checkpoint. Safe to
 * call from every worker start: creation is idempotent and overlapping runs are skipped.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { scheduleIds, WORKFLOWS } from '../../workflows/api.ts';
import type { Config } from '../config/index.ts';

/** Ensures the schedule exists and triggers it once now (a fresh CA publishes its first CRL right away). */
async function ensureSchedule(client: Client, config: Pick<Config, 'temporal'>, scheduleId: string, workflowType: string, every: string) {
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every }] },
      action: { type: 'startWorkflow', workflowType, taskQueue: config.temporal.taskQueue, args: [{}] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
  }
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}

export async function ensureSchedules(client: Client, config: Pick<Config, 'temporal' | 'audit'>): Promise<void> {
  const queue = config.temporal.taskQueue;
  await ensureSchedule(client, config, scheduleIds.revocationRefresh(queue), WORKFLOWS.crl.type, '1 hour');
  await ensureSchedule(
    client,
    config,
    scheduleIds.auditCheckpoint(queue),
    WORKFLOWS.auditCheckpoint.type,
    `${config.audit.checkpointSeconds} seconds`,
  );
}
