/**
 * An ACME authorization outside an open order (`acme-authz-<id>`): a pre-authorization
 * (newAuthz), a pending authorization whose order has ended, or any authorization being
 * deactivated. The front end starts it with Update-with-Start (conflict policy
 * USE_EXISTING), so a second request finds the run that is there.
 *
 * - respondChallenge: validates it as the order workflow does (one activity per attempt);
 * - deactivate: deactivates it in the read model (refused while it is being validated) and
 *   tells the open orders that use it, which then become invalid.
 *
 * A pending authorization's run ends when it is validated, fails, is deactivated or expires;
 * a run started only to deactivate a valid authorization ends once that is done.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  setCurrentDetails,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import type { AuthzState, AuthzStatus } from '../activities/acme-types.ts';
import { msUntil, storage, storageAfterUpdate, Validation } from './acme-common.ts';
import {
  authzChangedSignal,
  deactivateAuthzUpdate,
  respondChallengeUpdate,
  retryValidationUpdate,
  WORKFLOWS,
  type AuthzInput,
} from './api.ts';

/** How long a run started for a deactivation waits for it (the Update arrives with the start). */
const DEACTIVATION_RUN_WAIT = '1 minute';

export async function acmeAuthzWorkflow(input: AuthzInput): Promise<AuthzStatus | 'processing'> {
  const authz: AuthzState = { ...input.authz };
  const { id } = authz;
  let expired = false;
  let validation: Validation | undefined;
  const done = () => authz.status !== 'pending' && authz.status !== 'processing' && authz.status !== 'valid';
  const describe = (details: string) => setCurrentDetails(`**${authz.status}** — ${details}`);

  setHandler(
    respondChallengeUpdate,
    async ({ challengeId }) => {
      authz.status = 'processing';
      validation = new Validation();
      describe(`validating ${authz.identifier.value}`);
      const outcome = await validation.run(authz, challengeId, input.validation);
      validation = undefined;
      if (outcome.ok) {
        authz.status = 'valid';
        describe(`valid until ${outcome.result.expiresAt}`);
        return { status: 'valid' as const, validated: outcome.result.validatedAt };
      }
      authz.status = outcome.gone ?? 'invalid';
      if (!outcome.gone) await storage.failValidation({ authzId: id, challengeId, error: outcome.error });
      describe(`validation failed: ${outcome.error.detail}`);
      return { status: 'invalid' as const, error: outcome.error };
    },
    {
      validator: ({ challengeId }) => {
        if (!authz.challenges.some((c) => c.id === challengeId)) throw ApplicationFailure.nonRetryable('no such challenge', 'malformed');
        if (authz.status !== 'pending' || expired) {
          throw ApplicationFailure.nonRetryable(
            `the authorization is ${authz.status === 'processing' ? 'being validated' : expired ? 'expired' : authz.status}`,
            'malformed',
          );
        }
      },
    },
  );

  setHandler(
    deactivateAuthzUpdate,
    async () => {
      const r = await storageAfterUpdate.deactivateAuthz({ authzId: id });
      if (!r.deactivated) throw ApplicationFailure.nonRetryable(r.refused ?? 'the authorization cannot be deactivated', 'malformed');
      authz.status = 'deactivated';
      describe('deactivated by the client');
      for (const orderId of r.orderIds) {
        try {
          await getExternalWorkflowHandle(WORKFLOWS.acmeOrder.id(orderId)).signal(authzChangedSignal, {
            authzId: id,
            status: 'deactivated',
          });
        } catch {
          // The order has ended meanwhile: nothing left to stop.
        }
      }
      return { status: 'deactivated' as AuthzStatus };
    },
    {
      validator: () => {
        if (authz.status === 'processing')
          throw ApplicationFailure.nonRetryable(
            'the authorization is being validated; deactivate it once the validation has ended',
            'malformed',
          );
      },
    },
  );

  setHandler(
    retryValidationUpdate,
    (_arg: { authzId?: string }) => {
      validation?.retryNow();
      return { retried: [id] };
    },
    {
      validator: (_arg: { authzId?: string }) => {
        if (!validation) throw ApplicationFailure.nonRetryable(`authorization ${id} is ${authz.status}, not being validated`, 'malformed');
      },
    },
  );

  // (Not authz.status: an Update that came with the start ran its handler at setHandler.)
  if (input.authz.status === 'pending') {
    if (authz.status === 'pending')
      describe(`waiting for the client to answer a challenge (${authz.challenges.map((c) => c.type).join(', ')})`);
    void sleep(msUntil(input.expiresAt)).then(() => {
      expired = true;
    });
    await condition(() => authz.status === 'valid' || done() || (expired && authz.status === 'pending'));
    if (authz.status === 'pending') {
      authz.status = 'expired';
      describe('expired before a challenge was answered');
      await storage.projectAuthz({ id, status: 'expired' });
    }
  } else {
    await condition(done, DEACTIVATION_RUN_WAIT);
  }
  await condition(allHandlersFinished);
  return authz.status;
}
