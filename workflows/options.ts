import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { REQUEST_ENDING_KINDS } from '../src/core/errors.ts';

/**
 * CaError kinds that describe a wrong request (the error contract, src/core/errors.ts): the
 * activity fails non-retryably with them and the workflow ends the request with the answer.
 * Every other failure is a server fault, which never ends a request silently.
 */
export const REQUESTER_ERROR_TYPES: string[] = [...REQUEST_ENDING_KINDS];

/**
 * Signing runs on the signing queue, where only workers holding CA keys poll. It
 * heartbeats, so a killed worker is noticed after heartbeatTimeout and the activity is
 * retried on another (or the restarted) worker; the activity itself is idempotent.
 */
export const SIGNING_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '5 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: REQUESTER_ERROR_TYPES,
  },
};

/**
 * Signing for an enrollment (operator, EST, CMP): a server fault (HSM gone, CA key missing,
 * database down) is retried a few times within the activity, then handed to the workflow,
 * which records it (state `stalled`, CertflowLastError) and tries again with a longer
 * backoff, or at once on `certflow requests retry`. A slow token is no fault: the activity
 * heartbeats while it signs.
 */
export const ENROLLMENT_SIGNING_OPTIONS: ActivityOptions = {
  ...SIGNING_ACTIVITY_OPTIONS,
  retry: { ...SIGNING_ACTIVITY_OPTIONS.retry, maximumAttempts: 4 },
};

/**
 * An ACME order's signing: as above, but bounded in time. When the key store stays away
 * longer (HSM gone, CA key missing) the order becomes invalid with serverInternal and the
 * cause in CertflowLastError — the client can order again — instead of processing forever.
 */
export const ACME_SIGNING_ACTIVITY_OPTIONS: ActivityOptions = {
  ...SIGNING_ACTIVITY_OPTIONS,
  scheduleToCloseTimeout: '5 minutes',
  // A configuration fault (unknown CA, a profile the lint refuses) does not go away while
  // the client waits: the order ends at once instead of after five minutes of retries.
  retry: { ...SIGNING_ACTIVITY_OPTIONS.retry, nonRetryableErrorTypes: [...REQUESTER_ERROR_TYPES, 'config'] },
};

/**
 * The same signing as a local activity, for workflows on the signing queue (the worker that
 * runs the workflow holds the keys): no heartbeat (the worker keeps its workflow task alive
 * while the activity runs; a killed worker is noticed when the task times out, and the task
 * is run again, with the activity, elsewhere), the same timeouts and retries otherwise. The
 * activity commits before the task completes: a task lost after the commit is run again and
 * the activity, idempotent per request, returns the stored certificate.
 */
function local({ heartbeatTimeout: _, ...o }: ActivityOptions): LocalActivityOptions {
  return o;
}
export const LOCAL_ENROLLMENT_SIGNING_OPTIONS: LocalActivityOptions = local(ENROLLMENT_SIGNING_OPTIONS);
export const LOCAL_ACME_SIGNING_OPTIONS: LocalActivityOptions = local(ACME_SIGNING_ACTIVITY_OPTIONS);

/** Signing failures that mean the CSR is at fault (ACME badCSR); every other kind is a server fault. */
export const BAD_CSR_TYPES: string[] = ['badCSR', 'badKey', 'policy', 'malformed'];

export const STORAGE_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

/**
 * Projections that follow an Update go through a regular activity, not a local one: an
 * Update is accepted inside a workflow task and becomes durable only when that task
 * completes, so a local activity in the same task could write a state to Postgres that a
 * worker crash then takes back (the read model would run ahead of the workflow). A
 * regular activity is scheduled by the completed task, after the Update is durable.
 */
export const STORAGE_AFTER_UPDATE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};
