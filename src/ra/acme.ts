/**
 * ACME orders and authorizations (RFC 8555 7.1.3-7.5): the `acme-order-<id>` workflow, which
 * owns the authorizations it creates, and `acme-authz-<id>` for authorizations outside an
 * open order. The front end (src/acme/orders.ts) parses and authorizes the request and
 * renders what this returns.
 *
 * A new order is inserted, with the authorizations it creates, in the transaction that
 * counts it against the rate limits and starts its workflow; every later change is an
 * Update to the order's workflow (or, for an authorization outside an open order, to its
 * own workflow, started on demand with Update-with-Start), with an update id derived from
 * the request and a deadline. A challenge answer and a finalize wait briefly
 * (acme.answerWaitSeconds) for their outcome, so that most clients read `valid` in the
 * answer itself; when it takes longer, the read model says `processing` until the
 * workflow writes on.
 *
 * Refusals are CaErrors; the ones with an ACME problem type of their own carry a rule
 * (acme.rateLimited, acme.alreadyReplaced, acme.orderNotReady).
 */
import { WorkflowNotFoundError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type {
  AcmeIdentifier,
  AuthzRecord,
  AuthzState,
  ChallengeSpec,
  ChallengeType,
  ValidationSettings,
} from '../../activities/acme-types.ts';
import {
  cancelOrderUpdate,
  deactivateAuthzUpdate,
  finalizeUpdate,
  respondChallengeUpdate,
  retryValidationUpdate,
  WORKFLOWS,
  type AuthzInput,
  type ChallengeOutcome,
  type FinalizeOutcome,
  type OrderInput,
  type StatusChangeInput,
} from '../../workflows/api.ts';
import { getProfile, type AcmeAlias, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { withTransaction, type Queryable } from '../db/pool.ts';
import * as orders from '../db/repos/acme-orders.ts';
import type { AuthzRow, OrderRow } from '../db/repos/acme-orders.ts';
import { audit } from '../db/repos/audit.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import { withDeadline } from '../temporal/client.ts';
import { searchAttributeKeys } from '../temporal/search-attributes.ts';
import { usableIssuingCa } from './ca-references.ts';
import { enforceAuthzLimits, enforceOrderLimits, enforceValidationLimit } from './rate-limits.ts';
import { changeStatusAndWait } from './revocation.ts';
import { executeUpdate, refusal, refusalType, startOperation, startOrAttach, WORKFLOW_DEADLINE_MS, type RaTemporal } from './workflow.ts';

export interface AcmeRaDeps extends RaTemporal {
  config: Config;
  pool: Pool;
  temporal: Client;
  log: Logger;
}

/** The account a request is made by, and the directory it came through. */
export interface AcmeRequester {
  accountId: string;
  /** The account URL (kid): validation binds the key authorization to it (CAA accounturi). */
  accountUri: string;
  alias: AcmeAlias;
}

/** An identifier of a new order or authorization, as the front end checked it. */
export interface OrderIdentifier {
  /** As requested (wildcards keep "*."). */
  identifier: AcmeIdentifier;
  /** What is validated (without "*."). */
  base: AcmeIdentifier;
  wildcard: boolean;
  /** The challenges offered for it. */
  challengeTypes: ChallengeType[];
}

export interface NewOrder {
  identifiers: OrderIdentifier[];
  /** The certificate profile (the alias's, or the one the ACME profile maps to). */
  profile: string;
  /** The ACME profile the client asked for (RFC draft profiles), if any. */
  acmeProfile?: string;
  /** ARI (RFC 9773): the certID of the certificate this order replaces, and its serial. */
  replaces?: { certId: string; serialHex: string };
}

// ---- read model ------------------------------------------------------------------------

const getOrder = (ra: Pick<AcmeRaDeps, 'pool'>, id: string) => orders.getOrder(ra.pool, id);
const getAuthz = (ra: Pick<AcmeRaDeps, 'pool'>, id: string) => orders.getAuthz(ra.pool, id);
const listOrders = (ra: Pick<AcmeRaDeps, 'pool'>, accountId: string, limit: number, offset: number) =>
  orders.listOrders(ra.pool, accountId, limit, offset);

/**
 * An ACME certificate with the chain of the CA key generation that signed it, and (while
 * that chain's root is being rolled over) the alternate chains through a link certificate
 * to the other root key (RFC 8555 7.4.2), or null.
 */
async function getCertificate(ra: Pick<AcmeRaDeps, 'pool'>, serial: string) {
  const cert = await certificates.get(ra.pool, serial);
  if (!cert?.certDer || cert.protocol !== 'acme') return null;
  const [chain = [], ...alternates] = await cas.certificateChains(ra.pool, cert.caName, cert.caGeneration);
  return { certDer: cert.certDer, requester: cert.requester, chain, alternates };
}

// ---- workflow calls ----------------------------------------------------------------------

/** A workflow call refused or not answered, as a CaError (ACME: malformed / orderNotReady / 503 serverInternal). */
function updateError(what: string, e: unknown): unknown {
  const refused = refusal(e);
  if (refused !== undefined) {
    return refusalType(e) === 'orderNotReady'
      ? new CaError('forbidden', refused, { rule: 'acme.orderNotReady' })
      : new CaError('malformed', refused);
  }
  if (CaError.is(e, 'unavailable')) return new CaError('unavailable', `${what} is not answering (no worker?); try again`);
  return e;
}

/** Runs a workflow call (start, Update) with a deadline; refusals and silence become CaErrors. */
async function withWorkflow<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(what, WORKFLOW_DEADLINE_MS, fn);
  } catch (e) {
    throw updateError(what, e);
  }
}

