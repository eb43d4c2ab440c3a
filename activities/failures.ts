import { ApplicationFailure } from '@temporalio/activity';
import { CaError, CLIENT_ERROR_KINDS } from '../src/core/errors.ts';

/** Requester mistakes become non-retryable failures typed with the CaError kind. */
export function toActivityFailure(e: unknown): unknown {
  if (e instanceof CaError && CLIENT_ERROR_KINDS.has(e.kind)) {
    return ApplicationFailure.create({
      type: e.kind,
      message: e.message,
      nonRetryable: true,
      details: e.rule ? [{ rule: e.rule }] : [],
    });
  }
  return e;
}
