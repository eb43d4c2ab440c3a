/** The audit checkpoint schedule, and a checkpoint on demand (`certflow audit checkpoint`). */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { CheckpointResult } from '../../activities/types.ts';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { unwrapWorkflowFailure, withDeadline } from './client.ts';
import { searchAttributes } from './search-attributes.ts';

export function auditScheduleId(config: Pick<Config, 'temporal'>): string {
  return `${config.temporal.taskQueue}-audit-checkpoint`;
}

/**
 * Ensures the checkpoint schedule exists with the configured interval (created, or updated
 * when audit.checkpointMinutes changed) and triggers it once now.
 */
export async function ensureAuditSchedule(client: Client, config: Pick<Config, 'temporal' | 'audit'>): Promise<void> {
  const scheduleId = auditScheduleId(config);
  const everyMs = config.audit.checkpointSeconds * 1000;
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: everyMs }] },
      action: { type: 'startWorkflow', workflowType: 'auditCheckpointWorkflow', taskQueue: config.temporal.taskQueue, args: [{}] },
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

export async function checkpointAndWait(
  client: Client,
  config: Pick<Config, 'temporal'>,
  timeoutMs: number,
  requester = 'operator',
): Promise<CheckpointResult> {
  const workflowId = `audit-checkpoint-${newId()}`;
  const handle = await client.workflow.start('auditCheckpointWorkflow', {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [{ requester }],
    typedSearchAttributes: searchAttributes({ protocol: 'operator', state: 'audit-checkpoint' }),
  });
  return withDeadline(`workflow ${workflowId}`, timeoutMs, () => handle.result() as Promise<CheckpointResult>).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `no worker signed the checkpoint within ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on "${config.temporal.signingTaskQueue}"?`,
      );
    }
    throw unwrapWorkflowFailure(e);
  });
}