/**
 * An Update whose outcome the client would otherwise poll for: waits up to
 * acme.answerWaitSeconds for it. When it takes longer, confirms with `accepted` (same update
 * id: no second Update) that the workflow took it, and returns undefined: the answer is then
 * "processing" with Retry-After.
 */
async function updateWithin<R>(
  ra: AcmeRaDeps,
  what: string,
  run: () => Promise<R>,
  accepted: () => Promise<unknown>,
): Promise<R | undefined> {
  const waitMs = ra.config.acme.answerWaitSeconds * 1000;
  if (waitMs > 0) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), waitMs);
    try {
      return await ra.temporal.withAbortSignal(ac.signal, run);
    } catch (e) {
      if (!ac.signal.aborted) throw updateError(what, e);
    } finally {
      clearTimeout(timer);
    }
  }
  await withWorkflow(what, accepted);
  return undefined;
}

function newChallenges(types: ChallengeType[]): ChallengeSpec[] {
  return types.map((type) => ({ id: newId(), type, token: randomBytes(32).toString('base64url') }));
}

function validationSettings(ra: AcmeRaDeps, who: AcmeRequester): ValidationSettings {
  const v = ra.config.validation;
  // Backoff 1, 2, 4, 8, then 10 s: four attempts cover the first 15 s, one more each 10 s.
  return {
    accountUri: who.accountUri,
    caaIdentities: who.alias.caaIdentities,
    maxAttempts: 4 + Math.ceil(Math.max(0, v.retryWindowSeconds - 15) / 10),
    attemptTimeoutSeconds: v.attemptTimeoutSeconds,
    validLifetimeSeconds: ra.config.acme.validAuthzLifetimeSeconds,
  };
}

function authzRecord(who: AcmeRequester, c: OrderIdentifier, expiresAt: Date): AuthzRecord {
  return {
    id: newId(),
    accountId: who.accountId,
    alias: who.alias.name,
    identifier: c.base,
    wildcard: c.wildcard,
    status: 'pending',
    expiresAt: expiresAt.toISOString(),
    challenges: newChallenges(c.challengeTypes),
  };
}

/** What the authorization workflow needs to take over an authorization from the read model. */
function authzInput(ra: AcmeRaDeps, who: AcmeRequester, a: AuthzRow, status: 'pending' | 'valid'): AuthzInput {
  return {
    authz: {
      id: a.id,
      identifier: a.identifier,
      wildcard: a.wildcard,
      status,
      challenges: a.challenges.map((c) => ({ id: c.id, type: c.type as ChallengeType, token: c.token })),
    },
    accountId: who.accountId,
    expiresAt: a.expiresAt.toISOString(),
    validation: validationSettings(ra, who),
  };
}

