/**
 * Front-end side of an issuance: starts (or re-attaches to) the enrollment workflow of a
 * request and waits for its result with a deadline. Used by `certflow cert issue` and by
 * the server for its own TLS certificate; EST and CMP build on the same path.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { workflowIds } from '../core/ids.ts';
import type { EnrollmentInput, EnrollmentResult } from '../../workflows/index.ts';
import { withDeadline } from './client.ts';
import { searchAttributes } from './search-attributes.ts';

export interface IssueRequest extends EnrollmentInput {}

type IssuanceConfig = Pick<Config, 'temporal'> & Partial<Pick<Config, 'issuance'>>;

/**
 * Starts the request's workflow, or finds the running one. A Temporal that does not answer
 * within `deadlineMs` is 'unavailable' (the request may or may not have started: the same
 * request id finds it next time).
 */
export async function startIssuance(client: Client, config: IssuanceConfig, req: IssueRequest, deadlineMs = 10_000) {
  const workflowId = req.protocol === 'operator' ? workflowIds.operatorIssue(req.requestId) : `${req.protocol}-${req.requestId}`;
  const input: IssueRequest = {
    ...req,
    faultRetrySeconds:
      req.faultRetrySeconds ??
      (config.issuance && { initial: config.issuance.faultRetryInitialSeconds, max: config.issuance.faultRetryMaxSeconds }),
  };
  try {
    return await withDeadline(`Temporal (starting ${workflowId})`, deadlineMs, (signal) =>
      client.withAbortSignal(signal, () => startWorkflow(client, config, workflowId, input)),
    );
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) return client.workflow.getHandle(workflowId);
    throw e;
  }
}

function startWorkflow(client: Client, config: IssuanceConfig, workflowId: string, req: IssueRequest) {
  return client.workflow.start('enrollmentWorkflow', {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [req],
    // A request id names one request forever: never start a second workflow for it.
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: searchAttributes({ protocol: req.protocol, state: 'pending', account: req.requester }),
  });
}

/**
 * Issues through the workflow and waits up to `timeoutMs` for the result. When no worker
 * answers in time the request stays queued in Temporal and completes once a worker runs.
 */
export async function issueAndWait(
  client: Client,
  config: IssuanceConfig,
  req: IssueRequest,
  timeoutMs: number,
): Promise<EnrollmentResult & { workflowId: string }> {
  const handle = await startIssuance(client, config, req);
  const result = await withDeadline(`the issuance workflow ${handle.workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `no certificate after ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on task queue ` +
          `"${config.temporal.taskQueue}-signing"? The request stays queued as workflow ${handle.workflowId} and completes when one runs.`,
      );
    }
    throw e;
  });
  return { ...(result as EnrollmentResult), workflowId: handle.workflowId };
}
