/**
 * ACME resources of RFC 8555 section 7.1.3-7.5: orders, authorizations, challenges,
 * finalize, certificate download, pre-authorization and the account's order list.
 *
 * Reads come from the read model (Postgres). A new order is inserted, with the
 * authorizations it creates, in the transaction that counts it against the rate limits and
 * starts its workflow; every later change is an Update to the order's workflow (or, for an
 * authorization outside an open order, to its own workflow, started on demand with
 * Update-with-Start), with an update id derived from the request and a deadline. A
 * challenge answer and a finalize wait briefly (acme.answerWaitSeconds) for their outcome,
 * so that most clients read `valid` in the answer itself.
 */
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateStage } from '@temporalio/client';
import type { Context } from 'koa';
import { createHash, createPublicKey, randomBytes, type JsonWebKey } from 'node:crypto';
import { isIP } from 'node:net';
import type {
  AcmeIdentifier,
  AuthzInput,
  AuthzRecord,
  AuthzState,
  ChallengeOutcome,
  ChallengeType,
  FinalizeOutcome,
  OrderInput,
  Problem,
  ValidationSettings,
} from '../../activities/acme-types.ts';
import {
  acmeAuthzWorkflow,
  acmeOrderWorkflow,
  cancelOrderUpdate,
  deactivateAuthzUpdate,
  finalizeUpdate,
  respondChallengeUpdate,
} from '../../workflows/index.ts';
import type { AcmeAlias } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { withTransaction } from '../db/pool.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as orders from '../db/repos/acme-orders.ts';
import { audit } from '../db/repos/audit.ts';
import type { AuthzRow, ChallengeRow, OrderRow } from '../db/repos/acme-orders.ts';
import { checkOrderNames, parseCsr, pemEncode } from '../pki/index.ts';
import { withDeadline } from '../temporal/client.ts';
import { searchAttributes } from '../temporal/search-attributes.ts';
import type { AcmeAccount, AcmeDeps, AcmeDirectory, Route, VerifiedRequest } from './api.ts';
import { parseAriCertId } from './ari.ts';
import { compound, problem, PROBLEM_STATUS, problemTypeOf, subproblem, type Subproblem } from './problems.ts';
import { enforceAuthzLimits, enforceOrderLimits, enforceValidationLimit } from './rate-limits.ts';

/** How long a handler waits for a workflow to take an Update (or to start) before answering 503. */
const UPDATE_DEADLINE_MS = 10_000;
const ORDERS_PAGE = 100;

// ---- JSON views (RFC 8555 7.1.3, 7.1.4) ------------------------------------------------

/** A stored problem as sent: with the HTTP status its type implies (RFC 7807 `status`). */
function problemView(p: Problem) {
  const type = problemTypeOf(p.type);
  return { ...p, status: p.status ?? (type ? PROBLEM_STATUS[type] : 400) };
}

function challengeView(dir: AcmeDirectory, authzId: string, c: ChallengeRow) {
  return {
    type: c.type,
    url: dir.url(`/chall/${authzId}/${c.id}`),
    token: c.token,
    status: c.status,
    ...(c.validatedAt ? { validated: c.validatedAt.toISOString() } : {}),
    ...(c.error ? { error: problemView(c.error) } : {}),
  };
}

/** Pending and valid authorizations past their expiry read as expired (the row may lag behind its timer). */
function authzStatusNow(a: AuthzRow): AuthzRow['status'] {
  return (a.status === 'pending' || a.status === 'valid') && a.expiresAt.getTime() <= Date.now() ? 'expired' : a.status;
}

