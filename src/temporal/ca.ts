/**
 * Front-end side of the CA lifecycle (CLI, admin API): start the operation's workflow and
 * wait for its result with a deadline. Starting an operation that is already running
 * attaches to it (a CLI interrupted and run again waits for the same operation).
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApplicationFailure, WorkflowIdReusePolicy } from '@temporalio/common';
import type { CaCreateInput, CaImportInput, CaOperationResult, CaRevokeInput, CaRolloverInput } from '../../activities/types.ts';
import type { Config } from '../config/index.ts';
import { CaError, ERROR_CONTRACT, type ErrorKind } from '../core/errors.ts';
import { workflowIds } from '../core/ids.ts';
import { withDeadline } from './client.ts';
import { searchAttributes } from './search-attributes.ts';

export type CaOperation =
  | { op: 'create'; input: CaCreateInput }
  | { op: 'import'; input: CaImportInput }
  | { op: 'rollover'; input: CaRolloverInput }
  | { op: 'revoke'; input: CaRevokeInput };

const WORKFLOWS = {
  create: { type: 'caCreateWorkflow', id: workflowIds.caCreate, reuse: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY },
  import: { type: 'caImportWorkflow', id: workflowIds.caImport, reuse: WorkflowIdReusePolicy.ALLOW_DUPLICATE },
  rollover: { type: 'caRolloverWorkflow', id: workflowIds.caRollover, reuse: WorkflowIdReusePolicy.ALLOW_DUPLICATE },
  revoke: { type: 'caRevokeWorkflow', id: workflowIds.caRevoke, reuse: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY },
} as const;

/** The CaError a failed CA workflow carries (its activity's kind and message). */
function caFailure(e: unknown): unknown {
  let cause: unknown = e;
  while (cause instanceof Error && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type && cause.type in ERROR_CONTRACT) {
    const rule = (cause.details?.[0] as { rule?: string } | undefined)?.rule;
    return new CaError(cause.type as ErrorKind, cause.message, rule ? { rule } : {});
  }
  return e;
}

/** Runs a CA operation through its workflow and returns what it did. */
export async function runCaOperation(
  client: Client,
  config: Pick<Config, 'temporal'>,
  operation: CaOperation,
  timeoutMs: number,
): Promise<CaOperationResult & { workflowId: string }> {
  const w = WORKFLOWS[operation.op];
  const workflowId = w.id(operation.input.name);
  let handle;
  try {
    handle = await client.workflow.start(w.type, {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [operation.input],
      workflowIdReusePolicy: w.reuse,
      typedSearchAttributes: searchAttributes({ protocol: 'operator', state: `ca-${operation.op}`, account: operation.input.requester }),
    });
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    handle = client.workflow.getHandle(workflowId);
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      throw new CaError('conflict', `CA "${operation.input.name}": the ${operation.op} was done already (workflow ${workflowId})`, {
        rule: `ca.${operation.op}.done`,
      });
    }
  }
  const h = handle;
  try {
    const result = await withDeadline(`workflow ${workflowId}`, timeoutMs, () => h.result() as Promise<CaOperationResult>);
    return { ...result, workflowId };
  } catch (e) {
    if (CaError.is(e, 'unavailable') && /did not answer/.test((e as Error).message)) {
      throw new CaError(
        'unavailable',
        `no result after ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on task queue "${config.temporal.signingTaskQueue}"? ` +
          `Workflow ${workflowId} goes on and completes when one runs (\`certflow ca list\` shows the CA).`,
      );
    }
    throw caFailure(e);
  }
}