/** The authorization's own workflow, for Update-with-Start (a run that ended is started again). */
function authzWorkflowStart(ra: AcmeRaDeps, input: AuthzInput) {
  return startOperation(ra, WORKFLOWS.acmeAuthz, {
    key: [input.authz.id],
    args: [input],
    ifClosed: 'rerun',
    search: {
      protocol: 'acme',
      state: `authz-${input.authz.status}`,
      account: input.accountId,
      identifiers: [`${input.authz.identifier.type}:${input.authz.wildcard ? '*.' : ''}${input.authz.identifier.value}`],
    },
  });
}

// ---- requests ----------------------------------------------------------------------------

/**
 * A new order: rate limits, reused valid authorizations, the new ones, the order and its
 * workflow, in one transaction (started before the commit: if Temporal does not take it,
 * nothing is stored; once the rows are visible, the workflow exists). Returns the order as
 * stored.
 */
async function newOrder(ra: AcmeRaDeps, who: AcmeRequester, req: NewOrder): Promise<OrderRow> {
  const accountId = who.accountId;
  // A CA that cannot sign (revoked, expired) is named now, not after the challenges.
  await usableIssuingCa(
    ra.pool,
    ra.config,
    `ACME directory "${who.alias.name || '(default)'}"`,
    who.alias.caName,
    getProfile(ra.config, req.profile),
  );
  let replacesSerial: string | undefined;
  if (req.replaces) {
    const old = await certificates.get(ra.pool, req.replaces.serialHex);
    if (!old || old.requester !== accountId) throw new CaError('malformed', `"replaces" names no certificate of this account`);
    replacesSerial = old.serial;
  }
  const now = Date.now();
  const orderId = newId();
  const orderExpires = new Date(now + ra.config.acme.orderLifetimeSeconds * 1000);
  const authzExpires = new Date(Math.max(now + ra.config.acme.pendingAuthzLifetimeSeconds * 1000, orderExpires.getTime()));
  const authzs: AuthzState[] = [];
  const identifiers = req.identifiers.map((i) => i.identifier);
  try {
    await withTransaction(ra.pool, async (tx) => {
      const limitKeys = await enforceOrderLimits(tx, ra.config.acme.rateLimits, accountId, identifiers);
      const reusable = await orders.lockReusableAuthzs(tx, {
        accountId,
        alias: who.alias.name,
        identifiers: req.identifiers.map((c) => ({ identifier: c.base, wildcard: c.wildcard })),
        until: orderExpires,
      });
      for (const c of req.identifiers) {
        const reused = reusable.get(orders.reuseKey(c.base, c.wildcard));
        if (reused) {
          authzs.push({
            id: reused.id,
            identifier: c.base,
            wildcard: c.wildcard,
            status: 'valid',
            challenges: [],
            validatedAt: reused.validatedAt?.toISOString(),
            method: reused.method ?? undefined,
          });
          continue;
        }
        const record = authzRecord(who, c, authzExpires);
        await orders.insertAuthz(tx, { ...record, ownerOrderId: orderId });
        authzs.push({ id: record.id, identifier: c.base, wildcard: c.wildcard, status: 'pending', challenges: record.challenges });
      }
      const status = authzs.every((a) => a.status === 'valid') ? 'ready' : 'pending';
      await orders.insertOrder(tx, {
        id: orderId,
        accountId,
        alias: who.alias.name,
        status,
        identifiers,
        authzIds: authzs.map((a) => a.id),
        expiresAt: orderExpires.toISOString(),
        profile: req.profile,
        acmeProfile: req.acmeProfile,
        replaces: req.replaces?.certId,
        registeredDomains: limitKeys,
      });
      const input: OrderInput = {
        orderId,
        accountId,
        alias: who.alias.name,
        identifiers,
        status,
        authzs,
        expiresAt: orderExpires.toISOString(),
        profile: req.profile,
        caName: who.alias.caName,
        replacesSerial,
        validation: validationSettings(ra, who),
        caaRecheckSeconds: ra.config.acme.caaRecheckSeconds,
      };
      await withWorkflow(`order ${orderId}`, () =>
        startOrAttach(ra, WORKFLOWS.acmeOrder, {
          key: [orderId],
          args: [input],
          search: { protocol: 'acme', state: status, account: accountId, identifiers: identifiers.map((i) => `${i.type}:${i.value}`) },
        }),
      );
      // Last: the audit chain's head stays locked until the commit.
      await audit(tx, {
        actor: `acme:${accountId}`,
        action: 'acme.order.create',
        object: orderId,
        requestId: orderId,
        details: {
          alias: who.alias.name,
          identifiers: identifiers.map((i) => `${i.type}:${i.value}`),
          profile: req.profile,
          status,
          reusedAuthzs: authzs.filter((a) => a.status === 'valid').map((a) => a.id),
          replaces: replacesSerial,
        },
      });
    });
  } catch (e) {
    if (e instanceof orders.AlreadyReplacedError)
      throw new CaError('conflict', `certificate ${replacesSerial} has already been replaced`, { rule: 'acme.alreadyReplaced' });
    throw e;
  }
  return {
    id: orderId,
    accountId,
    alias: who.alias.name,
    status: authzs.every((a) => a.status === 'valid') ? 'ready' : 'pending',
    identifiers,
    authzIds: authzs.map((a) => a.id),
    expiresAt: orderExpires,
    profile: req.profile,
    acmeProfile: req.acmeProfile ?? null,
    replaces: req.replaces?.certId ?? null,
    error: null,
    serial: null,
    createdAt: new Date(now),
    updatedAt: new Date(now),
  };
}

