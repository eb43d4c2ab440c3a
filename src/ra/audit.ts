/**
 * Console workflows that run on the signing queue: a signed audit checkpoint on demand
 * (`certflow audit checkpoint`) and key recovery (console, Officer). Start, wait with a
 * deadline, turn a refusal back into its CaError.
 */
import { WORKFLOWS, type CheckpointResult, type KeyRecoveryInput, type RecoveredKey } from '../../workflows/api.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { unwrapWorkflowFailure, withDeadline } from '../temporal/client.ts';
import { startOrAttach, type RaTemporal } from './workflow.ts';

export async function checkpointAndWait(ra: RaTemporal, timeoutMs: number, requester = 'operator'): Promise<CheckpointResult> {
  const handle = await startOrAttach(ra, WORKFLOWS.auditCheckpoint, {
    key: [newId()],
    args: [{ requester }],
    search: { protocol: 'operator', state: 'audit-checkpoint' },
  });
  return withDeadline(`workflow ${handle.workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `no worker signed the checkpoint within ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on "${ra.config.temporal.signingTaskQueue}"?`,
      );
    }
    throw unwrapWorkflowFailure(e);
  });
}

/** The archived key of a certificate, encrypted by the worker to the console's one-time key. */
export async function recoverKey(
  ra: RaTemporal,
  input: KeyRecoveryInput,
  timeoutMs: number,
): Promise<RecoveredKey & { workflowId: string }> {
  const handle = await startOrAttach(ra, WORKFLOWS.keyRecovery, {
    key: [newId()],
    args: [input],
    search: { protocol: 'operator', state: 'key-recovery', account: input.requester },
  });
  const r = await withDeadline(`workflow ${handle.workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    throw CaError.is(e, 'unavailable')
      ? new CaError('unavailable', `no worker answered within ${timeoutMs / 1000} s (workflow ${handle.workflowId})`)
      : unwrapWorkflowFailure(e);
  });
  return { ...r, workflowId: handle.workflowId };
}
