/**
 * ACME resources of RFC 8555 section 7.1.3-7.5: orders, authorizations, challenges,
 * finalize, certificate download, pre-authorization and the account's order list.
 * Reads come from the read model (Postgres); every change is an Update to the order's or
 * authorization's workflow, with an update id derived from the request, and a deadline.
 */
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Context } from 'koa';
import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { AcmeIdentifier, AuthzInput, ChallengeType, OrderAuthzRef, OrderInput, Problem } from '../../activities/acme-types.ts';
import {
  acmeAuthzWorkflow,
  acmeOrderWorkflow,
  cancelOrderUpdate,
  deactivateAuthzUpdate,
  finalizeUpdate,
  orderCreatedUpdate,
  respondChallengeUpdate,
} from '../../workflows/index.ts';
import type { AcmeAlias, Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as orders from '../db/repos/acme-orders.ts';
import type { AuthzRow, ChallengeRow, OrderRow } from '../db/repos/acme-orders.ts';
import { parseCsr, pemEncode } from '../pki/index.ts';
import { withDeadline } from '../temporal/client.ts';
import { searchAttributes } from '../temporal/search-attributes.ts';
import type { AcmeAccount, AcmeDeps, AcmeDirectory, Route, VerifiedRequest } from './api.ts';
import { parseAriCertId } from './ari.ts';
import { compound, problem, PROBLEM_STATUS, problemTypeOf, rateLimited, subproblem, type Subproblem } from './problems.ts';

/** How long a handler waits for a workflow to take an Update before answering 503. */
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

function authzView(dir: AcmeDirectory, a: AuthzRow) {
  return {
    identifier: a.identifier,
    status: a.status,
    expires: a.expiresAt.toISOString(),
    challenges: a.challenges.map((c) => challengeView(dir, a.id, c)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}

function orderView(dir: AcmeDirectory, o: OrderRow) {
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
        out.set(`ip:${normalized}`, { identifier: { type: 'ip', value: normalized }, base: { type: 'ip', value: normalized }, wildcard: false });
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
  if (p === undefined || p === null || typeof p !== 'object' || Array.isArray(p)) throw problem('malformed', 'the payload must be a JSON object');
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

/** Runs an Update against a workflow with a deadline; validator refusals become problems. */
async function update<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(what, UPDATE_DEADLINE_MS, fn);
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) {
      const cause = e.cause as { type?: string; message?: string } | undefined;
      const type = cause?.type === 'orderNotReady' ? 'orderNotReady' : 'malformed';
      throw problem(type, cause?.message ?? e.message);
    }
    if (CaError.is(e, 'unavailable')) {
      throw problem('serverInternal', `${what} is not answering (no worker?); try again`, { status: 503, headers: { 'Retry-After': '10' } });
    }
    throw e;
  }
}

function newChallenges(types: ChallengeType[]) {
  return types.map((type) => ({ id: newId(), type, token: randomBytes(32).toString('base64url') }));
}

function authzInput(deps: AcmeDeps, dir: AcmeDirectory, acct: AcmeAccount, c: CheckedIdentifier, expiresAt: Date, createRecords: boolean): AuthzInput {
  const v = deps.config.validation;
  // Backoff 1, 2, 4, 8, then 10 s: four attempts cover the first 15 s, one more each 10 s.
  const attempts = 4 + Math.ceil(Math.max(0, v.retryWindowSeconds - 15) / 10);
  return {
    authzId: newId(),
    accountId: acct.id,
    accountUri: dir.accountUrl(acct.id),
    thumbprint: acct.thumbprint,
    alias: dir.alias.name,
    identifier: c.base,
    wildcard: c.wildcard,
    challenges: newChallenges(challengeTypesFor(dir.alias, c)),
    expiresAt: expiresAt.toISOString(),
    validLifetimeSeconds: deps.config.acme.validAuthzLifetimeSeconds,
    caaIdentities: dir.alias.caaIdentities,
    maxAttempts: attempts,
    attemptTimeoutSeconds: v.attemptTimeoutSeconds,
    orderWorkflowIds: [],
    createRecords,
  };
}

// ---- rate limits -----------------------------------------------------------------------

function registeredDomain(name: string): string {
  // Without a public suffix list: the last two labels (documented approximation).
  return name.split('.').slice(-2).join('.');
}

async function checkRateLimits(deps: AcmeDeps, acct: AcmeAccount, ids: CheckedIdentifier[]): Promise<void> {
  const limits = deps.config.acme.rateLimits;
  const hour = 3600_000;
  const recent = await orders.countRecentOrders(deps.pool, acct.id, new Date(Date.now() - hour));
  if (recent.count >= limits.newOrdersPerAccountPerHour) {
    const retry = ((recent.oldest?.getTime() ?? Date.now()) + hour - Date.now()) / 1000;
    throw rateLimited(`too many new orders: at most ${limits.newOrdersPerAccountPerHour} per account per hour`, retry);
  }
  const week = 7 * 86_400_000;
  for (const domain of new Set(ids.filter((i) => i.base.type === 'dns').map((i) => registeredDomain(i.base.value)))) {
    const issued = await orders.countIssuedForDomain(deps.pool, domain, new Date(Date.now() - week));
    if (issued.count >= limits.certificatesPerDomainPerWeek) {
      const retry = ((issued.oldest?.getTime() ?? Date.now()) + week - Date.now()) / 1000;
      throw rateLimited(`too many certificates for ${domain}: at most ${limits.certificatesPerDomainPerWeek} per week`, retry);
    }
  }
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
    const { rows } = await deps.pool.query('SELECT 1 FROM acme_orders WHERE replaces = $1 AND status <> $2 LIMIT 1', [replaces, 'invalid']);
    if (rows.length) throw problem('alreadyReplaced', `certificate ${serialHex} has already been replaced`, { status: 409 });
    replacesSerial = old.serial;
  }
  await checkRateLimits(deps, acct, ids);

  const now = Date.now();
  const orderExpires = new Date(now + deps.config.acme.orderLifetimeSeconds * 1000);
  const orderId = newId();
  const refs: OrderAuthzRef[] = [];
  const fresh: AuthzInput[] = [];
  for (const c of ids) {
    const reused = await orders.findReusableAuthz(deps.pool, {
      accountId: acct.id,
      alias: dir.alias.name,
      identifier: c.base,
      wildcard: c.wildcard,
      until: orderExpires,
    });
    if (reused) {
      const method = reused.challenges.find((ch) => ch.status === 'valid')?.type;
      refs.push({ id: reused.id, identifier: c.base, wildcard: c.wildcard, status: 'valid', method });
      continue;
    }
    const authzExpires = new Date(Math.max(now + deps.config.acme.pendingAuthzLifetimeSeconds * 1000, orderExpires.getTime()));
    const a = authzInput(deps, dir, acct, c, authzExpires, false);
    fresh.push(a);
    refs.push({ id: a.authzId, identifier: c.base, wildcard: c.wildcard, status: 'pending' });
  }
  const input: OrderInput = {
    orderId,
    accountId: acct.id,
    accountUri: dir.accountUrl(acct.id),
    alias: dir.alias.name,
    identifiers: ids.map((i) => i.identifier),
    authzs: refs,
    newAuthzs: fresh,
    expiresAt: orderExpires.toISOString(),
    profile,
    acmeProfile,
    caName: dir.alias.caName,
    replacesSerial,
    replaces,
    caaIdentities: dir.alias.caaIdentities,
  };
  const start = new WithStartWorkflowOperation(acmeOrderWorkflow, {
    workflowId: `acme-order-${orderId}`,
    taskQueue: deps.config.temporal.taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
    typedSearchAttributes: searchAttributes({
      protocol: 'acme',
      state: 'pending',
      account: acct.id,
      identifiers: input.identifiers.map((i) => `${i.type}:${i.value}`),
    }),
  });
  await update(`order ${orderId}`, () => deps.temporal.workflow.executeUpdateWithStart(orderCreatedUpdate, { startWorkflowOperation: start }));
  const row = await orders.getOrder(deps.pool, orderId);
  if (!row) throw new CaError('internal', `order ${orderId} was created but is not in the read model`);
  ctx.status = 201;
  ctx.set('Location', dir.url(`/order/${orderId}`));
  ctx.body = orderView(dir, row);
}

