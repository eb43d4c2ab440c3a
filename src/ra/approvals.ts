/**
 * Operator decisions on requests that wait (enrollments and CMP transactions: the
 * workflow's `decide` Update), and the retry of a stuck request (`retry`, `retryValidation`).
 * The CLI, the console and the admin API share these.
 */
import type { Pool } from 'pg';
import { decideUpdate, retryUpdate, WORKFLOWS, type Decision } from '../../workflows/api.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as orders from '../db/repos/acme-orders.ts';
import * as requests from '../db/repos/requests.ts';
import { describeRequest } from '../pki/describe.ts';
import { retryOrderValidation } from './acme.ts';
import { executeUpdate, refusal, type RaTemporal } from './workflow.ts';

/**
 * The requests that wait for an operator, as the CLI and the console list them: who asked,
 * and what a decision would sign — subject, every subjectAltName, key type and profile.
 */
export async function awaitingApproval(db: Queryable, limit?: number) {
  const rows = await requests.list(db, { state: 'awaiting-approval', limit });
  return rows.map((r) => ({
    id: r.id,
    protocol: r.protocol,
    label: r.label,
    kind: r.kind,
    requester: r.requester,
    profile: r.profile,
    ...describeRequest(r.csrDer),
    createdAt: r.createdAt,
    workflowId: r.workflowId,
  }));
}

async function awaitingRequest(db: Queryable, id: string) {
  const row = await requests.get(db, id);
  if (!row) throw new CaError('notFound', `no request ${id}`, { rule: 'request.unknown' });
  if (row.state !== 'awaiting-approval')
    throw new CaError('conflict', `request ${id} is ${row.state}, not awaiting approval`, { rule: 'request.state' });
  return row;
}

/** An Update the workflow refused is a 'conflict' with its reason. */
async function update<T>(workflowId: string, timeoutMs: number, fn: () => Promise<T>, noWorker = true): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const refused = await refusal(e);
    if (refused !== undefined) throw new CaError('conflict', refused);
    if (noWorker && CaError.is(e, 'unavailable')) {
      throw new CaError('unavailable', `no worker answered for ${workflowId} within ${timeoutMs / 1000} s; is a certflow worker running?`);
    }
    throw e;
  }
}

/** Approves or rejects a request; refused (notFound, conflict) unless it waits for approval. Returns its new state. */
export async function decideRequest(ra: RaTemporal & { pool: Pool }, id: string, decision: Decision, timeoutMs = 15_000): Promise<string> {
  const row = await awaitingRequest(ra.pool, id);
  // The update id makes a retried CLI call (or a double click) one decision, not two.
  const result = await update(row.workflowId, timeoutMs, () =>
    executeUpdate(ra, row.workflowId, decideUpdate, { args: [decision], updateId: `decide-${id}`, deadlineMs: timeoutMs }),
  );
  return result.state;
}

export interface RetryResult {
  kind: 'order' | 'request';
  id: string;
  /** What happens now, in words. */
  message: string;
  /** ACME: the authorizations validated again. */
  authorizations?: string[];
}

/**
 * An operator's retry of a stuck request: the one function behind `certflow requests retry`,
 * `certflow orders retry`, the console's retry buttons and the admin API's retry routes.
 * Signing that a server fault holds up (an enrollment `stalled`, an ACME order processing)
 * takes the workflow's `retry` Update: it signs again at once. An ACME order whose challenge
 * validation waits for its next attempt takes `retryValidation` (retryOrderValidation).
 * Retries request `id` (an EST/CMP/operator request, or else an ACME order; `kind` narrows
 * the lookup). Refused with notFound / conflict (the workflow's reason) when there is nothing
 * to retry. `by`: the audit actor (operator:<user>, user:<name>).
 */
export async function retryRequest(
  ra: Pick<RaTemporal, 'temporal'>,
  db: Queryable,
  ref: { id: string; kind?: 'order' | 'request' },
  by: string,
): Promise<RetryResult> {
  const { id } = ref;
  const request = ref.kind === 'order' ? null : await requests.get(db, id);
  if (request) {
    if (request.state !== 'stalled')
      throw new CaError('conflict', `request ${id} is ${request.state}, not stalled`, { rule: 'request.retry' });
    await signAgain(ra, request.workflowId, by);
    return { kind: 'request', id, message: `request ${id}: signing again now` };
  }
  const order = ref.kind === 'request' ? null : await orders.getOrder(db, id);
  if (!order) {
    throw new CaError('notFound', `no ${ref.kind ?? 'request or order'} ${id} (see \`certflow requests list --stuck\`)`, {
      rule: 'request.unknown',
    });
  }
  if (order.status === 'processing') {
    await signAgain(ra, WORKFLOWS.acmeOrder.id(id), by);
    return { kind: 'order', id, message: `order ${id}: signing again now` };
  }
  const authorizations = await retryOrderValidation(ra, db, id);
  return { kind: 'order', id, message: `order ${id}: validating ${authorizations.length} authorization(s) again now`, authorizations };
}

async function signAgain(ra: Pick<RaTemporal, 'temporal'>, workflowId: string, by: string): Promise<void> {
  await update(workflowId, 15_000, () => executeUpdate(ra, workflowId, retryUpdate, { args: [{ by }], deadlineMs: 15_000 }), false);
}
