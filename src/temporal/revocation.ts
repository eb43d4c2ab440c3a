/** Front-end side of revocation and CRL renewal: start the workflow, wait with a deadline. */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { RefreshInput, RefreshResult, StatusChangeInput, StatusChangeResult } from '../../activities/types.ts';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId, workflowIds } from '../core/ids.ts';
import { unwrapWorkflowFailure, withDeadline } from './client.ts';
import { searchAttributes } from './search-attributes.ts';

function noWorker(config: Pick<Config, 'temporal'>, workflowId: string, ms: number): CaError {
  return new CaError(
    'unavailable',
    `no answer after ${Math.round(ms / 1000)} s: is a certflow worker running on task queue "${config.temporal.signingTaskQueue}"? ` +
      `Workflow ${workflowId} stays queued and completes when one runs.`,
  );
}

export async function changeStatusAndWait(
  client: Client,
  config: Pick<Config, 'temporal'>,
  input: StatusChangeInput,
  timeoutMs: number,
): Promise<StatusChangeResult> {
  const workflowId = workflowIds.revoke(input.serial);
  let handle;
  try {
    // The same certificate may be held, released and revoked over time: one id, reused
    // once the previous operation has finished, never two at once.
    handle = await client.workflow.start('revocationWorkflow', {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: searchAttributes({ protocol: 'operator', state: `${input.action}-pending`, account: input.requester }),
    });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CaError('conflict', `another status change of ${input.serial} is in progress (workflow ${workflowId})`);
    }
    throw e;
  }
  return withDeadline(`workflow ${workflowId}`, timeoutMs, () => handle.result() as Promise<StatusChangeResult>).catch((e: unknown) => {
    throw CaError.is(e, 'unavailable') ? noWorker(config, workflowId, timeoutMs) : unwrapWorkflowFailure(e);
  });
}

export async function refreshAndWait(
  client: Client,
  config: Pick<Config, 'temporal'>,
  input: RefreshInput,
  timeoutMs: number,
): Promise<RefreshResult> {
  const workflowId = `crl-${newId()}`;
  const handle = await client.workflow.start('crlWorkflow', {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [input],
    typedSearchAttributes: searchAttributes({ protocol: 'operator', state: 'crl' }),
  });
  return withDeadline(`workflow ${workflowId}`, timeoutMs, () => handle.result() as Promise<RefreshResult>).catch((e: unknown) => {
    throw CaError.is(e, 'unavailable') ? noWorker(config, workflowId, timeoutMs) : unwrapWorkflowFailure(e);
  });
}
