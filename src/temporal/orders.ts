/**
 * Operator actions on ACME orders, shared by `certflow orders retry|cancel` and the
 * console: Updates to the order's workflow (or, for authorizations that outlive an order,
 * the authorization's own workflow).
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { cancelOrderUpdate, retryValidationUpdate } from '../../workflows/index.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as orders from '../db/repos/acme-orders.ts';
import { withDeadline } from './client.ts';

/** An Update the workflow's validator refused is a 'conflict' with the validator's reason. */
async function updateResult<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw new CaError('conflict', (e.cause as Error | undefined)?.message ?? e.message);
    throw e;
  }
}

/** Validates the order's challenges that wait for their next retry now; returns the authorization ids. */
export async function retryOrderValidation(client: Client, db: Queryable, id: string): Promise<string[]> {
  const o = await orders.getOrder(db, id);
  if (!o) throw new CaError('notFound', `no order ${id}`, { rule: 'order.unknown' });
  const authzs = await orders.getAuthzs(db, o.authzIds);
  const validating = authzs.filter((a) => a.challenges.some((c) => c.status === 'processing'));
  if (!validating.length)
    throw new CaError('conflict', `order ${id} is ${o.status}: no challenge is being validated`, { rule: 'order.retry' });
  for (const a of validating) {
    // The order's workflow validates the authorizations it created; others
    // (pre-authorizations, those of an ended order) have a workflow of their own.
    const retry = (workflowId: string) =>
      withDeadline(`authorization ${a.id}`, 10_000, () =>
        client.workflow.getHandle(workflowId).executeUpdate(retryValidationUpdate, { args: [{ authzId: a.id }] }),
      );
    const byOrder = async () => {
      try {
        return a.ownerOrderId ? (await retry(`acme-order-${a.ownerOrderId}`), true) : false;
      } catch (e) {
        if (e instanceof WorkflowNotFoundError || e instanceof WorkflowUpdateFailedError) return false;
        throw e;
      }
    };
    if (!(await byOrder())) await updateResult(() => retry(`acme-authz-${a.id}`));
  }
  return validating.map((a) => a.id);
}

/** Makes an unfinished order invalid (the update id makes a repeated request one cancellation). */
export async function cancelOrder(client: Client, id: string, by: string, reason?: string): Promise<void> {
  const handle = client.workflow.getHandle(`acme-order-${id}`);
  await updateResult(() =>
    withDeadline(`order ${id}`, 10_000, () =>
      handle.executeUpdate(cancelOrderUpdate, { args: [{ by, reason }], updateId: `cancel-${id}` }),
    ),
  );
}
