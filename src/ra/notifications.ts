/**
 * Notifications on demand: a sweep now (`certflow notifications sweep`), a test through
 * every target of a channel (CLI, console "send test"), and an operator's retry of a
 * dead-lettered delivery. The sweep's schedule is the worker's (src/temporal/schedules.ts).
 */
import type { Pool } from 'pg';
import { WORKFLOWS, type DeliveryOutcome, type SweepOutcome, type TestNoticeInput } from '../../workflows/api.ts';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import * as repo from '../db/repos/notifications.ts';
import { unwrapWorkflowFailure, withDeadline } from '../temporal/client.ts';
import { startOrAttach, type RaTemporal } from './workflow.ts';

async function waitFor<T>(ra: RaTemporal, what: string, timeoutMs: number, result: () => Promise<T>): Promise<T> {
  return withDeadline(what, timeoutMs, result).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `${what} did not finish within ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on "${ra.config.temporal.taskQueue}"?`,
      );
    }
    throw unwrapWorkflowFailure(e);
  });
}

/** Sweeps now: what it found and started. */
export async function sweepAndWait(ra: RaTemporal, timeoutMs: number): Promise<SweepOutcome> {
  const handle = await startOrAttach(ra, WORKFLOWS.notificationSweep, {
    key: [newId()],
    args: [],
    search: { protocol: 'operator', state: 'notification-sweep' },
  });
  return waitFor(ra, `the notification sweep ${handle.workflowId}`, timeoutMs, () => handle.result());
}

/** One test notice through every target of `input.channel`; the outcome of each. */
export async function testAndWait(ra: RaTemporal, input: TestNoticeInput, timeoutMs: number): Promise<DeliveryOutcome[]> {
  const handle = await startOrAttach(ra, WORKFLOWS.notificationTest, {
    key: [newId()],
    args: [input],
    search: { protocol: 'operator', state: 'notification-test' },
  });
  return waitFor(ra, `the notification test ${handle.workflowId}`, timeoutMs, () => handle.result());
}

/**
 * A dead-lettered delivery tried again, by an operator: pending again, with a delivery
 * workflow of its own (the same retries as a new one); returns its workflow id.
 */
export async function retryDelivery(
  ra: RaTemporal & { pool: Pool; config: Pick<Config, 'temporal' | 'notifications'> },
  deliveryId: string,
): Promise<{ workflowId: string }> {
  const found = await repo.getDelivery(ra.pool, deliveryId);
  if (!found) throw new CaError('notFound', `no notification delivery ${deliveryId}`, { rule: 'notifications.delivery' });
  if (!(await repo.requeue(ra.pool, deliveryId))) {
    throw new CaError('conflict', `delivery ${deliveryId} is ${found.delivery.status}, not dead-lettered`, {
      rule: 'notifications.notDead',
    });
  }
  const handle = await startOrAttach(ra, WORKFLOWS.notificationDelivery, {
    key: [deliveryId, found.delivery.attempts],
    args: [{ deliveryId, retry: ra.config.notifications.retry }],
    search: {},
  });
  return { workflowId: handle.workflowId };
}
