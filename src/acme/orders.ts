/**
 * ACME resources of RFC 8555 section 7.1.3-7.5: orders, authorizations, challenges,
 * finalize, certificate download, pre-authorization and the account's order list.
 *
 * The front end's half (Boulder's WFE): parse and check the request, authorize it (the
 * account owns what it names), call the registration authority (src/ra/acme.ts: workflows,
 * rate limits, read-model transactions) and render its answer as RFC 8555 JSON. Reads come
 * from the read model through the RA too.
 */
import type { Context } from 'koa';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { isIP } from 'node:net';
import type { AcmeIdentifier, ChallengeType, Problem } from '../../activities/acme-types.ts';
import type { AcmeAlias } from '../config/index.ts';
import type { AuthzRow, ChallengeRow, OrderRow } from '../db/repos/acme-orders.ts';
import { checkOrderNames, parseCsr, pemEncode } from '../pki/index.ts';
import type { AcmeRequester, OrderIdentifier } from '../ra/acme.ts';
import type { AcmeAccount, AcmeDeps, AcmeDirectory, Route, VerifiedRequest } from './api.ts';
import { parseAriCertId } from './ari.ts';
import { compound, problem, PROBLEM_STATUS, problemTypeOf, subproblem, type Subproblem } from './problems.ts';

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

type CheckedIdentifier = Omit<OrderIdentifier, 'challengeTypes'>;

/**
 * Validates and normalizes the identifiers of a new order, with the challenges offered
 * for each; all problems at once, as subproblems.
 */
function checkIdentifiers(alias: AcmeAlias, raw: unknown): OrderIdentifier[] {
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
  return [...out.values()].map((c) => ({ ...c, challengeTypes: challengeTypesFor(alias, c) }));
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

/** The account and directory of a request, as the RA takes them. */
function requester(acct: AcmeAccount, dir: AcmeDirectory): AcmeRequester {
  return { accountId: acct.id, accountUri: dir.accountUrl(acct.id), alias: dir.alias };
}

function payloadObject(req: VerifiedRequest | undefined): Record<string, unknown> {
  const p = req?.payload;
  if (p === undefined || p === null || typeof p !== 'object' || Array.isArray(p))
    throw problem('malformed', 'the payload must be a JSON object');
  return p as Record<string, unknown>;
}

async function ownedOrder(deps: AcmeDeps, acct: AcmeAccount, id: string): Promise<OrderRow> {
  const o = await deps.ra.getOrder(id);
  if (!o) throw problem('malformed', `no order ${id}`, { status: 404 });
  if (o.accountId !== acct.id) throw problem('unauthorized', `order ${id} belongs to another account`);
  return o;
}

async function ownedAuthz(deps: AcmeDeps, acct: AcmeAccount, id: string): Promise<AuthzRow> {
  const a = await deps.ra.getAuthz(id);
  if (!a) throw problem('malformed', `no authorization ${id}`, { status: 404 });
  if (a.accountId !== acct.id) throw problem('unauthorized', `authorization ${id} belongs to another account`);
  return a;
}

// ---- handlers --------------------------------------------------------------------------

async function newOrder(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const body = payloadObject(req);
  if (body.notBefore !== undefined || body.notAfter !== undefined) {
    throw problem('malformed', 'notBefore and notAfter are not supported: the profile sets the validity');
  }
  const identifiers = checkIdentifiers(dir.alias, body.identifiers);
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
  let replaces: { certId: string; serialHex: string } | undefined;
  if (body.replaces !== undefined) {
    const certId = String(body.replaces);
    replaces = { certId, serialHex: parseAriCertId(certId).serialHex };
  }
  const order = await deps.ra.newOrder(requester(acct, dir), { identifiers, profile, acmeProfile, replaces });
  ctx.status = 201;
  ctx.set('Location', dir.url(`/order/${order.id}`));
  ctx.body = orderView(dir, order);
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

  const outcome = await deps.ra.finalize(o.id, der);
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
  const rows = await deps.ra.listOrders(acct.id, ORDERS_PAGE + 1, page * ORDERS_PAGE);
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
  await deps.ra.deactivateAuthz(requester(acct, dir), a, now);
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
  const outcome = await deps.ra.respondChallenge(requester(acct, dir), a, c.id);
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
  const authz = await deps.ra.newAuthz(requester(acct, dir), c!);
  ctx.status = 201;
  ctx.set('Location', dir.url(`/authz/${authz.id}`));
  ctx.body = authzView(dir, authz);
}

/**
 * The certificate with the chain of the CA key that signed it. While that chain's root is
 * being rolled over, the chain through the link certificate to the other root key is
 * offered as well: `Link: <…/cert/<serial>/1>;rel="alternate"` (RFC 8555 7.4.2).
 */
async function certificate(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const acct = account(req);
  const cert = await deps.ra.getCertificate(String(ctx.params.serial));
  if (!cert) throw problem('malformed', `no certificate ${ctx.params.serial}`, { status: 404 });
  if (cert.requester !== acct.id) throw problem('unauthorized', 'the certificate belongs to another account');
  const chains = [cert.chain, ...cert.alternates];
  const serial = String(ctx.params.serial);
  const index = ctx.params.alt === undefined ? 0 : Number(ctx.params.alt);
  const chain = Number.isInteger(index) ? chains[index] : undefined;
  if (!chain) throw problem('malformed', `no alternate chain ${ctx.params.alt} of certificate ${serial}`, { status: 404 });
  chains.forEach((_c, i) => {
    if (i !== index) ctx.append('Link', `<${dir.url(i === 0 ? `/cert/${serial}` : `/cert/${serial}/${i}`)}>;rel="alternate"`);
  });
  ctx.type = 'application/pem-certificate-chain';
  ctx.body = pemEncode('CERTIFICATE', cert.certDer) + chain.map((d) => pemEncode('CERTIFICATE', d)).join('');
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
    { method: 'POST', path: '/cert/:serial', postAsGet: true, readOnly: true, handler: h(certificate) },
    { method: 'POST', path: '/cert/:serial/:alt', postAsGet: true, readOnly: true, handler: h(certificate) },
  ];
}
