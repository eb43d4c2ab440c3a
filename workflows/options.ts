import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/** CaError kinds that describe a wrong request: the activity fails non-retryably with them. */
export const REQUESTER_ERROR_TYPES: string[] = ['badCSR', 'badKey', 'policy', 'malformed', 'notFound', 'conflict'];

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

export const STORAGE_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};