function authzView(dir: AcmeDirectory, a: AuthzRow) {
  return {
    identifier: a.identifier,
    status: authzStatusNow(a),
    expires: a.expiresAt.toISOString(),
    challenges: a.challenges.map((c) => challengeView(dir, a.id, c)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}

/** An open order past its expiry reads as invalid (its workflow's timer makes it so). */
function orderNow(o: OrderRow): OrderRow {
  if ((o.status === 'pending' || o.status === 'ready') && o.expiresAt.getTime() <= Date.now()) {
    return { ...o, status: 'invalid', error: { type: 'urn:ietf:params:acme:error:malformed', detail: 'the order expired' } };
  }
  return o;
}

function orderView(dir: AcmeDirectory, row: OrderRow) {
  const o = orderNow(row);
  return {
    status: o.status,
    expires: o.expiresAt.toISOString(),
    identifiers: o.identifiers,
    authorizations: o.authzIds.map((id) => dir.url(`/authz/${id}`)),
    finalize: dir.url(`/order/${o.id}/finalize`),
    ...(o.serial && o.status === 'valid' ? { certificate: dir.url(`/cert/${o.serial}`) } : {}),
    ...(o.error ? { error: problemView(o.error) } : {}),
    ...(o.acmeProfile ? { profile: o.acmeProfile } : {}),
    ...(o.replaces ? { replaces: o.replaces } : {}),
  };
}

// ---- identifiers -----------------------------------------------------------------------

const LDH_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

interface CheckedIdentifier {
  identifier: AcmeIdentifier; // as requested (wildcards keep "*.")
  base: AcmeIdentifier; // what is validated (without "*.")
  wildcard: boolean;
}

/** Validates and normalizes the identifiers of a new order; all problems at once, as subproblems. */
function checkIdentifiers(alias: AcmeAlias, raw: unknown): CheckedIdentifier[] {
  if (!Array.isArray(raw) || raw.length === 0) throw problem('malformed', 'identifiers must be a non-empty array');
  if (raw.length > 100) throw problem('rejectedIdentifier', 'at most 100 identifiers per order');
  const out = new Map<string, CheckedIdentifier>();
  const subproblems: Subproblem[] = [];
  for (const item of raw as Array<{ type?: unknown; value?: unknown }>) {
    const type = String(item?.type ?? '');
    const value = typeof item?.value === 'string' ? item.value : '';
    const id = { type, value } as AcmeIdentifier;
    if (type !== 'dns' && type !== 'ip') {
      subproblems.push(subproblem('unsupportedIdentifier', `identifier type "${type}" is not supported (dns, ip)`, id));
      continue;
    }
    if (type === 'ip') {
      if (!alias.ipIdentifiers) subproblems.push(subproblem('rejectedIdentifier', 'IP identifiers are not allowed here', id));
      else if (!isIP(value)) subproblems.push(subproblem('malformed', `"${value}" is not an IP address`, id));
      else {
        const normalized = normalizeIp(value);
        out.set(`ip:${normalized}`, {
          identifier: { type: 'ip', value: normalized },
          base: { type: 'ip', value: normalized },
          wildcard: false,
        });
      }
      continue;
    }
    const name = value.toLowerCase().replace(/\.$/, '');
    const wildcard = name.startsWith('*.');
    const base = wildcard ? name.slice(2) : name;
    const labels = base.split('.');
    if (!base || base.length > 253 || labels.length < 2 || !labels.every((l) => LDH_LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)) {
      subproblems.push(subproblem('rejectedIdentifier', `"${value}" is not a valid domain name`, id));
    } else if (wildcard && !alias.wildcard) {
      subproblems.push(subproblem('rejectedIdentifier', 'wildcard identifiers are not allowed here', id));
    } else if (wildcard && !alias.challengeTypes.includes('dns-01')) {
      subproblems.push(subproblem('rejectedIdentifier', 'wildcards need dns-01, which is not offered here', id));
    } else {
      out.set(`dns:${name}`, { identifier: { type: 'dns', value: name }, base: { type: 'dns', value: base }, wildcard });
    }
  }
  if (subproblems.length) throw compound('some identifiers cannot be ordered', subproblems);
  return [...out.values()];
}

function normalizeIp(ip: string): string {
  if (isIP(ip) === 4) return ip;
  // Canonical IPv6 text (RFC 5952) through the URL parser.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Challenge types for an identifier: wildcards dns-01 only, IPs no dns-01 (RFC 8738). */
function challengeTypesFor(alias: AcmeAlias, c: CheckedIdentifier): ChallengeType[] {
  if (c.wildcard) return ['dns-01'];
  if (c.base.type === 'ip') return alias.challengeTypes.filter((t) => t !== 'dns-01');
  return [...alias.challengeTypes];
}

// ---- helpers ---------------------------------------------------------------------------

function account(req: VerifiedRequest | undefined): AcmeAccount {
  if (!req?.account) throw problem('unauthorized', 'this request must be signed by an account (kid)');
  return req.account;
}

function payloadObject(req: VerifiedRequest | undefined): Record<string, unknown> {
  const p = req?.payload;
  if (p === undefined || p === null || typeof p !== 'object' || Array.isArray(p))
    throw problem('malformed', 'the payload must be a JSON object');
  return p as Record<string, unknown>;
}

async function ownedOrder(deps: AcmeDeps, acct: AcmeAccount, id: string): Promise<OrderRow> {
  const o = await orders.getOrder(deps.pool, id);
  if (!o) throw problem('malformed', `no order ${id}`, { status: 404 });
  if (o.accountId !== acct.id) throw problem('unauthorized', `order ${id} belongs to another account`);
  return o;
}

async function ownedAuthz(deps: AcmeDeps, acct: AcmeAccount, id: string): Promise<AuthzRow> {
  const a = await orders.getAuthz(deps.pool, id);
  if (!a) throw problem('malformed', `no authorization ${id}`, { status: 404 });
  if (a.accountId !== acct.id) throw problem('unauthorized', `authorization ${id} belongs to another account`);
  return a;
}

/** A workflow call refused or not answered, as a problem. */
function updateProblem(what: string, e: unknown): unknown {
  if (e instanceof WorkflowUpdateFailedError) {
    const cause = e.cause as { type?: string; message?: string } | undefined;
    return problem(cause?.type === 'orderNotReady' ? 'orderNotReady' : 'malformed', cause?.message ?? e.message);
  }
  if (CaError.is(e, 'unavailable')) {
    return problem('serverInternal', `${what} is not answering (no worker?); try again`, { status: 503, headers: { 'Retry-After': '10' } });
  }
  return e;
}

/** Runs a workflow call (start, Update) with a deadline; refusals and silence become problems. */
async function withWorkflow<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(what, UPDATE_DEADLINE_MS, fn);
  } catch (e) {
    throw updateProblem(what, e);
  }
}

/**
 * An Update whose outcome the client would otherwise poll for: waits up to
 * acme.answerWaitSeconds for it. When it takes longer, confirms with `accepted` (same update
 * id: no second Update) that the workflow took it, and returns undefined: the answer is then
 * "processing" with Retry-After.
 */
async function updateWithin<R>(
  deps: AcmeDeps,
  what: string,
  run: () => Promise<R>,
  accepted: () => Promise<unknown>,
): Promise<R | undefined> {
  const waitMs = deps.config.acme.answerWaitSeconds * 1000;
  if (waitMs > 0) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), waitMs);
    try {
      return await deps.temporal.withAbortSignal(ac.signal, run);
    } catch (e) {
      if (!ac.signal.aborted) throw updateProblem(what, e);
    } finally {
      clearTimeout(timer);
    }
  }
  await withWorkflow(what, accepted);
  return undefined;
}

