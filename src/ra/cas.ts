/**
 * The CA lifecycle's requests (CLI, admin API): start the operation's workflow
 * (workflows/ca.ts) through startOrAttach and wait for its result with a deadline. Starting
 * an operation that is already running attaches to it (a CLI interrupted and run again
 * waits for the same operation); a creation or revocation that ended well is not done twice.
 */
import {
  WORKFLOWS,
  type CaCreateInput,
  type CaImportInput,
  type CaOperationResult,
  type CaRevokeInput,
  type CaRolloverInput,
} from '../../workflows/api.ts';
import { CaError, ERROR_CONTRACT, type ErrorKind } from '../core/errors.ts';
import { isApplicationFailure, temporalClientSdk, withDeadline } from '../temporal/client.ts';
import { startOrAttach, type RaTemporal } from './workflow.ts';

export type CaOperation =
  | { op: 'create'; input: CaCreateInput }
  | { op: 'import'; input: CaImportInput }
  | { op: 'rollover'; input: CaRolloverInput }
  | { op: 'revoke'; input: CaRevokeInput };

/** The CaError a failed CA workflow carries (its activity's kind and message). */
function caFailure(e: unknown): unknown {
  let cause: unknown = e;
  while (cause instanceof Error && cause.cause) cause = cause.cause;
  if (isApplicationFailure(cause) && cause.type && cause.type in ERROR_CONTRACT) {
    const rule = (cause.details?.[0] as { rule?: string } | undefined)?.rule;
    return new CaError(cause.type as ErrorKind, cause.message, rule ? { rule } : {});
  }
  return e;
}

/** Starts (or attaches to) the operation's workflow. */
function start(ra: RaTemporal, operation: CaOperation) {
  const search = { protocol: 'operator', state: `ca-${operation.op}`, account: operation.input.requester } as const;
  const key: [string] = [operation.input.name];
  switch (operation.op) {
    case 'create':
      // A failed creation (a refused parameter, a key store away) may be tried again; a CA is created once.
      return startOrAttach(ra, WORKFLOWS.caCreate, { key, args: [operation.input], search, ifClosed: 'rerun-failed' });
    case 'import':
      return startOrAttach(ra, WORKFLOWS.caImport, { key, args: [operation.input], search, ifClosed: 'rerun' });
    case 'rollover':
      return startOrAttach(ra, WORKFLOWS.caRollover, { key, args: [operation.input], search, ifClosed: 'rerun' });
    case 'revoke':
      return startOrAttach(ra, WORKFLOWS.caRevoke, { key, args: [operation.input], search, ifClosed: 'rerun-failed' });
  }
}

/** Runs a CA operation through its workflow and returns what it did. */
export async function runCaOperation(
  ra: RaTemporal,
  operation: CaOperation,
  timeoutMs: number,
): Promise<CaOperationResult & { workflowId: string }> {
  let handle;
  try {
    handle = await start(ra, operation);
  } catch (e) {
    if (!(e instanceof (await temporalClientSdk()).WorkflowExecutionAlreadyStartedError)) throw e;
    throw new CaError('conflict', `CA "${operation.input.name}": the ${operation.op} was done already (workflow ${e.workflowId})`, {
      rule: `ca.${operation.op}.done`,
    });
  }
  const h = handle;
  try {
    const result = await withDeadline(`workflow ${h.workflowId}`, timeoutMs, () => h.result() as Promise<CaOperationResult>);
    return { ...result, workflowId: h.workflowId };
  } catch (e) {
    if (CaError.is(e, 'unavailable') && /did not answer/.test((e as Error).message)) {
      throw new CaError(
        'unavailable',
        `no result after ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on task queue "${ra.config.temporal.signingTaskQueue}"? ` +
          `Workflow ${h.workflowId} goes on and completes when one runs (\`certflow ca list\` shows the CA).`,
      );
    }
    throw caFailure(e);
  }
}