/** A pre-authorization (newAuthz, RFC 8555 7.4.1): inserted and its workflow started in one transaction. */
async function newAuthz(ra: AcmeRaDeps, who: AcmeRequester, c: OrderIdentifier): Promise<AuthzRow> {
  const record = authzRecord(who, c, new Date(Date.now() + ra.config.acme.pendingAuthzLifetimeSeconds * 1000));
  const input: AuthzInput = {
    authz: { id: record.id, identifier: record.identifier, wildcard: false, status: 'pending', challenges: record.challenges },
    accountId: who.accountId,
    expiresAt: record.expiresAt,
    validation: validationSettings(ra, who),
  };
  await withTransaction(ra.pool, async (tx) => {
    await enforceAuthzLimits(tx, ra.config.acme.rateLimits, who.accountId, record.identifier);
    await orders.insertAuthz(tx, record);
    await withWorkflow(`authorization ${record.id}`, () =>
      startOrAttach(ra, WORKFLOWS.acmeAuthz, {
        key: [record.id],
        args: [input],
        ifClosed: 'rerun',
        search: {
          protocol: 'acme',
          state: 'authz-pending',
          account: who.accountId,
          identifiers: [`${record.identifier.type}:${record.identifier.value}`],
        },
      }),
    );
    await audit(tx, {
      actor: `acme:${who.accountId}`,
      action: 'acme.authz.create',
      object: record.id,
      details: { alias: who.alias.name, identifier: `${record.identifier.type}:${record.identifier.value}` },
    });
  });
  return {
    ...record,
    expiresAt: new Date(record.expiresAt),
    ownerOrderId: null,
    ownerOrderStatus: null,
    validatedAt: null,
    challenges: record.challenges.map((ch) => ({ ...ch, authzId: record.id, status: 'pending', validatedAt: null, error: null })),
  };
}

/**
 * Finalize with a CSR (DER) the front end checked against the order: the order's
 * `finalize` Update. Returns the outcome, or undefined while it is processing.
 */
async function finalize(ra: AcmeRaDeps, orderId: string, csrDer: Uint8Array): Promise<FinalizeOutcome | undefined> {
  const handle = ra.temporal.workflow.getHandle(WORKFLOWS.acmeOrder.id(orderId));
  const options = {
    args: [{ csr: Buffer.from(csrDer).toString('base64') }] as [{ csr: string }],
    updateId: `finalize-${orderId}-${createHash('sha256').update(csrDer).digest('hex').slice(0, 32)}`,
  };
  try {
    return await updateWithin(
      ra,
      `order ${orderId}`,
      () => handle.executeUpdate(finalizeUpdate, options),
      async () => {
        await handle.startUpdate(finalizeUpdate, { ...options, waitForStage: WorkflowUpdateStage.ACCEPTED });
        // Accepted (durable): what the client reads next says so, until the workflow writes on.
        await orders.markOrderProcessing(ra.pool, orderId);
      },
    );
  } catch (e) {
    if (e instanceof WorkflowNotFoundError)
      throw new CaError('forbidden', `order ${orderId} is no longer ready`, { rule: 'acme.orderNotReady' });
    throw e;
  }
}