function newChallenges(types: ChallengeType[]) {
  return types.map((type) => ({ id: newId(), type, token: randomBytes(32).toString('base64url') }));
}

function validationSettings(deps: AcmeDeps, dir: AcmeDirectory, acct: AcmeAccount): ValidationSettings {
  const v = deps.config.validation;
  // Backoff 1, 2, 4, 8, then 10 s: four attempts cover the first 15 s, one more each 10 s.
  return {
    accountUri: dir.accountUrl(acct.id),
    caaIdentities: dir.alias.caaIdentities,
    maxAttempts: 4 + Math.ceil(Math.max(0, v.retryWindowSeconds - 15) / 10),
    attemptTimeoutSeconds: v.attemptTimeoutSeconds,
    validLifetimeSeconds: deps.config.acme.validAuthzLifetimeSeconds,
  };
}

function authzRecord(acct: AcmeAccount, dir: AcmeDirectory, c: CheckedIdentifier, expiresAt: Date): AuthzRecord {
  return {
    id: newId(),
    accountId: acct.id,
    alias: dir.alias.name,
    identifier: c.base,
    wildcard: c.wildcard,
    status: 'pending',
    expiresAt: expiresAt.toISOString(),
    challenges: newChallenges(challengeTypesFor(dir.alias, c)),
  };
}

/** What the authorization workflow needs to take over an authorization from the read model. */
function authzInput(deps: AcmeDeps, dir: AcmeDirectory, acct: AcmeAccount, a: AuthzRow, status: 'pending' | 'valid'): AuthzInput {
  return {
    authz: {
      id: a.id,
      identifier: a.identifier,
      wildcard: a.wildcard,
      status,
      challenges: a.challenges.map((c) => ({ id: c.id, type: c.type as ChallengeType, token: c.token })),
    },
    accountId: acct.id,
    expiresAt: a.expiresAt.toISOString(),
    validation: validationSettings(deps, dir, acct),
  };
}

