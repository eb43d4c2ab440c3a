import { patched, workflowInfo } from '@temporalio/workflow';
import { onSigningTaskQueue } from './api.ts';

/**
 * Whether this run does its work (validation, signing) as local activities in the workflow
 * tasks that need it (issue 18): a run on the signing queue, where the worker holds the CA
 * keys, that started with the change (`patchId`; runs started before take the old path).
 *
 * The patch is asked for only on the signing queue, so a new run on the main queue (an RA
 * of an older version) records no marker and keeps activity tasks. A replay asks for it
 * whatever its queue (a replay worker has a task queue of its own): the marker in the
 * history decides.
 */
export function worksLocally(patchId: string): boolean {
  return localWorkVersion([patchId]) !== undefined;
}

/**
 * The same for a workflow whose local work changed again: `patchIds` newest first, each a
 * change of the local path (a new run takes the first and records only its marker; a run
 * started before takes the one whose marker its history has). Undefined: no local work.
 */
export function localWorkVersion<Id extends string>(patchIds: readonly Id[]): Id | undefined {
  const info = workflowInfo();
  if (!(onSigningTaskQueue(info.taskQueue) || info.unsafe.isReplaying)) return undefined;
  return patchIds.find((id) => patched(id));
}
