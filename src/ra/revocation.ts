/**
 * Revocation (`revoke-<serial>`: revoke, hold, release one certificate) and CRL renewal on
 * demand (`crl-<id>`): start the workflow, wait for its result with a deadline. ACME
 * revokeCert, CMP rr, the console and the CLI all come through here.
 */
import { WORKFLOWS, type RefreshInput, type RefreshResult, type StatusChangeInput, type StatusChangeResult } from '../../workflows/api.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { temporalClientSdk, unwrapWorkflowFailure, withDeadline } from '../temporal/client.ts';
import { startOrAttach, type RaTemporal } from './workflow.ts';

function noWorker(ra: RaTemporal, workflowId: string, ms: number): CaError {
  return new CaError(
    'unavailable',
    `no answer after ${Math.round(ms / 1000)} s: is a certflow worker running on task queue "${ra.config.temporal.signingTaskQueue}"? ` +
      `Workflow ${workflowId} stays queued and completes when one runs.`,
  );
}

export async function changeStatusAndWait(ra: RaTemporal, input: StatusChangeInput, timeoutMs: number): Promise<StatusChangeResult> {
  const workflowId = WORKFLOWS.revocation.id(input.serial);
  let handle;
  try {
    // The same certificate may be held, released and revoked over time: one id, reused
    // once the previous operation has finished, never two at once.
    handle = await startOrAttach(ra, WORKFLOWS.revocation, {
      key: [input.serial],
      args: [input],
      search: { protocol: 'operator', state: `${input.action}-pending`, account: input.requester },
      ifRunning: 'refuse',
      ifClosed: 'rerun',
    });
  } catch (e) {
    if (e instanceof (await temporalClientSdk()).WorkflowExecutionAlreadyStartedError) {
      throw new CaError('conflict', `another status change of ${input.serial} is in progress (workflow ${workflowId})`);
    }
    throw e;
  }
  return withDeadline(`workflow ${workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    throw CaError.is(e, 'unavailable') ? noWorker(ra, workflowId, timeoutMs) : unwrapWorkflowFailure(e);
  });
}

export async function refreshAndWait(ra: RaTemporal, input: RefreshInput, timeoutMs: number): Promise<RefreshResult> {
  const handle = await startOrAttach(ra, WORKFLOWS.crl, { key: [newId()], args: [input], search: { protocol: 'operator', state: 'crl' } });
  return withDeadline(`workflow ${handle.workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    throw CaError.is(e, 'unavailable') ? noWorker(ra, handle.workflowId, timeoutMs) : unwrapWorkflowFailure(e);
  });
}