function authzWorkflowStart(deps: AcmeDeps, input: AuthzInput) {
  return new WithStartWorkflowOperation(acmeAuthzWorkflow, {
    workflowId: `acme-authz-${input.authz.id}`,
    taskQueue: deps.config.temporal.taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: searchAttributes({
      protocol: 'acme',
      state: `authz-${input.authz.status}`,
      account: input.accountId,
      identifiers: [`${input.authz.identifier.type}:${input.authz.wildcard ? '*.' : ''}${input.authz.identifier.value}`],
    }),
  });
}

// ---- handlers --------------------------------------------------------------------------

async function newOrder(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const body = payloadObject(req);
  if (body.notBefore !== undefined || body.notAfter !== undefined) {
    throw problem('malformed', 'notBefore and notAfter are not supported: the profile sets the validity');
  }
  const ids = checkIdentifiers(dir.alias, body.identifiers);
  let profile = dir.alias.profile;
  let acmeProfile: string | undefined;
  if (body.profile !== undefined) {
    acmeProfile = String(body.profile);
    const mapped = dir.alias.profiles[acmeProfile];
    if (!mapped) {
      throw problem('invalidProfile', `unknown profile "${acmeProfile}" (offered: ${Object.keys(dir.alias.profiles).join(', ')})`);
    }
    profile = mapped;
  }
  let replacesSerial: string | undefined;
  let replaces: string | undefined;
  if (body.replaces !== undefined) {
    replaces = String(body.replaces);
    const { serialHex } = parseAriCertId(replaces);
    const old = await certificates.get(deps.pool, serialHex);
    if (!old || old.requester !== acct.id) throw problem('malformed', `"replaces" names no certificate of this account`);
    replacesSerial = old.serial;
  }

  const now = Date.now();
  const orderId = newId();
  const orderExpires = new Date(now + deps.config.acme.orderLifetimeSeconds * 1000);
  const authzExpires = new Date(Math.max(now + deps.config.acme.pendingAuthzLifetimeSeconds * 1000, orderExpires.getTime()));
  const authzs: AuthzState[] = [];
  const identifiers = ids.map((i) => i.identifier);
  try {
    await withTransaction(deps.pool, async (tx) => {
      const limitKeys = await enforceOrderLimits(tx, deps.config.acme.rateLimits, acct.id, identifiers);
      const reusable = await orders.lockReusableAuthzs(tx, {
        accountId: acct.id,
        alias: dir.alias.name,
        identifiers: ids.map((c) => ({ identifier: c.base, wildcard: c.wildcard })),
        until: orderExpires,
      });
      for (const c of ids) {
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
        const record = authzRecord(acct, dir, c, authzExpires);
        await orders.insertAuthz(tx, { ...record, ownerOrderId: orderId });
        authzs.push({ id: record.id, identifier: c.base, wildcard: c.wildcard, status: 'pending', challenges: record.challenges });
      }
      const status = authzs.every((a) => a.status === 'valid') ? 'ready' : 'pending';
      await orders.insertOrder(tx, {
        id: orderId,
        accountId: acct.id,
        alias: dir.alias.name,
        status,
        identifiers,
        authzIds: authzs.map((a) => a.id),
        expiresAt: orderExpires.toISOString(),
        profile,
        acmeProfile,
        replaces,
        registeredDomains: limitKeys,
      });
      const input: OrderInput = {
        orderId,
        accountId: acct.id,
        alias: dir.alias.name,
        identifiers,
        status,
        authzs,
        expiresAt: orderExpires.toISOString(),
        profile,
        caName: dir.alias.caName,
        replacesSerial,
        validation: validationSettings(deps, dir, acct),
        caaRecheckSeconds: deps.config.acme.caaRecheckSeconds,
      };
      // Started before the commit: if Temporal does not take it, nothing is stored; once the
      // rows are visible (to a deactivation that must tell the order), the workflow exists.
      await withWorkflow(`order ${orderId}`, () =>
        deps.temporal.workflow.start(acmeOrderWorkflow, {
          workflowId: `acme-order-${orderId}`,
          taskQueue: deps.config.temporal.taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          typedSearchAttributes: searchAttributes({
            protocol: 'acme',
            state: status,
            account: acct.id,
            identifiers: identifiers.map((i) => `${i.type}:${i.value}`),
          }),
        }),
      );
      // Last: the audit chain's head stays locked until the commit.
      await audit(tx, {
        actor: `acme:${acct.id}`,
        action: 'acme.order.create',
        object: orderId,
        requestId: orderId,
        details: {
          alias: dir.alias.name,
          identifiers: identifiers.map((i) => `${i.type}:${i.value}`),
          profile,
          status,
          reusedAuthzs: authzs.filter((a) => a.status === 'valid').map((a) => a.id),
          replaces: replacesSerial,
        },
      });
    });
  } catch (e) {
    if (e instanceof orders.AlreadyReplacedError)
      throw problem('alreadyReplaced', `certificate ${replacesSerial} has already been replaced`, { status: 409 });
    throw e;
  }
  const row: OrderRow = {
    id: orderId,
    accountId: acct.id,
    alias: dir.alias.name,
    status: authzs.every((a) => a.status === 'valid') ? 'ready' : 'pending',
    identifiers,
    authzIds: authzs.map((a) => a.id),
    expiresAt: orderExpires,
    profile,
    acmeProfile: acmeProfile ?? null,
    replaces: replaces ?? null,
    error: null,
    serial: null,
    createdAt: new Date(now),
    updatedAt: new Date(now),
  };
  ctx.status = 201;
  ctx.set('Location', dir.url(`/order/${orderId}`));
  ctx.body = orderView(dir, row);
}