/**
 * A client answers a pending challenge of a pending authorization. The order's workflow
 * validates an authorization of an open order; any other has a workflow of its own.
 * Returns the outcome, or undefined while it is being validated.
 */
async function respondChallenge(
  ra: AcmeRaDeps,
  who: AcmeRequester,
  a: AuthzRow,
  challengeId: string,
): Promise<ChallengeOutcome | undefined> {
  await enforceValidationLimit(ra.pool, ra.config.acme.rateLimits, who.accountId, a.identifier);
  const what = `authorization ${a.id}`;
  const args: [{ authzId: string; challengeId: string }] = [{ authzId: a.id, challengeId }];
  const updateId = `respond-${challengeId}`;
  const accepted = () => orders.markChallengeProcessing(ra.pool, challengeId);
  const viaAuthzWorkflow = () =>
    updateWithin<ChallengeOutcome>(
      ra,
      what,
      () =>
        ra.temporal.workflow.executeUpdateWithStart(respondChallengeUpdate, {
          args,
          updateId,
          startWorkflowOperation: authzWorkflowStart(ra, authzInput(ra, who, a, 'pending')),
        }),
      async () => {
        await ra.temporal.workflow.startUpdateWithStart(respondChallengeUpdate, {
          args,
          updateId,
          waitForStage: WorkflowUpdateStage.ACCEPTED,
          startWorkflowOperation: authzWorkflowStart(ra, authzInput(ra, who, a, 'pending')),
        });
        await accepted();
      },
    );
  if (!a.ownerOrderId || a.ownerOrderStatus !== 'pending') return viaAuthzWorkflow();
  // Its order is open: the order's workflow validates it.
  const handle = ra.temporal.workflow.getHandle(WORKFLOWS.acmeOrder.id(a.ownerOrderId));
  try {
    return await updateWithin(
      ra,
      what,
      () => handle.executeUpdate(respondChallengeUpdate, { args, updateId }),
      async () => {
        await handle.startUpdate(respondChallengeUpdate, { args, updateId, waitForStage: WorkflowUpdateStage.ACCEPTED });
        await accepted();
      },
    );
  } catch (e) {
    // The order ended just now: the authorization lives on in a workflow of its own.
    if (!(e instanceof WorkflowNotFoundError)) throw e;
    return viaAuthzWorkflow();
  }
}

/**
 * Deactivates a pending or valid authorization (RFC 8555 7.5.2). Its own workflow does it
 * (refused while it is validated) and stops the open orders that use it; Update-with-Start
 * finds a pre-authorization's running workflow.
 */
async function deactivateAuthz(ra: AcmeRaDeps, who: AcmeRequester, a: AuthzRow, status: 'pending' | 'valid'): Promise<void> {
  await withWorkflow(`authorization ${a.id}`, () =>
    ra.temporal.workflow.executeUpdateWithStart(deactivateAuthzUpdate, {
      updateId: `deactivate-${a.id}`,
      startWorkflowOperation: authzWorkflowStart(ra, authzInput(ra, who, a, status)),
    }),
  );
}

/**
 * RFC 8555 7.3.6: a deactivated account's pending orders are canceled (best effort: an
 * order whose workflow does not answer is logged and expires by its own timer).
 */
async function cancelOpenOrders(ra: AcmeRaDeps, accountId: string): Promise<void> {
  for (const id of await orders.openOrderIds(ra.pool, accountId)) {
    try {
      await executeUpdate(ra, WORKFLOWS.acmeOrder.id(id), cancelOrderUpdate, {
        args: [{ by: `acme:${accountId}`, reason: 'the account was deactivated' }],
        updateId: `cancel-${id}`,
        what: `order ${id}`,
      });
    } catch (e) {
      ra.log.warn({ order: id, err: (e as Error).message }, 'could not cancel the order of a deactivated account');
    }
  }
}

