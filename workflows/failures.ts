/**
 * How a workflow reads an activity's failure. An activity task's failure arrives as an
 * ActivityFailure whose cause is what the activity threw; a local activity that fails with a
 * non-retryable ApplicationFailure hands the workflow that failure itself.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/** The ApplicationFailure an activity (task or local) failed with, if there is one. */
export function applicationFailure(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure) return err;
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
}

/** Whether `err` is an activity's failure (task or local), as opposed to a fault of the workflow code. */
export function isActivityFailure(err: unknown): boolean {
  return err instanceof ActivityFailure || err instanceof ApplicationFailure || err instanceof TimeoutFailure;
}

/** An activity failure's innermost message (e.g. "activity StartToClose timeout"). */
export function failureText(err: unknown): string {
  let e = err as Error | undefined;
  while (e?.cause instanceof Error) e = e.cause;
  return e?.message || String(err);
}

/** What a server fault says: the activity's own failure (the ActivityFailure's cause), or the failure itself (local activity). */
export function faultText(err: unknown): string {
  const e = err as Error;
  return (e.cause instanceof Error ? e.cause : e).message;
}
