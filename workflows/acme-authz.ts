/**
 * One ACME authorization (`acme-authz-<id>`): waits for the client to pick a challenge
 * (Update `respondChallenge`), validates it through the validation activity (transient
 * failures retried with backoff for a bounded number of attempts, a wrong answer fails at
 * once), then stays valid until it expires or is deactivated. Orders waiting on it are
 * told of every final outcome by signal.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { AcmeStorageActivities, AuthzChange, AuthzInput, AuthzStatus, ChallengeSpec, Problem } from '../activities/acme-types.ts';
import type { ValidationActivities } from '../activities/validation-types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { STORAGE_ACTIVITY_OPTIONS, STORAGE_AFTER_UPDATE_OPTIONS } from './options.ts';

export const respondChallengeUpdate = defineUpdate<{ status: string }, [{ challengeId: string }]>('respondChallenge');
export const deactivateAuthzUpdate = defineUpdate<{ status: AuthzStatus }, []>('deactivate');
/** Operator (`certflow orders retry`): stop waiting for the next backoff and validate now. */
export const retryValidationUpdate = defineUpdate<{ status: string }, []>('retryValidation');
/** Sent to the orders of an authorization when it reaches a final state. */
export const authzChangedSignal = defineSignal<[AuthzChange]>('authzChanged');

const storage = proxyLocalActivities<AcmeStorageActivities>(STORAGE_ACTIVITY_OPTIONS);
const storageAfterUpdate = proxyActivities<AcmeStorageActivities>(STORAGE_AFTER_UPDATE_OPTIONS);

function problemOf(err: unknown): Problem {
  const app = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
  const type = app?.type && /^[a-zA-Z]+$/.test(app.type) ? app.type : 'serverInternal';
  return { type: `urn:ietf:params:acme:error:${type}`, detail: app?.message ?? 'validation failed' };
}

function msUntil(iso: string): number {
  return Math.max(0, new Date(iso).getTime() - Date.now());
}

