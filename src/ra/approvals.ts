/**
 * Operator decisions on requests that wait (enrollments and CMP transactions: the
 * workflow's `decide` Update), and the "sign now" of a request stalled by a server fault
 * (`retry`). The CLI and the console share these.
 */
import type { Pool } from 'pg';
import { decideUpdate, retryUpdate, type Decision } from '../../workflows/api.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as requests from '../db/repos/requests.ts';
import { describeDn } from '../pki/describe.ts';
import { executeUpdate, refusal, type RaTemporal } from './workflow.ts';

/** The requests that wait for an operator, as the CLI and the console list them. */
export async function awaitingApproval(db: Queryable, limit?: number) {
  const rows = await requests.list(db, { state: 'awaiting-approval', limit });
  return rows.map((r) => ({
    id: r.id,
    protocol: r.protocol,
    label: r.label,
    kind: r.kind,
    requester: r.requester,
    profile: r.profile,
    subject: describeDn(r.csrDer),
    createdAt: r.createdAt,
    workflowId: r.workflowId,
  }));
}

async function request(db: Queryable, id: string, state: requests.RequestState, hint = '') {
  const row = await requests.get(db, id);
  if (!row) throw new CaError('notFound', `no request ${id}${hint}`, { rule: 'request.unknown' });
  if (row.state !== state)
    throw new CaError('conflict', `request ${id} is ${row.state}, not ${state === 'stalled' ? 'stalled' : 'awaiting approval'}`, {
      rule: 'request.state',
    });
  return row;
}

/** An Update the workflow refused is a 'conflict' with its reason. */
async function update<T>(workflowId: string, timeoutMs: number, fn: () => Promise<T>, noWorker = true): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const refused = refusal(e);
    if (refused !== undefined) throw new CaError('conflict', refused);
    if (noWorker && CaError.is(e, 'unavailable')) {
      throw new CaError('unavailable', `no worker answered for ${workflowId} within ${timeoutMs / 1000} s; is a certflow worker running?`);
    }
    throw e;
  }
}

/** Approves or rejects a request; refused (notFound, conflict) unless it waits for approval. Returns its new state. */
export async function decideRequest(ra: RaTemporal & { pool: Pool }, id: string, decision: Decision, timeoutMs = 15_000): Promise<string> {
  const row = await request(ra.pool, id, 'awaiting-approval');
  // The update id makes a retried CLI call (or a double click) one decision, not two.
  const result = await update(row.workflowId, timeoutMs, () =>
    executeUpdate(ra, row.workflowId, decideUpdate, { args: [decision], updateId: `decide-${id}`, deadlineMs: timeoutMs }),
  );
  return result.state;
}

/** Signs a request stalled by a server fault now (after the fault was fixed). */
export async function retryStalledRequest(ra: RaTemporal & { pool: Pool }, id: string, by: string, timeoutMs = 15_000): Promise<void> {
  const row = await request(ra.pool, id, 'stalled', ' (see `certflow requests list --stuck`)');
  await update(
    row.workflowId,
    timeoutMs,
    () => executeUpdate(ra, row.workflowId, retryUpdate, { args: [{ by }], deadlineMs: timeoutMs }),
    false,
  );
}
