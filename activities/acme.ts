/**
 * ACME activities of the order and authorization workflows (main task queue): validation
 * of an authorization (challenge and CAA in one activity, success recorded in the same
 * transaction that may make the order ready), failure and deactivation records, and the
 * projections of workflow transitions into the read model.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/core/logger.ts';
import { withTransaction } from '../src/db/pool.ts';
import * as certificates from '../src/db/repos/certificates.ts';
import * as orders from '../src/db/repos/acme-orders.ts';
import { checkCaaAll, createVaContext, validateChallenge, type DnsClient, type RedirectPorts } from '../src/va/index.ts';
import { ACCOUNT_GONE, AUTHZ_GONE, type AcmeActivities, type ValidateAuthzInput, type ValidateAuthzResult } from './acme-types.ts';
import { audit } from '../src/db/repos/audit.ts';
import { toValidationFailure } from './validation.ts';

export interface AcmeActivityDeps {
  config: Config;
  pool: Pool;
  log: Logger;
  /** Test hooks, as for the validation activities. */
  dns?: DnsClient;
  redirectPorts?: RedirectPorts;
}

export function createAcmeActivities(deps: AcmeActivityDeps): AcmeActivities {
  const { pool, log } = deps;
  const va = createVaContext(deps.config.validation, { dns: deps.dns, redirectPorts: deps.redirectPorts });
  /**
   * Records a successful validation (challenge, authorization and maybe the order ready) and,
   * when this attempt made the authorization valid, its audit entry: one transaction.
   */
  const completeValidation = (input: ValidateAuthzInput, validatedAt: Date, expiresAt: Date) =>
    withTransaction(pool, async (tx) => {
      const r = await orders.completeValidation(tx, {
        orderId: input.orderId,
        authzId: input.authzId,
        challengeId: input.challenge.id,
        validatedAt,
        expiresAt,
      });
      if (r.validated) {
        await audit(tx, {
          actor: `acme:${r.validated.accountId}`,
          action: 'acme.authz.validate',
          object: input.authzId,
          requestId: input.orderId ?? null,
          details: { identifier: r.validated.identifier, challenge: input.challenge.type, orderReady: r.orderReady },
        });
      }
      return r;
    });

  return {
    async validateAuthz(input): Promise<ValidateAuthzResult> {
      const { challenge, identifier, wildcard } = input;
      // One statement, atomic on its own: no BEGIN/COMMIT around it.
      const begun = await orders.beginValidation(pool, { authzId: input.authzId, challengeId: challenge.id });
      if (begun.state === 'authzGone') {
        throw ApplicationFailure.create({
          type: AUTHZ_GONE,
          message: `the authorization is ${begun.authzStatus}`,
          nonRetryable: true,
          details: [{ authzStatus: begun.authzStatus }],
        });
      }
      if (begun.state === 'accountGone') {
        throw ApplicationFailure.create({ type: ACCOUNT_GONE, message: `the account is ${begun.accountStatus}`, nonRetryable: true });
      }
      if (begun.state === 'alreadyValid') {
        // A retried attempt whose predecessor recorded the success before it was lost.
        const { orderReady } = await completeValidation(input, begun.validatedAt ?? new Date(), begun.expiresAt);
        return { validatedAt: (begun.validatedAt ?? new Date()).toISOString(), expiresAt: begun.expiresAt.toISOString(), orderReady };
      }
      const what = { challenge: challenge.type, identifier: identifier.value, wildcard, authz: input.authzId };
      try {
        // The challenge and CAA are looked at concurrently; a challenge failure is reported first.
        const caa =
          identifier.type === 'dns'
            ? checkCaaAll(va, {
                identifiers: [{ type: 'dns', value: identifier.value, wildcard, method: challenge.type }],
                accountUri: input.accountUri,
                caaIdentities: input.caaIdentities,
              })
            : Promise.resolve([]);
        caa.catch(() => {}); // awaited below, after the challenge
        const validationRecord = await validateChallenge(va, {
          type: challenge.type,
          identifier,
          wildcard,
          token: challenge.token,
          keyAuthorization: `${challenge.token}.${begun.thumbprint}`,
        });
        await caa;
        log.info({ ...what, validationRecord }, 'challenge validated');
      } catch (e) {
        throw toValidationFailure(e, log, what);
      }
      const validatedAt = new Date();
      const expiresAt = new Date(validatedAt.getTime() + input.validLifetimeSeconds * 1000);
      const { orderReady } = await completeValidation(input, validatedAt, expiresAt);
      return { validatedAt: validatedAt.toISOString(), expiresAt: expiresAt.toISOString(), orderReady };
    },

    async failValidation(p) {
      await withTransaction(pool, async (tx) => {
        const { failed } = await orders.failValidation(tx, p);
        if (!failed) return; // recorded by an earlier attempt
        await audit(tx, {
          actor: `acme:${failed.accountId}`,
          action: 'acme.authz.invalid',
          object: p.authzId,
          result: 'failed',
          requestId: p.orderId ?? null,
          details: { identifier: failed.identifier, error: p.error, orderInvalid: failed.orderInvalid },
        });
      });
    },

    async deactivateAuthz({ authzId }) {
      const r = await withTransaction(pool, async (tx) => {
        const d = await orders.deactivateAuthz(tx, authzId);
        if (d.state === 'deactivated') {
          await audit(tx, {
            actor: `acme:${d.authz.accountId}`,
            action: 'acme.authz.deactivate',
            object: authzId,
            details: { identifier: d.authz.identifier, openOrders: d.orderIds },
          });
        }
        return d;
      });
      if (r.state === 'refused') return { deactivated: false, refused: r.reason, orderIds: [] };
      return { deactivated: true, orderIds: r.orderIds };
    },

    async projectOrder({ actor, ...p }) {
      await withTransaction(pool, async (tx) => {
        const r = await orders.updateOrder(tx, p);
        if (p.status !== 'invalid' || !r || r.before === 'invalid') return;
        await audit(tx, {
          actor: actor ?? 'system',
          action: 'acme.order.invalid',
          object: p.id,
          result: 'failed',
          requestId: p.id,
          details: { account: r.accountId, from: r.before, error: p.error },
        });
      });
    },
    projectAuthz: (p) => orders.updateAuthz(pool, p),
    validAuthzs: async ({ authzIds }) =>
      (await orders.getAuthzs(pool, authzIds))
        .filter((a) => a.status === 'valid')
        .map((a) => ({
          id: a.id,
          validatedAt: (a.validatedAt ?? new Date()).toISOString(),
          method: a.challenges.find((c) => c.status === 'valid')?.type,
        })),
    issuedSerial: async ({ orderId }) => {
      const row = await certificates.getByRequest(pool, orderId);
      return row?.certDer ? row.serial : null;
    },
  };
}