export async function acmeAuthzWorkflow(input: AuthzInput): Promise<AuthzStatus> {
  let status: AuthzStatus = 'pending';
  let chosen: ChallengeSpec | undefined;
  let deactivated = false;
  let validating: CancellationScope | undefined;
  let retries = 0;

  setHandler(
    respondChallengeUpdate,
    ({ challengeId }) => {
      chosen = input.challenges.find((c) => c.id === challengeId);
      return { status: 'processing' };
    },
    {
      validator: ({ challengeId }) => {
        if (!input.challenges.some((c) => c.id === challengeId)) throw ApplicationFailure.nonRetryable('no such challenge', 'malformed');
        if (status !== 'pending' || chosen) throw ApplicationFailure.nonRetryable(`the authorization is ${chosen ? 'being validated' : status}`, 'malformed');
      },
    },
  );
  setHandler(
    deactivateAuthzUpdate,
    () => {
      deactivated = true;
      return { status: 'deactivated' as AuthzStatus };
    },
    {
      validator: () => {
        if (status !== 'pending' && status !== 'valid') {
          throw ApplicationFailure.nonRetryable(`an authorization that is ${status} cannot be deactivated`, 'malformed');
        }
      },
    },
  );

  setHandler(
    retryValidationUpdate,
    () => {
      retries++;
      validating!.cancel();
      return { status: 'processing' };
    },
    {
      validator: () => {
        if (!validating) throw ApplicationFailure.nonRetryable(`authorization ${input.authzId} is ${status}, not being validated`, 'malformed');
      },
    },
  );

  const describe = (details: string) => {
    upsertSearchAttributes(
      searchAttributes({
        protocol: 'acme',
        state: `authz-${status}`,
        account: input.accountId,
        identifiers: [`${input.identifier.type}:${input.wildcard ? '*.' : ''}${input.identifier.value}`],
      }),
    );
    setCurrentDetails(`**${status}** — ${details}`);
  };
  const finish = async (s: AuthzStatus, change: Omit<AuthzChange, 'authzId' | 'status'> = {}, expiresAt?: string) => {
    status = s;
    // Deactivation comes from an Update: see STORAGE_AFTER_UPDATE_OPTIONS.
    await (s === 'deactivated' ? storageAfterUpdate : storage).projectAuthz({ id: input.authzId, status: s, expiresAt });
    for (const id of input.orderWorkflowIds) {
      try {
        await getExternalWorkflowHandle(id).signal(authzChangedSignal, { authzId: input.authzId, status: s, ...change });
      } catch {
        // The order is already closed (expired or canceled): nothing to tell.
      }
    }
  };

  if (input.createRecords) {
    await storage.createAuthzRecords({
      id: input.authzId,
      accountId: input.accountId,
      alias: input.alias,
      identifier: input.identifier,
      wildcard: input.wildcard,
      status: 'pending',
      expiresAt: input.expiresAt,
      challenges: input.challenges.map((c) => ({ ...c, status: 'pending' })),
    });
  }
  describe(`waiting for the client to answer a challenge (${input.challenges.map((c) => c.type).join(', ')})`);
  const acted = await condition(() => chosen !== undefined || deactivated, msUntil(input.expiresAt));
  if (!acted) {
    describe('expired before a challenge was answered');
    await finish('expired', { error: { type: 'urn:ietf:params:acme:error:malformed', detail: 'the authorization expired' } });
    return status;
  }
  if (deactivated) {
    describe('deactivated by the client');
    await finish('deactivated');
    return status;
  }

  const challenge = chosen!;
  await storageAfterUpdate.projectChallenge({ id: challenge.id, status: 'processing' });
  describe(`validating ${challenge.type} for ${input.identifier.value}`);
  const va = proxyActivities<ValidationActivities>({
    startToCloseTimeout: `${input.attemptTimeoutSeconds + 5} seconds`,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: input.maxAttempts },
  });
  try {
    const keyAuthorization = `${challenge.token}.${input.thumbprint}`;
    for (let handled = 0; ; ) {
      validating = new CancellationScope();
      try {
        await validating.run(() =>
          va.validateChallenge({ type: challenge.type, identifier: input.identifier, wildcard: input.wildcard, token: challenge.token, keyAuthorization }),
        );
        break;
      } catch (err) {
        // An operator's retry cancels the attempt (and its backoff) and starts afresh.
        if (isCancellation(err) && retries > handled) {
          handled = retries;
          describe(`validating ${challenge.type} for ${input.identifier.value} again (operator retry)`);
          continue;
        }
        throw err;
      } finally {
        validating = undefined;
      }
    }
    if (input.identifier.type === 'dns') {
      await va.checkCaa({
        identifiers: [{ ...input.identifier, type: 'dns', wildcard: input.wildcard, method: challenge.type }],
        accountUri: input.accountUri,
        caaIdentities: input.caaIdentities,
      });
    }
  } catch (err) {
    const error = problemOf(err);
    await storage.projectChallenge({ id: challenge.id, status: 'invalid', error });
    describe(`validation failed: ${error.detail}`);
    upsertSearchAttributes(searchAttributes({ lastError: error.detail }));
    await finish('invalid', { error, method: challenge.type });
    return status;
  }

  const validatedAt = new Date().toISOString();
  const expiresAt = new Date(Date.now() + input.validLifetimeSeconds * 1000).toISOString();
  await storage.projectChallenge({ id: challenge.id, status: 'valid', validatedAt });
  status = 'valid';
  describe(`valid until ${expiresAt}`);
  await finish('valid', { method: challenge.type }, expiresAt);

  // A valid authorization can still be deactivated by its account until it expires.
  const deactivatedLater = await condition(() => deactivated, msUntil(expiresAt));
  await finish(deactivatedLater ? 'deactivated' : 'expired');
  describe(deactivatedLater ? 'deactivated by the client' : 'expired');
  return status;
}
