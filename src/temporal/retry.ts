/**
 * An operator's retry of a stuck request: the one function behind `certflow requests retry`,
 * `certflow orders retry`, the console's retry buttons and the admin API's retry routes.
 * Signing that a server fault holds up (an enrollment `stalled`, an ACME order processing)
 * takes the workflow's `retry` Update: it signs again at once. An ACME order whose challenge
 * validation waits for its next attempt takes `retryValidation` (src/temporal/orders.ts).
 */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { retryUpdate } from '../../workflows/index.ts';
import { CaError } from '../core/errors.ts';
import { workflowIds } from '../core/ids.ts';
import type { Queryable } from '../db/pool.ts';
import * as orders from '../db/repos/acme-orders.ts';
import * as requests from '../db/repos/requests.ts';
import { withDeadline } from './client.ts';
import { retryOrderValidation } from './orders.ts';

export interface RetryResult {
  kind: 'order' | 'request';
  id: string;
  /** What happens now, in words. */
  message: string;
  /** ACME: the authorizations validated again. */
  authorizations?: string[];
}

/**
 * Retries request `id` (an EST/CMP/operator request, or else an ACME order; `kind` narrows
 * the lookup). Refused with notFound / conflict (the workflow's reason) when there is nothing
 * to retry. `by`: the audit actor (operator:<user>, user:<name>).
 */
export async function retryRequest(
  client: Client,
  db: Queryable,
  ref: { id: string; kind?: 'order' | 'request' },
  by: string,
): Promise<RetryResult> {
  const { id } = ref;
  const request = ref.kind === 'order' ? null : await requests.get(db, id);
  if (request) {
    if (request.state !== 'stalled')
      throw new CaError('conflict', `request ${id} is ${request.state}, not stalled`, { rule: 'request.retry' });
    await signAgain(client, request.workflowId, by);
    return { kind: 'request', id, message: `request ${id}: signing again now` };
  }
  const order = ref.kind === 'request' ? null : await orders.getOrder(db, id);
  if (!order) {
    throw new CaError('notFound', `no ${ref.kind ?? 'request or order'} ${id} (see \`certflow requests list --stuck\`)`, {
      rule: 'request.unknown',
    });
  }
  if (order.status === 'processing') {
    await signAgain(client, workflowIds.acmeOrder(id), by);
    return { kind: 'order', id, message: `order ${id}: signing again now` };
  }
  const authorizations = await retryOrderValidation(client, db, id);
  return { kind: 'order', id, message: `order ${id}: validating ${authorizations.length} authorization(s) again now`, authorizations };
}

async function signAgain(client: Client, workflowId: string, by: string): Promise<void> {
  try {
    await withDeadline(`workflow ${workflowId}`, 15_000, () =>
      client.workflow.getHandle(workflowId).executeUpdate(retryUpdate, { args: [{ by }] }),
    );
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw new CaError('conflict', (e.cause as Error | undefined)?.message ?? e.message);
    throw e;
  }
}
