/**
 * What the ACME order and authorization workflows share (their Updates and signal are in
 * api.ts): the validation of one authorization (one activity per attempt, with an operator's retry),
 * and the mapping of activity failures to problem documents.
 */
import { CancellationScope, isCancellation, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import {
  AUTHZ_GONE,
  type AcmeActivities,
  type AuthzState,
  type AuthzStatus,
  type Problem,
  type ValidateAuthzResult,
  type ValidationSettings,
} from '../activities/acme-types.ts';
import { applicationFailure, failureText } from './failures.ts';
import { STORAGE_ACTIVITY_OPTIONS, STORAGE_AFTER_UPDATE_OPTIONS } from './options.ts';

/** Projections in the workflow task that needs them (see STORAGE_ACTIVITY_OPTIONS). */
export const storage = proxyLocalActivities<AcmeActivities>(STORAGE_ACTIVITY_OPTIONS);
/** Projections that follow an Update accepted in the same task (see STORAGE_AFTER_UPDATE_OPTIONS). */
export const storageAfterUpdate = proxyActivities<AcmeActivities>(STORAGE_AFTER_UPDATE_OPTIONS);

export const acmeProblem = (type: string, detail: string): Problem => ({ type: `urn:ietf:params:acme:error:${type}`, detail });

export function msUntil(iso: string): number {
  return Math.max(0, new Date(iso).getTime() - Date.now());
}

export type ValidationOutcome =
  | { ok: true; result: ValidateAuthzResult }
  | { ok: false; error: Problem; /** The authorization's status when it was no longer pending. */ gone?: AuthzStatus };

/**
 * The validation of one authorization: one activity per attempt, transient failures retried
 * with backoff (1, 2, 4, 8, then 10 s) for settings.maxAttempts attempts, a wrong answer
 * final at once. retryNow() (an operator) cancels the attempt or backoff under way and
 * starts afresh.
 */
export class Validation {
  #scope: CancellationScope | undefined;
  #retries = 0;

  /**
   * @param local the first attempt runs as a local activity inside the workflow task of the
   *   challenge Update (workflows on the signing queue; see acme-order.ts): most validations
   *   succeed or fail for good at once, and then the Update costs no task of its own. A
   *   transient failure (no answer, DNS timeout) goes on as before, one activity task per
   *   attempt, so that the Update is accepted and an operator's retry is taken at once while
   *   the retries wait.
   */
  constructor(private readonly local = false) {}

  get running(): boolean {
    return this.#scope !== undefined;
  }

  retryNow(): void {
    this.#retries++;
    this.#scope?.cancel();
  }

  async run(authz: AuthzState, challengeId: string, settings: ValidationSettings, orderId?: string): Promise<ValidationOutcome> {
    const challenge = authz.challenges.find((c) => c.id === challengeId)!;
    const startToCloseTimeout = `${settings.attemptTimeoutSeconds * 2 + 5} seconds`;
    const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' };
    const va = proxyActivities<AcmeActivities>({
      startToCloseTimeout,
      retry: { ...retry, maximumAttempts: Math.max(1, settings.maxAttempts - (this.local ? 1 : 0)) },
    });
    const firstAttempt = proxyLocalActivities<AcmeActivities>({ startToCloseTimeout, retry: { ...retry, maximumAttempts: 1 } });
    for (let handled = 0, local = this.local; ; local = false) {
      this.#scope = new CancellationScope();
      try {
        const result = await this.#scope.run(() =>
          (local ? firstAttempt : va).validateAuthz({
            orderId,
            authzId: authz.id,
            challenge,
            identifier: authz.identifier,
            wildcard: authz.wildcard,
            accountUri: settings.accountUri,
            caaIdentities: settings.caaIdentities,
            validLifetimeSeconds: settings.validLifetimeSeconds,
          }),
        );
        return { ok: true, result };
      } catch (err) {
        if (isCancellation(err) && this.#retries > handled) {
          handled = this.#retries;
          continue;
        }
        const app = applicationFailure(err);
        if (local && !app?.nonRetryable && !isCancellation(err)) continue; // transient: retried as activity tasks
        if (app?.type === AUTHZ_GONE) {
          const gone = ((app.details?.[0] as { authzStatus?: AuthzStatus } | undefined)?.authzStatus ?? 'deactivated') as AuthzStatus;
          return { ok: false, gone, error: acmeProblem('unauthorized', `the authorization for ${authz.identifier.value} is ${gone}`) };
        }
        if (!app) return { ok: false, error: acmeProblem('serverInternal', `the validation could not be completed: ${failureText(err)}`) };
        // ACME problem types of the VA (validation-types.ts); accountGone: the account was deactivated meanwhile.
        const type = app.type && /^[a-zA-Z]+$/.test(app.type) && app.type !== 'accountGone' ? app.type : 'unauthorized';
        return { ok: false, error: acmeProblem(type, app.message) };
      } finally {
        this.#scope = undefined;
      }
    }
  }
}
