import { ApplicationFailure } from '@temporalio/activity';
import { ERROR_CONTRACT, toCaError } from '../src/core/errors.ts';

/**
 * Activity errors as Temporal failures typed with their CaError kind (the error contract of
 * src/core/errors.ts): requester mistakes fail non-retryably, server faults (a database or
 * HSM that does not answer, a missing CA key, a bug) are retried by the activity's policy
 * and, when retries run out, reach the workflow with their kind, which keeps the request
 * open and visible instead of failing it.
 */
export function toActivityFailure(e: unknown): ApplicationFailure {
  if (e instanceof ApplicationFailure) return e;
  const err = toCaError(e);
  const requester = ERROR_CONTRACT[err.kind].fault === 'requester';
  const message =
    err.kind === 'internal' && err.message === 'internal error'
      ? `internal error: ${String((err.cause as Error)?.message ?? err.cause)}`
      : err.message;
  return ApplicationFailure.create({
    type: err.kind,
    message,
    nonRetryable: requester,
    details: err.rule ? [{ rule: err.rule }] : [],
    cause: err.cause instanceof Error ? err.cause : undefined,
  });
}
