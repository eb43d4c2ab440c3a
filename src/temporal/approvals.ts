/** Operator decisions on enrollments that wait for approval (the workflow's `decide` Update). */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { decideUpdate, type Decision } from '../../workflows/index.ts';
import { CaError } from '../core/errors.ts';
import { withDeadline } from './client.ts';

export async function decide(client: Client, workflowId: string, requestId: string, decision: Decision, timeoutMs = 15_000): Promise<string> {
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
