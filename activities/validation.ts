/**
 * Validation activities: ACME challenges and CAA, on the main task queue. Thin: the work is
 * in src/va. A ValidationError becomes an ApplicationFailure typed with its ACME problem
 * type, non-retryable when the answer is definite (see validation-types.ts).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/core/logger.ts';
import { checkCaaAll, createVaContext, validateChallenge, ValidationError, type DnsClient, type RedirectPorts } from '../src/va/index.ts';
import { toActivityFailure } from './failures.ts';
import type { CheckCaaInput, ValidateChallengeInput, ValidateChallengeResult, ValidationActivities } from './validation-types.ts';

export interface ValidationDeps {
  config: Config;
  log: Logger;
  /** Test hook: a DNS client instead of one built from config.validation.dnsResolver. */
  dns?: DnsClient;
  /** Test hook: redirect ports instead of 80/443. */
  redirectPorts?: RedirectPorts;
}

export function createValidationActivities(deps: ValidationDeps): ValidationActivities {
  const ctx = createVaContext(deps.config.validation, { dns: deps.dns, redirectPorts: deps.redirectPorts });
  const { log } = deps;
  return {
    async validateChallenge(input: ValidateChallengeInput): Promise<ValidateChallengeResult> {
      const what = { challenge: input.type, identifier: input.identifier.value, wildcard: input.wildcard };
      try {
        const validationRecord = await validateChallenge(ctx, input);
        log.info({ ...what, validationRecord }, 'challenge validated');
        return { validationRecord };
      } catch (e) {
        throw toValidationFailure(e, log, what);
      }
    },

    async checkCaa(input: CheckCaaInput): Promise<void> {
      const what = { caa: input.identifiers.map((i) => `${i.wildcard ? '*.' : ''}${i.value}`) };
      try {
        const decisions = await checkCaaAll(ctx, input);
        log.info({ ...what, reasons: decisions.map((d) => d.reason) }, 'CAA allows issuance');
      } catch (e) {
        throw toValidationFailure(e, log, what);
      }
    },
  };
}

export function toValidationFailure(e: unknown, log: Logger, what: Record<string, unknown>): unknown {
  if (!(e instanceof ValidationError)) {
    log.error({ ...what, err: e }, 'validation failed unexpectedly');
    return toActivityFailure(e);
  }
  log.info({ ...what, problemType: e.problemType, retryable: e.retryable, detail: e.detail }, 'validation failed');
  return ApplicationFailure.create({ type: e.problemType, message: e.detail, nonRetryable: !e.retryable });
}