async function getOrder(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const o = await ownedOrder(deps, account(req), ctx.params.id!);
  if (o.status === 'processing') ctx.set('Retry-After', '1');
  ctx.body = orderView(dir, o);
}

/** The names a CSR asks for: SANs plus a CN (which must be one of them). */
function csrIdentifiers(der: Uint8Array): { names: Set<string>; cn?: string } {
  const csr = parseCsr(der);
  const names = new Set([...csr.sans.dns.map((d) => `dns:${d.toLowerCase()}`), ...csr.sans.ip.map((ip) => `ip:${normalizeIp(ip)}`)]);
  const cn = csr.subject.find((a) => a.type === '2.5.4.3')?.value;
  if (csr.sans.email.length || csr.sans.uri.length) throw problem('badCSR', 'the CSR may only ask for DNS names and IP addresses');
  return { names, cn };
}

async function finalize(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const o = await ownedOrder(deps, acct, ctx.params.id!);
  if (o.status !== 'ready') throw problem('orderNotReady', `the order is ${o.status}, not ready`);
  const body = payloadObject(req);
  if (typeof body.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(body.csr)) throw problem('malformed', 'csr must be base64url DER');
  const der = Buffer.from(body.csr, 'base64url');
  const { names, cn } = csrIdentifiers(der);
  const wanted = new Set(o.identifiers.map((i) => `${i.type}:${i.value}`));
  const extra = [...names].filter((n) => !wanted.has(n));
  const missing = [...wanted].filter((n) => !names.has(n));
  if (extra.length) throw problem('badCSR', `the CSR asks for names that are not in the order: ${extra.join(', ')}`);
  if (missing.length) throw problem('badCSR', `the CSR lacks names of the order: ${missing.join(', ')}`);
  if (cn && !names.has(`dns:${cn.toLowerCase()}`) && !names.has(`ip:${cn}`)) throw problem('badCSR', `the CSR's common name "${cn}" is not one of its names`);
  const handle = deps.temporal.workflow.getHandle(`acme-order-${o.id}`);
  const updateId = `finalize-${o.id}-${createHash('sha256').update(der).digest('hex').slice(0, 32)}`;
  await update(`order ${o.id}`, () => handle.executeUpdate(finalizeUpdate, { args: [{ csr: der.toString('base64') }], updateId }));
  const row = (await orders.getOrder(deps.pool, o.id))!;
  ctx.set('Location', dir.url(`/order/${o.id}`));
  ctx.set('Retry-After', '1');
  // The workflow took the CSR; the read model may not show "processing" yet.
  ctx.body = orderView(dir, row.status === 'ready' ? { ...row, status: 'processing' } : row);
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
  if (!req?.postAsGet) {
    const body = payloadObject(req);
    if (body.status !== 'deactivated') throw problem('malformed', 'the only change to an authorization is {"status": "deactivated"}');
    const handle = deps.temporal.workflow.getHandle(`acme-authz-${a.id}`);
    await update(`authorization ${a.id}`, () => handle.executeUpdate(deactivateAuthzUpdate, { updateId: `deactivate-${a.id}` }));
    ctx.body = authzView(dir, { ...a, status: 'deactivated' });
    return;
  }
  if (a.status === 'pending' && a.challenges.some((c) => c.status === 'processing')) ctx.set('Retry-After', '1');
  ctx.body = authzView(dir, a);
}

