/** Operator decisions on enrollments that wait for approval (the workflow's `decide` Update). */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { decideUpdate, type Decision } from '../../workflows/index.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as requests from '../db/repos/requests.ts';
import { describeRequest } from '../cli/describe.ts';
import { withDeadline } from './client.ts';

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

/** Approves or rejects a request; refused (notFound, conflict) unless it waits for approval. Returns its new state. */
export async function decideRequest(db: Queryable, client: Client, id: string, decision: Decision): Promise<string> {
  const row = await requests.get(db, id);
  if (!row) throw new CaError('notFound', `no request ${id}`, { rule: 'request.unknown' });
  if (row.state !== 'awaiting-approval')
    throw new CaError('conflict', `request ${id} is ${row.state}, not awaiting approval`, { rule: 'request.state' });
  return decide(client, row.workflowId, id, decision);
}

export async function decide(
  client: Client,
  workflowId: string,
  requestId: string,
  decision: Decision,
  timeoutMs = 15_000,
): Promise<string> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    // The update id makes a retried CLI call (or a double click) one decision, not two.
    const result = await withDeadline(`workflow ${workflowId}`, timeoutMs, () =>
      handle.executeUpdate(decideUpdate, { args: [decision], updateId: `decide-${requestId}` }),
    );
    return result.state;
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) {
      throw new CaError('conflict', (e.cause as Error | undefined)?.message ?? e.message);
    }
    if (CaError.is(e, 'unavailable')) {
      throw new CaError('unavailable', `no worker answered for ${workflowId} within ${timeoutMs / 1000} s; is a certflow worker running?`);
    }
    throw e;
  }
}