// ---- operators (`certflow orders retry|cancel`, the console) ------------------------------

/** An Update the workflow's validator refused is a 'conflict' with the validator's reason. */
async function operatorUpdate<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const refused = refusal(e);
    if (refused !== undefined) throw new CaError('conflict', refused);
    throw e;
  }
}

/** Validates the order's challenges that wait for their next retry now; returns the authorization ids. */
export async function retryOrderValidation(ra: Pick<RaTemporal, 'temporal'>, db: Queryable, id: string): Promise<string[]> {
  const o = await orders.getOrder(db, id);
  if (!o) throw new CaError('notFound', `no order ${id}`, { rule: 'order.unknown' });
  const authzs = await orders.getAuthzs(db, o.authzIds);
  const validating = authzs.filter((a) => a.challenges.some((c) => c.status === 'processing'));
  if (!validating.length)
    throw new CaError('conflict', `order ${id} is ${o.status}: no challenge is being validated`, { rule: 'order.retry' });
  for (const a of validating) {
    // The order's workflow validates the authorizations it created; others
    // (pre-authorizations, those of an ended order) have a workflow of their own.
    const retry = (workflowId: string) =>
      executeUpdate(ra, workflowId, retryValidationUpdate, { args: [{ authzId: a.id }], what: `authorization ${a.id}` });
    const byOrder = async () => {
      try {
        return a.ownerOrderId ? (await retry(WORKFLOWS.acmeOrder.id(a.ownerOrderId)), true) : false;
      } catch (e) {
        if (e instanceof WorkflowNotFoundError || refusal(e) !== undefined) return false;
        throw e;
      }
    };
    if (!(await byOrder())) await operatorUpdate(() => retry(WORKFLOWS.acmeAuthz.id(a.id)));
  }
  return validating.map((a) => a.id);
}

/** Makes an unfinished order invalid (the update id makes a repeated request one cancellation). */
export async function cancelOrder(ra: Pick<RaTemporal, 'temporal'>, id: string, by: string, reason?: string): Promise<void> {
  await operatorUpdate(() =>
    executeUpdate(ra, WORKFLOWS.acmeOrder.id(id), cancelOrderUpdate, {
      args: [{ by, reason }],
      updateId: `cancel-${id}`,
      what: `order ${id}`,
    }),
  );
}

/** The last error of an order's workflow (search attribute CertflowLastError), as the console shows it. */
export async function orderLastError(ra: Pick<RaTemporal, 'temporal'>, orderId: string): Promise<string | null> {
  const d = await withDeadline('Temporal', 3000, () => ra.temporal.workflow.getHandle(WORKFLOWS.acmeOrder.id(orderId)).describe());
  return d.typedSearchAttributes.get(searchAttributeKeys.lastError) ?? null;
}

/** The ACME RA as the front end holds it (a fake in the front end's unit tests). */
export function acmeRa(ra: AcmeRaDeps) {
  return {
    getOrder: (id: string) => getOrder(ra, id),
    getAuthz: (id: string) => getAuthz(ra, id),
    listOrders: (accountId: string, limit: number, offset: number) => listOrders(ra, accountId, limit, offset),
    getCertificate: (serial: string) => getCertificate(ra, serial),
    newOrder: (who: AcmeRequester, req: NewOrder) => newOrder(ra, who, req),
    newAuthz: (who: AcmeRequester, c: OrderIdentifier) => newAuthz(ra, who, c),
    finalize: (orderId: string, csrDer: Uint8Array) => finalize(ra, orderId, csrDer),
    respondChallenge: (who: AcmeRequester, a: AuthzRow, challengeId: string) => respondChallenge(ra, who, a, challengeId),
    deactivateAuthz: (who: AcmeRequester, a: AuthzRow, status: 'pending' | 'valid') => deactivateAuthz(ra, who, a, status),
    cancelOpenOrders: (accountId: string) => cancelOpenOrders(ra, accountId),
    /** revokeCert (RFC 8555 7.6): the revocation workflow. */
    revoke: (input: StatusChangeInput, timeoutMs: number) => changeStatusAndWait(ra, input, timeoutMs),
  };
}
export type AcmeRa = ReturnType<typeof acmeRa>;
