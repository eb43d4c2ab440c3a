/**
 * How the registration authority starts workflows and talks to them: one typed
 * start-or-attach over the definitions of workflows/api.ts (type name, id scheme,
 * signature), and Updates with a deadline. Every start of a request's workflow goes
 * through startOrAttach (or startOperation, its Update-with-Start form), so ids, the task
 * queue, the search attributes at start and the id policies are decided here once.
 */
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type UpdateDefinition, type Workflow } from '@temporalio/common';
import type { WorkflowDef, WorkflowOf } from '../../workflows/api.ts';
import type { Config } from '../config/index.ts';
import { withDeadline } from '../temporal/client.ts';
import { searchAttributes, type CertflowSearchValues } from '../temporal/search-attributes.ts';

/** What starting a workflow needs: the Temporal client and the task queues. */
export interface RaTemporal {
  temporal: Client;
  config: Pick<Config, 'temporal'>;
}

/** How long a start or an Update may take to be taken by Temporal before the caller answers 'unavailable'. */
export const WORKFLOW_DEADLINE_MS = 10_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any key tuple
type AnyDef = WorkflowDef<Workflow, any[]>;
type KeyOf<D> = D extends { readonly id: (...key: infer K) => string } ? K : never;

export interface Start<D extends AnyDef> {
  /** The parts of the workflow id, as the definition's `id` takes them. */
  key: KeyOf<D>;
  args: Parameters<WorkflowOf<D>>;
  /** Search attributes the run starts with (it upserts them as it goes). */
  search: CertflowSearchValues;
  /** A run with this id is running: attach to it (default) or refuse (WorkflowExecutionAlreadyStartedError). */
  ifRunning?: 'attach' | 'refuse';
  /**
   * A run with this id has ended: attach to it (default: one request, one run, ever), start
   * another run, or start another run only when the ended one failed (else
   * WorkflowExecutionAlreadyStartedError: the operation was done).
   */
  ifClosed?: 'attach' | 'rerun' | 'rerun-failed';
}

const REUSE = {
  attach: WorkflowIdReusePolicy.REJECT_DUPLICATE,
  rerun: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
  'rerun-failed': WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
} as const;

function startOptions<D extends AnyDef>(t: RaTemporal, def: D, s: Start<D>) {
  return {
    workflowId: def.id(...s.key),
    taskQueue: def.onSigningQueue ? t.config.temporal.signingTaskQueue : t.config.temporal.taskQueue,
    args: s.args,
    workflowIdConflictPolicy: s.ifRunning === 'refuse' ? WorkflowIdConflictPolicy.FAIL : WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: REUSE[s.ifClosed ?? 'attach'],
    typedSearchAttributes: searchAttributes(s.search),
  };
}

/**
 * Starts the workflow of a request, or attaches to the run that has its id (see Start for
 * the policies). A Temporal that does not take the start within `deadlineMs` is
 * 'unavailable': the request may or may not have started, and the same key finds it next time.
 */
export async function startOrAttach<D extends AnyDef>(
  t: RaTemporal,
  def: D,
  s: Start<D>,
  deadlineMs = WORKFLOW_DEADLINE_MS,
): Promise<WorkflowHandle<WorkflowOf<D>>> {
  const options = startOptions(t, def, s);
  try {
    return await withDeadline(`Temporal (starting ${options.workflowId})`, deadlineMs, (signal) =>
      t.temporal.withAbortSignal(signal, () => t.temporal.workflow.start<WorkflowOf<D>>(def.type, options as never)),
    );
  } catch (e) {
    // REJECT_DUPLICATE: the run has ended; its result is the request's answer.
    if (e instanceof WorkflowExecutionAlreadyStartedError && s.ifRunning !== 'refuse' && (s.ifClosed ?? 'attach') === 'attach') {
      return t.temporal.workflow.getHandle<WorkflowOf<D>>(options.workflowId);
    }
    throw e;
  }
}

/**
 * The same start for Update-with-Start (executeUpdateWithStart): a running run is always
 * attached to. With ifClosed 'attach', an ended run makes the call fail with
 * WorkflowExecutionAlreadyStartedError (the caller answers from the read model).
 */
export function startOperation<D extends AnyDef>(
  t: RaTemporal,
  def: D,
  s: Omit<Start<D>, 'ifRunning'>,
): WithStartWorkflowOperation<WorkflowOf<D>> {
  const options = startOptions(t, def, s);
  return new WithStartWorkflowOperation<WorkflowOf<D>>(def.type, {
    ...options,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  } as never);
}

/**
 * An Update to a running workflow with a deadline. The workflow's refusal (its validator)
 * arrives as WorkflowUpdateFailedError (see refusal()); no answer in time is 'unavailable'.
 */
export async function executeUpdate<Ret, Args extends unknown[]>(
  t: Pick<RaTemporal, 'temporal'>,
  workflowId: string,
  update: UpdateDefinition<Ret, Args>,
  opts: { args: Args; updateId?: string; what?: string; deadlineMs?: number },
): Promise<Ret> {
  const handle = t.temporal.workflow.getHandle(workflowId);
  const options = { args: opts.args, ...(opts.updateId ? { updateId: opts.updateId } : {}) };
  return withDeadline(opts.what ?? `workflow ${workflowId}`, opts.deadlineMs ?? WORKFLOW_DEADLINE_MS, (signal) =>
    t.temporal.withAbortSignal(signal, () => handle.executeUpdate(update as unknown as UpdateDefinition<Ret, [unknown]>, options as never)),
  );
}

/** The reason a workflow's Update validator gave for refusing, or undefined when `e` is no refusal. */
export function refusal(e: unknown): string | undefined {
  if (!(e instanceof WorkflowUpdateFailedError)) return undefined;
  return (e.cause as Error | undefined)?.message ?? e.message;
}

/** The ApplicationFailure type of a refused Update (e.g. 'orderNotReady'), if it has one. */
export function refusalType(e: unknown): string | undefined {
  return e instanceof WorkflowUpdateFailedError ? (e.cause as { type?: string } | undefined)?.type : undefined;
}