async function challenge(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const a = await ownedAuthz(deps, acct, ctx.params.authz!);
  const c = a.challenges.find((x) => x.id === ctx.params.id);
  if (!c) throw problem('malformed', `no challenge ${ctx.params.id}`, { status: 404 });
  ctx.append('Link', `<${dir.url(`/authz/${a.id}`)}>;rel="up"`);
  if (req?.postAsGet || c.status !== 'pending' || a.status !== 'pending') {
    // Answering a challenge twice (or after the fact) returns its current state.
    if (c.status === 'processing') ctx.set('Retry-After', '1');
    ctx.body = challengeView(dir, a.id, c);
    return;
  }
  payloadObject(req); // {} per RFC 8555 7.5.1
  if (a.challenges.some((x) => x.status !== 'pending')) {
    throw problem('malformed', 'another challenge of this authorization is being validated');
  }
  const handle = deps.temporal.workflow.getHandle(`acme-authz-${a.id}`);
  await update(`authorization ${a.id}`, () => handle.executeUpdate(respondChallengeUpdate, { args: [{ challengeId: c.id }], updateId: `respond-${c.id}` }));
  ctx.set('Retry-After', '1');
  ctx.body = challengeView(dir, a.id, { ...c, status: 'processing' });
}

async function newAuthz(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  if (!dir.alias.preAuthorization) throw problem('unauthorized', 'pre-authorization is not offered here');
  const body = payloadObject(req);
  const [c] = checkIdentifiers(dir.alias, [body.identifier]);
  if (c!.wildcard) throw problem('rejectedIdentifier', 'wildcard identifiers cannot be pre-authorized (RFC 8555 7.4.1)');
  const expires = new Date(Date.now() + deps.config.acme.pendingAuthzLifetimeSeconds * 1000);
  const input = authzInput(deps, dir, acct, c!, expires, true);
  await startAuthz(deps.temporal, deps.config, input);
  for (let i = 0; i < 50; i++) {
    const a = await orders.getAuthz(deps.pool, input.authzId);
    if (a) {
      ctx.status = 201;
      ctx.set('Location', dir.url(`/authz/${a.id}`));
      ctx.body = authzView(dir, a);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw problem('serverInternal', 'the authorization was not created in time (no worker?); try again', { status: 503, headers: { 'Retry-After': '10' } });
}

async function startAuthz(client: Client, config: Config, input: AuthzInput): Promise<void> {
  await client.workflow.start(acmeAuthzWorkflow, {
    workflowId: `acme-authz-${input.authzId}`,
    taskQueue: config.temporal.taskQueue,
    args: [input],
    typedSearchAttributes: searchAttributes({ protocol: 'acme', state: 'authz-pending', account: input.accountId }),
  });
}

async function certificate(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined): Promise<void> {
  const acct = account(req);
  const cert = await certificates.get(deps.pool, String(ctx.params.serial));
  if (!cert?.certDer || cert.protocol !== 'acme') throw problem('malformed', `no certificate ${ctx.params.serial}`, { status: 404 });
  if (cert.requester !== acct.id) throw problem('unauthorized', 'the certificate belongs to another account');
  ctx.type = 'application/pem-certificate-chain';
  ctx.body = pemEncode('CERTIFICATE', cert.certDer) + (await cas.issuingChain(deps.pool, cert.caName)).map((d) => pemEncode('CERTIFICATE', d)).join('');
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
    { method: 'POST', path: '/order/:id', postAsGet: true, handler: h(getOrder) },
    { method: 'POST', path: '/order/:id/finalize', handler: h(finalize) },
    { method: 'POST', path: '/acct/:id/orders', postAsGet: true, handler: h(listOrders) },
    { method: 'POST', path: '/authz/:id', postAsGet: true, handler: h(getOrDeactivateAuthz) },
    { method: 'POST', path: '/chall/:authz/:id', postAsGet: true, handler: h(challenge) },
    { method: 'POST', path: '/cert/:serial', postAsGet: true, handler: (ctx, req) => certificate(deps, ctx, req) },
  ];
}

/**
 * RFC 8555 7.3.6: a deactivated account's pending orders are canceled (best effort: an
 * order whose workflow does not answer is logged and expires by its own timer).
 */
export async function cancelOpenOrders(deps: AcmeDeps, accountId: string): Promise<void> {
  const { rows } = await deps.pool.query<{ id: string }>(
    "SELECT id FROM acme_orders WHERE account_id = $1 AND status IN ('pending', 'ready')",
    [accountId],
  );
  for (const { id } of rows) {
    const handle = deps.temporal.workflow.getHandle(`acme-order-${id}`);
    try {
      await withDeadline(`order ${id}`, UPDATE_DEADLINE_MS, () =>
        handle.executeUpdate(cancelOrderUpdate, { args: [{ by: `account ${accountId}`, reason: 'the account was deactivated' }], updateId: `cancel-${id}` }),
      );
    } catch (e) {
      deps.log.warn({ order: id, err: (e as Error).message }, 'could not cancel the order of a deactivated account');
    }
  }
}
