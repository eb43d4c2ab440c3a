/**
 * Notifications (issue 20). The sweep, started by a Temporal Schedule (`<queue>-notifications`,
 * every notifications.intervalMinutes) or by `certflow notifications sweep`, records what is
 * worth telling — once: each notice has a fixed id — and starts one delivery workflow per
 * delivery with a fixed id (`notify-<delivery id>`), so a sweep that runs again after a
 * crash starts nothing twice. A delivery retries with backoff (notifications.retry); after
 * the last attempt it is dead-lettered. `certflow notifications test` runs the test
 * workflow: one test notice to every target of a channel, waiting for each outcome.
 */
import {
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  startChild,
  executeChild,
  ActivityFailure,
  ApplicationFailure,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/common';
import { PERMANENT_FAILURE, type NotificationActivities } from '../activities/types.ts';
import { WORKFLOWS, type DeliveryInput, type DeliveryOutcome, type DeliveryRetry, type SweepOutcome, type TestNoticeInput } from './api.ts';

const { collectNotices, createTestNotice } = proxyActivities<NotificationActivities>({
  startToCloseTimeout: '5 minutes',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['config'],
  },
});

export async function notificationSweepWorkflow(): Promise<SweepOutcome> {
  const sweep = await collectNotices();
  let started = 0;
  for (const deliveryId of sweep.pending) {
    try {
      await startChild(notificationDeliveryWorkflow, {
        workflowId: WORKFLOWS.notificationDelivery.id(deliveryId),
        args: [{ deliveryId, retry: sweep.retry }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
      started++;
    } catch (e) {
      // Running (or done) since an earlier sweep: that one delivers it.
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    }
  }
  setCurrentDetails(`${sweep.created.length} new notices; ${started} deliveries started`);
  return { created: sweep.created.length, started };
}

export async function notificationDeliveryWorkflow(input: DeliveryInput): Promise<DeliveryOutcome> {
  const { deliverNotice, deadLetter } = proxyActivities<NotificationActivities>({
    startToCloseTimeout: '2 minutes',
    // A worker killed while it sends is noticed within seconds; the attempt is made again.
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: `${input.retry.initialSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: `${input.retry.maxSeconds} seconds`,
      maximumAttempts: input.retry.maxAttempts,
      nonRetryableErrorTypes: [PERMANENT_FAILURE],
    },
  });
  try {
    const outcome = await deliverNotice(input.deliveryId);
    setCurrentDetails(`${outcome.status}: ${outcome.detail}`);
    return outcome;
  } catch (e) {
    const cause = e instanceof ActivityFailure && e.cause instanceof ApplicationFailure ? e.cause.message : String(e);
    const outcome = await deadLetter(input.deliveryId, cause);
    setCurrentDetails(`dead-lettered after its last attempt: ${cause}`);
    return outcome;
  }
}

/** One test notice to every target of `channel`; the outcome of each (fewer, quicker attempts than a real notice). */
export async function notificationTestWorkflow(input: TestNoticeInput): Promise<DeliveryOutcome[]> {
  const test = await createTestNotice(input);
  const retry: DeliveryRetry = { maxAttempts: Math.min(test.retry.maxAttempts, 2), initialSeconds: 1, maxSeconds: 1 };
  return Promise.all(
    test.deliveries.map((deliveryId) =>
      executeChild(notificationDeliveryWorkflow, {
        workflowId: WORKFLOWS.notificationDelivery.id(deliveryId),
        args: [{ deliveryId, retry }],
      }),
    ),
  );
}
