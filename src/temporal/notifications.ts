/**
 * The client side of notifications: the sweep's Temporal Schedule, a sweep now, a test
 * through every target of a channel, and the retry of a dead-lettered delivery. Used by the
 * worker (schedule), the CLI (`certflow notifications ...`) and the console.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { DeliveryOutcome } from '../../activities/notifications.ts';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import * as repo from '../db/repos/notifications.ts';
import { unwrapWorkflowFailure, withDeadline } from './client.ts';
import { searchAttributes } from './search-attributes.ts';

export function notificationScheduleId(config: Pick<Config, 'temporal'>): string {
  return `${config.temporal.taskQueue}-notifications`;
}

/** The sweep's schedule, every notifications.intervalMinutes (created, or updated when the interval changed). */
export async function ensureNotificationSchedule(client: Client, config: Pick<Config, 'temporal' | 'notifications'>): Promise<void> {
  const scheduleId = notificationScheduleId(config);
  const every = `${config.notifications.intervalMinutes} minutes`;
  const spec = { intervals: [{ every }] };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action: { type: 'startWorkflow', workflowType: 'notificationSweepWorkflow', taskQueue: config.temporal.taskQueue, args: [] },
      // A sweep still running when the next is due is not doubled; missed ones are not made up.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    });
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    const handle = client.schedule.getHandle(scheduleId);
    const current = await handle.describe();
    const interval = current.spec.intervals?.[0]?.every;
    if (interval !== config.notifications.intervalMinutes * 60_000) await handle.update((s) => ({ ...s, spec }));
  }
}

async function waitFor<T>(what: string, timeoutMs: number, result: () => Promise<unknown>, config: Pick<Config, 'temporal'>): Promise<T> {
  return withDeadline(what, timeoutMs, () => result() as Promise<T>).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `${what} did not finish within ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on "${config.temporal.taskQueue}"?`,
      );
    }
    throw unwrapWorkflowFailure(e);
  });
}

/** Sweeps now (`certflow notifications sweep`): what it found and started. */
export async function sweepAndWait(
  client: Client,
  config: Pick<Config, 'temporal'>,
  timeoutMs: number,
): Promise<{ created: number; started: number }> {
  const handle = await client.workflow.start('notificationSweepWorkflow', {
    workflowId: `notification-sweep-${newId()}`,
    taskQueue: config.temporal.taskQueue,
    args: [],
    typedSearchAttributes: searchAttributes({ protocol: 'operator', state: 'notification-sweep' }),
  });
  return waitFor(`the notification sweep ${handle.workflowId}`, timeoutMs, () => handle.result(), config);
}

/** One test notice through every target of `channel`; the outcome of each. */
export async function testAndWait(
  client: Client,
  config: Pick<Config, 'temporal'>,
  channel: 'email' | 'webhook',
  requester: string,
  timeoutMs: number,
): Promise<DeliveryOutcome[]> {
  const handle = await client.workflow.start('notificationTestWorkflow', {
    workflowId: `notification-test-${newId()}`,
    taskQueue: config.temporal.taskQueue,
    args: [{ channel, requester }],
    typedSearchAttributes: searchAttributes({ protocol: 'operator', state: 'notification-test' }),
  });
  return waitFor(`the notification test ${handle.workflowId}`, timeoutMs, () => handle.result(), config);
}

/**
 * A dead-lettered delivery tried again, by an operator: pending again, with a delivery
 * workflow of its own (the same retries as a new one); returns its workflow id.
 */
export async function retryDelivery(
  client: Client,
  pool: Pool,
  config: Pick<Config, 'temporal' | 'notifications'>,
  deliveryId: string,
): Promise<{ workflowId: string }> {
  const found = await repo.getDelivery(pool, deliveryId);
  if (!found) throw new CaError('notFound', `no notification delivery ${deliveryId}`, { rule: 'notifications.delivery' });
  if (!(await repo.requeue(pool, deliveryId))) {
    throw new CaError('conflict', `delivery ${deliveryId} is ${found.delivery.status}, not dead-lettered`, {
      rule: 'notifications.notDead',
    });
  }
  const handle = await client.workflow.start('notificationDeliveryWorkflow', {
    workflowId: `notify-${deliveryId}-retry-${found.delivery.attempts}`,
    taskQueue: config.temporal.taskQueue,
    args: [{ deliveryId, retry: config.notifications.retry }],
  });
  return { workflowId: handle.workflowId };
}