async function getOrder(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const o = await ownedOrder(deps, account(req), ctx.params.id!);
  if (o.status === 'processing') ctx.set('Retry-After', '1');
  ctx.body = orderView(dir, o);
}

async function finalize(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const o = orderNow(await ownedOrder(deps, acct, ctx.params.id!));
  if (o.status !== 'ready') throw problem('orderNotReady', `the order is ${o.status}, not ready`);
  const body = payloadObject(req);
  if (typeof body.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(body.csr)) throw problem('malformed', 'csr must be base64url DER');
  const der = Buffer.from(body.csr, 'base64url');
  const csr = parseCsr(der);
  checkOrderNames(csr, o.identifiers, 'csr');
  const accountSpki = createPublicKey({ key: acct.jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  if (Buffer.from(csr.spki).equals(accountSpki))
    throw problem('badCSR', "the CSR's public key is the account key; use a key of its own for the certificate (RFC 8555 11.1)");

  const handle = deps.temporal.workflow.getHandle(`acme-order-${o.id}`);
  const options = {
    args: [{ csr: der.toString('base64') }] as [{ csr: string }],
    updateId: `finalize-${o.id}-${createHash('sha256').update(der).digest('hex').slice(0, 32)}`,
  };
  const what = `order ${o.id}`;
  let outcome: FinalizeOutcome | undefined;
  try {
    outcome = await updateWithin(
      deps,
      what,
      () => handle.executeUpdate(finalizeUpdate, options),
      async () => {
        await handle.startUpdate(finalizeUpdate, { ...options, waitForStage: WorkflowUpdateStage.ACCEPTED });
        // Accepted (durable): what the client reads next says so, until the workflow writes on.
        await orders.markOrderProcessing(deps.pool, o.id);
      },
    );
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw problem('orderNotReady', `order ${o.id} is no longer ready`);
    throw e;
  }
  ctx.set('Location', dir.url(`/order/${o.id}`));
  if (!outcome || outcome.status === 'processing') ctx.set('Retry-After', '1');
  ctx.body = orderView(
    dir,
    outcome
      ? { ...o, status: outcome.status, serial: outcome.serial ?? null, error: outcome.error ?? null }
      : { ...o, status: 'processing' },
  );
}

async function listOrders(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  if (ctx.params.id !== acct.id) throw problem('unauthorized', 'the orders of another account');
  const page = Math.max(0, Number(ctx.query.page ?? 0) || 0);
  const rows = await orders.listOrders(deps.pool, acct.id, ORDERS_PAGE + 1, page * ORDERS_PAGE);
  if (rows.length > ORDERS_PAGE) ctx.append('Link', `<${dir.url(`/acct/${acct.id}/orders`)}?page=${page + 1}>;rel="next"`);
  ctx.body = { orders: rows.slice(0, ORDERS_PAGE).map((o) => dir.url(`/order/${o.id}`)) };
}

async function getOrDeactivateAuthz(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const a = await ownedAuthz(deps, acct, ctx.params.id!);
  if (req?.postAsGet) {
    if (a.status === 'pending' && a.challenges.some((c) => c.status === 'processing')) ctx.set('Retry-After', '1');
    ctx.body = authzView(dir, a);
    return;
  }
  const body = payloadObject(req);
  if (body.status !== 'deactivated') throw problem('malformed', 'the only change to an authorization is {"status": "deactivated"}');
  const now = authzStatusNow(a);
  if (now === 'deactivated') {
    ctx.body = authzView(dir, a);
    return;
  }
  if (now !== 'pending' && now !== 'valid') throw problem('malformed', `an authorization that is ${now} cannot be deactivated`);
  // Its own workflow deactivates it (refused while it is validated) and stops the open
  // orders that use it; Update-with-Start finds a pre-authorization's running workflow.
  await withWorkflow(`authorization ${a.id}`, () =>
    deps.temporal.workflow.executeUpdateWithStart(deactivateAuthzUpdate, {
      updateId: `deactivate-${a.id}`,
      startWorkflowOperation: authzWorkflowStart(deps, authzInput(deps, dir, acct, a, now)),
    }),
  );
  ctx.body = authzView(dir, { ...a, status: 'deactivated' });
}

async function challenge(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const a = await ownedAuthz(deps, acct, ctx.params.authz!);
  const c = a.challenges.find((x) => x.id === ctx.params.id);
  if (!c) throw problem('malformed', `no challenge ${ctx.params.id}`, { status: 404 });
  ctx.append('Link', `<${dir.url(`/authz/${a.id}`)}>;rel="up"`);
  if (req?.postAsGet || c.status !== 'pending' || authzStatusNow(a) !== 'pending') {
    // Answering a challenge twice (or after the fact) returns its current state.
    if (c.status === 'processing') ctx.set('Retry-After', '1');
    ctx.body = challengeView(dir, a.id, c);
    return;
  }
  payloadObject(req); // {} per RFC 8555 7.5.1
  if (a.challenges.some((x) => x.status !== 'pending')) {
    throw problem('malformed', 'another challenge of this authorization is being validated');
  }
  await enforceValidationLimit(deps.pool, deps.config.acme.rateLimits, acct.id, a.identifier);
  const what = `authorization ${a.id}`;
  const args: [{ authzId: string; challengeId: string }] = [{ authzId: a.id, challengeId: c.id }];
  const updateId = `respond-${c.id}`;
  const accepted = () => orders.markChallengeProcessing(deps.pool, c.id);
  const viaAuthzWorkflow = () => {
    const startWorkflowOperation = authzWorkflowStart(deps, authzInput(deps, dir, acct, a, 'pending'));
    return updateWithin<ChallengeOutcome>(
      deps,
      what,
      () => deps.temporal.workflow.executeUpdateWithStart(respondChallengeUpdate, { args, updateId, startWorkflowOperation }),
      async () => {
        await deps.temporal.workflow.startUpdateWithStart(respondChallengeUpdate, {
          args,
          updateId,
          waitForStage: WorkflowUpdateStage.ACCEPTED,
          startWorkflowOperation: authzWorkflowStart(deps, authzInput(deps, dir, acct, a, 'pending')),
        });
        await accepted();
      },
    );
  };
  let outcome: ChallengeOutcome | undefined;
  if (a.ownerOrderId && a.ownerOrderStatus === 'pending') {
    // Its order is open: the order's workflow validates it.
    const handle = deps.temporal.workflow.getHandle(`acme-order-${a.ownerOrderId}`);
    try {
      outcome = await updateWithin(
        deps,
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
      outcome = await viaAuthzWorkflow();
    }
  } else {
    outcome = await viaAuthzWorkflow();
  }
  if (!outcome) ctx.set('Retry-After', '1');
  ctx.body = challengeView(dir, a.id, {
    ...c,
    status: outcome?.status ?? 'processing',
    validatedAt: outcome?.validated ? new Date(outcome.validated) : null,
    error: outcome?.error ?? null,
  });
}

async function newAuthz(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  if (!dir.alias.preAuthorization) throw problem('unauthorized', 'pre-authorization is not offered here');
  const body = payloadObject(req);
  const [c] = checkIdentifiers(dir.alias, [body.identifier]);
  if (c!.wildcard) throw problem('rejectedIdentifier', 'wildcard identifiers cannot be pre-authorized (RFC 8555 7.4.1)');
  const record = authzRecord(acct, dir, c!, new Date(Date.now() + deps.config.acme.pendingAuthzLifetimeSeconds * 1000));
  const input: AuthzInput = {
    authz: { id: record.id, identifier: record.identifier, wildcard: false, status: 'pending', challenges: record.challenges },
    accountId: acct.id,
    expiresAt: record.expiresAt,
    validation: validationSettings(deps, dir, acct),
  };
  await withTransaction(deps.pool, async (tx) => {
    await enforceAuthzLimits(tx, deps.config.acme.rateLimits, acct.id, record.identifier);
    await orders.insertAuthz(tx, record);
    await withWorkflow(`authorization ${record.id}`, () =>
      deps.temporal.workflow.start(acmeAuthzWorkflow, {
        workflowId: `acme-authz-${record.id}`,
        taskQueue: deps.config.temporal.taskQueue,
        args: [input],
        typedSearchAttributes: searchAttributes({
          protocol: 'acme',
          state: 'authz-pending',
          account: acct.id,
          identifiers: [`${record.identifier.type}:${record.identifier.value}`],
        }),
      }),
    );
    await audit(tx, {
      actor: `acme:${acct.id}`,
      action: 'acme.authz.create',
      object: record.id,
      details: { alias: dir.alias.name, identifier: `${record.identifier.type}:${record.identifier.value}` },
    });
  });
  ctx.status = 201;
  ctx.set('Location', dir.url(`/authz/${record.id}`));
  ctx.body = authzView(dir, {
    ...record,
    expiresAt: new Date(record.expiresAt),
    ownerOrderId: null,
    ownerOrderStatus: null,
    validatedAt: null,
    challenges: record.challenges.map((ch) => ({ ...ch, authzId: record.id, status: 'pending', validatedAt: null, error: null })),
  });
}

async function certificate(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined): Promise<void> {
  const acct = account(req);
  const cert = await certificates.get(deps.pool, String(ctx.params.serial));
  if (!cert?.certDer || cert.protocol !== 'acme') throw problem('malformed', `no certificate ${ctx.params.serial}`, { status: 404 });
  if (cert.requester !== acct.id) throw problem('unauthorized', 'the certificate belongs to another account');
  ctx.type = 'application/pem-certificate-chain';
  ctx.body =
    pemEncode('CERTIFICATE', cert.certDer) +
    (await cas.issuingChainCached(deps.pool, cert.caName)).map((d) => pemEncode('CERTIFICATE', d)).join('');
}

/** The resource routes, for the protocol shell (router.ts). */
export function orderRoutes(deps: AcmeDeps): Route[] {
  const h =
    (fn: (deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory) => Promise<void>) =>
    (ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory) =>
      fn(deps, ctx, req, dir);
  return [
    { method: 'POST', path: '/new-order', handler: h(newOrder) },
    { method: 'POST', path: '/new-authz', handler: h(newAuthz) },
    { method: 'POST', path: '/order/:id', postAsGet: true, readOnly: true, handler: h(getOrder) },
    { method: 'POST', path: '/order/:id/finalize', handler: h(finalize) },
    { method: 'POST', path: '/acct/:id/orders', postAsGet: true, readOnly: true, handler: h(listOrders) },
    { method: 'POST', path: '/authz/:id', postAsGet: true, handler: h(getOrDeactivateAuthz) },
    { method: 'POST', path: '/chall/:authz/:id', postAsGet: true, handler: h(challenge) },
    { method: 'POST', path: '/cert/:serial', postAsGet: true, readOnly: true, handler: (ctx, req) => certificate(deps, ctx, req) },
  ];
}

/**
 * RFC 8555 7.3.6: a deactivated account's pending orders are canceled (best effort: an
 * order whose workflow does not answer is logged and expires by its own timer).
 */
export async function cancelOpenOrders(deps: AcmeDeps, accountId: string): Promise<void> {
  for (const id of await orders.openOrderIds(deps.pool, accountId)) {
    const handle = deps.temporal.workflow.getHandle(`acme-order-${id}`);
    try {
      await withDeadline(`order ${id}`, UPDATE_DEADLINE_MS, () =>
        handle.executeUpdate(cancelOrderUpdate, {
          args: [{ by: `acme:${accountId}`, reason: 'the account was deactivated' }],
          updateId: `cancel-${id}`,
        }),
      );
    } catch (e) {
      deps.log.warn({ order: id, err: (e as Error).message }, 'could not cancel the order of a deactivated account');
    }
  }
}
