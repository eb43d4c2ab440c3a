/** The audit checkpoint schedule, and a checkpoint on demand (`certflow audit checkpoint`). */
import type { Client } from '@temporalio/client';
import { ensureSchedule } from './schedules.ts';
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
  await ensureSchedule(client, config, {
    scheduleId: auditScheduleId(config),
    everyMs: config.audit.checkpointSeconds * 1000,
    workflowType: 'auditCheckpointWorkflow',
    args: [{}],
  });
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
