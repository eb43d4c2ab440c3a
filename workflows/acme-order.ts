/**
 * One ACME order (`acme-order-<id>`), owning the authorizations it created:
 *
 *   pending --(every authorization valid)--> ready --finalize--> processing --> valid
 *      \______________________ invalid (validation failed, authorization deactivated,
 *                                       refused CSR, server fault, canceled, expired)
 *
 * The front end inserts the order and starts this workflow. A client's challenge answer is
 * the `respondChallenge` Update: its handler runs the validation activity (challenge and
 * CAA in one activity per attempt), which records success in the read model in the same
 * transaction that makes the order ready, and answers with the outcome — the front end
 * waits for it briefly, so most clients read `valid` in the answer itself. `finalize` is an
 * Update too: it waits (inside the Update) for a validation that has already been recorded
 * but not yet seen here, so a client that finalizes the moment it reads its authorization
 * valid is never told "not ready"; then the signing activity issues the certificate and
 * records the order valid in the transaction that stores it. While a server fault (HSM gone)
 * holds the signing up, an operator's `retry` Update (`certflow orders retry`, the console)
 * cancels the attempt or backoff under way and signs again at once.
 *
 * A single-name order is 5 workflow tasks: start, challenge accepted, validated (ready),
 * finalize accepted, issued. Authorizations reused from other orders arrive valid; one that
 * is deactivated elsewhere is reported by signal and stops the order.
 *
 * On the signing queue (new runs since issue 18; the worker running the workflow holds the
 * CA keys) an order is 3 workflow tasks: start, challenge (validation as a local activity
 * in the Update's own task), finalize (CAA and signing as local activities, likewise). A
 * local activity commits before its task completes; when the worker dies in between, the
 * task runs again with the same Update and the idempotent activities return what they
 * recorded (the validation, the certificate). When the Update itself is lost (Temporal
 * restarted before the task completed), the read model is ahead of the workflow: finalize
 * takes the authorizations the read model has valid, and an order whose certificate was
 * issued ends valid, never invalid.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  proxyActivities,
  setCurrentDetails,
  isCancellation,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AuthzState, OrderStatus, Problem } from '../activities/acme-types.ts';
import type { SigningActivities } from '../activities/types.ts';
import type { ValidationActivities } from '../activities/validation-types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { acmeProblem, msUntil, storage, storageAfterUpdate, Validation } from './acme-common.ts';
import {
  authzChangedSignal,
  cancelOrderUpdate,
  finalizeUpdate,
  respondChallengeUpdate,
  retryUpdate,
  retryValidationUpdate,
  signingTaskQueue,
  type OrderInput,
} from './api.ts';
import { applicationFailure, failureText } from './failures.ts';
import { ACME_SIGNING_ACTIVITY_OPTIONS, BAD_CSR_TYPES, LOCAL_ACME_SIGNING_OPTIONS } from './options.ts';
import { worksLocally } from './local-work.ts';

const open = (s: OrderStatus) => s === 'pending' || s === 'ready';
const notReady = (detail: string) => ApplicationFailure.nonRetryable(detail, 'orderNotReady');

export async function acmeOrderWorkflow(input: OrderInput): Promise<OrderStatus> {
  const { taskQueue } = workflowInfo();
  /** Validation, CAA and signing as local activities in their Updates' tasks (see above). */
  const local = worksLocally('order-work-in-update-task');
  let status: OrderStatus = input.status;
  let expired = false;
  /** Why the order must stop (an authorization was deactivated), handled by the main loop. */
  let stop: Problem | undefined;
  const authzs = new Map<string, AuthzState>(input.authzs.map((a) => [a.id, { ...a }]));
  const validations = new Map<string, Validation>();
  const all = () => [...authzs.values()];
  /** The signing activity under way (while processing), and the operator's retries of it. */
  let signingScope: CancellationScope | undefined;
  let signingRetries = 0;

  // The expiry timer is never canceled: an order that ends earlier leaves it behind unseen.
  void sleep(msUntil(input.expiresAt)).then(() => {
    expired = true;
  });

  const transition = (s: OrderStatus, details: string, lastError?: string) => {
    status = s;
    upsertSearchAttributes(searchAttributes({ state: s, lastError }));
    setCurrentDetails(`**${s}** — ${details}`);
  };
  /**
   * The order becomes invalid, caused by `actor` (audited; default the system); the
   * projection runs locally unless an Update was accepted in this task.
   */
  const fail = async (error: Problem, details: string, afterUpdate = false, actor?: string) => {
    if (local && status === 'ready') {
      // A finalize lost with its task after the certificate was stored: the order has it.
      const serial = await storage.issuedSerial({ orderId: input.orderId });
      if (serial) {
        transition('valid', `certificate ${serial} issued`);
        await storage.projectOrder({ id: input.orderId, status: 'valid', serial });
        return;
      }
    }
    transition('invalid', details, error.detail);
    await (afterUpdate ? storageAfterUpdate : storage).projectOrder({ id: input.orderId, status: 'invalid', error, actor });
  };

  setCurrentDetails(
    status === 'ready'
      ? '**ready** — every authorization was valid already; waiting for finalize'
      : `**pending** — waiting for ${all().filter((a) => a.status === 'pending').length} challenge answer(s)`,
  );

  setHandler(
    respondChallengeUpdate,
    async ({ authzId, challengeId }) => {
      const authz = authzs.get(authzId)!;
      authz.status = 'processing';
      const validation = new Validation(local);
      validations.set(authzId, validation);
      setCurrentDetails(`**${status}** — validating ${authz.identifier.value}`);
      const outcome = await validation.run(authz, challengeId, input.validation, input.orderId);
      validations.delete(authzId);
      if (outcome.ok) {
        authz.status = 'valid';
        authz.validatedAt = outcome.result.validatedAt;
        authz.method = authz.challenges.find((c) => c.id === challengeId)?.type;
        if (status === 'pending' && all().every((a) => a.status === 'valid'))
          transition('ready', 'every authorization is valid; waiting for finalize');
        return { status: 'valid' as const, validated: outcome.result.validatedAt };
      }
      authz.status = outcome.gone ?? 'invalid';
      const orderError = { ...outcome.error, detail: `${authz.identifier.value}: ${outcome.error.detail}` };
      if (outcome.gone) {
        if (open(status)) await fail(orderError, `authorization ${authzId} is ${outcome.gone}`);
      } else {
        const stillOpen = open(status);
        if (stillOpen) transition('invalid', `validation of ${authz.identifier.value} failed`, orderError.detail);
        // Challenge, authorization and (while open) the order in one transaction.
        await storage.failValidation({
          orderId: stillOpen ? input.orderId : undefined,
          authzId,
          challengeId,
          error: outcome.error,
          orderError,
        });
      }
      return { status: 'invalid' as const, error: outcome.error };
    },
    {
      validator: ({ authzId, challengeId }) => {
        const authz = authzs.get(authzId);
        if (!authz?.challenges.some((c) => c.id === challengeId))
          throw ApplicationFailure.nonRetryable('no such challenge in this order', 'malformed');
        if (status !== 'pending') throw ApplicationFailure.nonRetryable(`the order is ${status}`, 'malformed');
        if (authz.status !== 'pending') {
          throw ApplicationFailure.nonRetryable(
            `the authorization is ${authz.status === 'processing' ? 'being validated' : authz.status}`,
            'malformed',
          );
        }
      },
    },
  );

  setHandler(
    finalizeUpdate,
    async ({ csr }) => {
      if (local && status === 'pending') await takeValidatedFromReadModel();
      // Validations recorded as valid (the client read them) but not yet seen here end first.
      await condition(() => status !== 'pending');
      if (status !== 'ready') throw notReady(`the order is ${status}, not ready`);
      status = 'processing';
      setCurrentDetails('**processing** — signing the certificate');
      try {
        const stale = all().filter(
          (a) =>
            a.identifier.type === 'dns' &&
            (!a.validatedAt || Date.now() - new Date(a.validatedAt).getTime() > input.caaRecheckSeconds * 1000),
        );
        if (stale.length) {
          // Authorizations validated long ago: CAA may have changed since (RFC 8659 3).
          const caaOptions = {
            startToCloseTimeout: `${input.validation.attemptTimeoutSeconds + 5} seconds`,
            retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
          } as const;
          const va = local ? proxyLocalActivities<ValidationActivities>(caaOptions) : proxyActivities<ValidationActivities>(caaOptions);
          await va.checkCaa({
            identifiers: stale.map((a) => ({
              type: 'dns' as const,
              value: a.identifier.value,
              wildcard: a.wildcard,
              method: a.method ?? 'http-01',
            })),
            accountUri: input.validation.accountUri,
            caaIdentities: input.validation.caaIdentities,
          });
        }
        const signing = local
          ? proxyLocalActivities<SigningActivities>(LOCAL_ACME_SIGNING_OPTIONS)
          : proxyActivities<SigningActivities>({ ...ACME_SIGNING_ACTIVITY_OPTIONS, taskQueue: signingTaskQueue(taskQueue) });
        const issue = () =>
          signing.issueCertificate({
            requestId: input.orderId,
            protocol: 'acme',
            csr,
            profile: input.profile,
            caName: input.caName,
            requester: input.accountId,
            replaces: input.replacesSerial,
            acme: { orderId: input.orderId, authzIds: all().map((a) => a.id) },
          });
        // An operator's `retry` (a server fault fixed) cancels the attempt or backoff under
        // way and signs again at once; the activity is idempotent per order.
        let cert: Awaited<ReturnType<typeof issue>>;
        for (let handled = 0; ;) {
          signingScope = new CancellationScope();
          try {
            cert = await signingScope.run(issue);
            break;
          } catch (err) {
            if (!(isCancellation(err) && signingRetries > handled)) throw err;
            handled = signingRetries;
          } finally {
            signingScope = undefined;
          }
        }
        transition('valid', `certificate ${cert.serial} issued`);
        return { status: 'valid' as const, serial: cert.serial };
      } catch (err) {
        const app = applicationFailure(err);
        if (!app || !app.nonRetryable) {
          // A server fault (timeout, signing retries used up): the certificate may still
          // have been issued before the fault; then the order has it.
          const serial = await storage.issuedSerial({ orderId: input.orderId });
          if (serial) {
            await storage.projectOrder({ id: input.orderId, status: 'valid', serial });
            transition('valid', `certificate ${serial} issued`);
            return { status: 'valid' as const, serial };
          }
        }
        // rateLimited: the per-domain certificate limit, counted when the certificate is stored.
        const type =
          app?.type === 'caa' || app?.type === 'unauthorized' || app?.type === 'rateLimited'
            ? app.type
            : app && BAD_CSR_TYPES.includes(app.type ?? '')
              ? 'badCSR'
              : 'serverInternal';
        const error = acmeProblem(
          type,
          type === 'serverInternal' ? `the certificate could not be issued: ${failureText(err)}` : app!.message,
        );
        await fail(error, `refused: ${error.detail}`);
        return { status: 'invalid' as const, error };
      }
    },
    {
      validator: (_req: { csr: string }) => {
        if (expired) throw notReady('the order has expired');
        if (status === 'ready') return;
        // Every authorization valid or being validated: finalize waits for the outcome. On the
        // signing queue, a pending one may be valid in the read model (the front end sends
        // finalize only for an order the read model has ready): the handler looks.
        if (status === 'pending' && (local || all().every((a) => a.status === 'valid' || a.status === 'processing'))) return;
        throw notReady(`the order is ${status}, not ready`);
      },
    },
  );

  setHandler(
    cancelOrderUpdate,
    async ({ by, reason }) => {
      await fail(acmeProblem('malformed', `canceled by ${by}${reason ? `: ${reason}` : ''}`), `canceled by ${by}`, true, by);
      return { status };
    },
    {
      validator: (_c: { by: string; reason?: string }) => {
        if (!open(status)) throw ApplicationFailure.nonRetryable(`the order is ${status}; it can no longer be canceled`, 'malformed');
      },
    },
  );

  setHandler(
    retryValidationUpdate,
    (arg) => {
      const retried = [...validations.entries()].filter(([id]) => !arg.authzId || id === arg.authzId);
      for (const [, v] of retried) v.retryNow();
      return { retried: retried.map(([id]) => id) };
    },
    {
      validator: (arg) => {
        if (![...validations.keys()].some((id) => !arg.authzId || id === arg.authzId)) {
          throw ApplicationFailure.nonRetryable(`order ${input.orderId} is ${status}: no authorization is being validated`, 'malformed');
        }
      },
    },
  );

  setHandler(
    retryUpdate,
    () => {
      signingRetries++;
      signingScope?.cancel();
      return { state: 'signing' as const };
    },
    {
      validator: (_by: { by: string }) => {
        if (!signingScope) throw ApplicationFailure.nonRetryable(`order ${input.orderId} is ${status}, not being signed`, 'malformed');
      },
    },
  );

  /**
   * Takes the validations the read model has recorded but this run has not seen (their
   * challenge Update was lost with its task after the local activity committed); refuses
   * finalize when an authorization is still pending in both.
   */
  async function takeValidatedFromReadModel(): Promise<void> {
    const unseen = all().filter((a) => a.status === 'pending');
    if (!unseen.length) return;
    const valid = new Map((await storage.validAuthzs({ authzIds: unseen.map((a) => a.id) })).map((v) => [v.id, v]));
    for (const a of unseen) {
      const v = valid.get(a.id);
      if (!v) continue;
      a.status = 'valid';
      a.validatedAt = v.validatedAt;
      a.method = v.method;
    }
    if (status !== 'pending') return; // ended meanwhile
    if (all().some((a) => a.status === 'pending')) throw notReady('the order is pending, not ready');
    if (all().every((a) => a.status === 'valid')) transition('ready', 'every authorization is valid; waiting for finalize');
  }

  setHandler(authzChangedSignal, ({ authzId, status: authzStatus }) => {
    const authz = authzs.get(authzId);
    if (!authz) return;
    authz.status = authzStatus;
    if (open(status)) stop ??= acmeProblem('unauthorized', `the authorization for ${authz.identifier.value} was ${authzStatus}`);
  });

  while (open(status) || status === 'processing') {
    await condition(() => !(open(status) || status === 'processing') || (open(status) && (stop !== undefined || expired)));
    if (!open(status)) continue;
    if (stop) await fail(stop, stop.detail);
    else
      await fail(acmeProblem('malformed', `the order expired before it was ${status === 'ready' ? 'finalized' : 'authorized'}`), 'expired');
  }
  // Updates under way (a validation of another authorization) finish before the order closes.
  await condition(allHandlersFinished);
  return status;
}
