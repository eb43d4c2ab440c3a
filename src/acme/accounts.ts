/**
 * ACME accounts (RFC 8555 7.3): new-account (with terms of service and external account
 * binding), the account resource (fetch, update contacts, agree to new terms, deactivate)
 * and key-change. Accounts live in Postgres only: no workflow is involved.
 */
import type { Context } from 'koa';
import type { JWK } from 'jose';
import { newId } from '../core/ids.ts';
import { withTransaction } from '../db/pool.ts';
import * as accounts from '../db/repos/acme-accounts.ts';
import { KeyInUseError } from '../db/repos/acme-accounts.ts';
import * as eabKeys from '../db/repos/acme-eab.ts';
import { audit } from '../db/repos/audit.ts';
import type { AcmeAccount, AcmeDeps, AcmeDirectory, ShellRoute, VerifiedRequest } from './api.ts';
import { verifyExternalAccountBinding } from './eab.ts';
import { checkPublicJwk, jwkThumbprint, verifyInnerJws } from './jws.ts';
import { AcmeProblem, problem } from './problems.ts';
import { enforceAccountLimit } from '../ra/rate-limits.ts';

/** More would be a mailing list, not a contact. */
const MAX_CONTACTS = 10;

// ---- views and helpers -----------------------------------------------------------------

/** The account object (RFC 8555 7.1.2). */
function accountView(dir: AcmeDirectory, a: AcmeAccount) {
  return {
    status: a.status,
    contact: a.contact,
    termsOfServiceAgreed: a.tosAgreed !== null,
    orders: dir.url(`/acct/${a.id}/orders`),
    createdAt: a.createdAt.toISOString(),
  };
}

function sendAccount(ctx: Context, dir: AcmeDirectory, a: AcmeAccount, status: number): void {
  ctx.status = status;
  ctx.set('Location', dir.accountUrl(a.id));
  ctx.body = accountView(dir, a);
}

function signedByAccount(req: VerifiedRequest | undefined): AcmeAccount {
  if (!req?.account) throw problem('unauthorized', 'this request must be signed by an account key ("kid")');
  return req.account;
}

function payloadOf(req: VerifiedRequest): Record<string, unknown> {
  return (req.payload ?? {}) as Record<string, unknown>;
}

// Local part: RFC 5322 dot-atom characters; domain: LDH labels with an alphabetic TLD.
const MAILBOX =
  /^[A-Za-z0-9!#$&'*+/=^_`{|}~-]+(?:\.[A-Za-z0-9!#$&'*+/=^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

/**
 * The "contact" of a new-account or update payload (RFC 8555 7.3): mailto: URLs of one
 * plain address each. Other schemes are unsupportedContact; header fields ("?subject="),
 * several addresses in one URL and addresses that are not addresses are invalidContact.
 */
export function validateContacts(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((c) => typeof c === 'string')) {
    throw problem('malformed', '"contact" must be an array of strings');
  }
  if (value.length > MAX_CONTACTS) throw problem('invalidContact', `at most ${MAX_CONTACTS} contacts`);
  return value.map((contact: string) => {
    const colon = contact.indexOf(':');
    const scheme = colon > 0 ? contact.slice(0, colon).toLowerCase() : '';
    if (scheme !== 'mailto') throw problem('unsupportedContact', `contact "${contact}": only mailto: URLs are supported`);
    const address = contact.slice(colon + 1);
    if (address.includes('?')) throw problem('invalidContact', `contact "${contact}": header fields (?...) are not allowed`);
    if (address.includes(',')) throw problem('invalidContact', `contact "${contact}": one address per mailto: URL`);
    if (address.length > 254 || !MAILBOX.test(address))
      throw problem('invalidContact', `contact "${contact}": "${address}" is not an email address`);
    return `mailto:${address}`;
  });
}

// ---- new-account (7.3, 7.3.1, 7.3.4) --------------------------------------------------------

/** An account that exists for the key: 200 with its URL, unless it may no longer be used. */
function existingAccount(ctx: Context, dir: AcmeDirectory, a: AcmeAccount): void {
  if (a.status !== 'valid') throw problem('unauthorized', `the account of this key is ${a.status}`);
  sendAccount(ctx, dir, a, 200);
}

/** The terms URL a new account agrees to; refused without agreement where the directory has terms. */
function agreedTerms(dir: AcmeDirectory, payload: Record<string, unknown>): string | null {
  const terms = dir.alias.termsOfService;
  if (!terms) return null;
  if (payload.termsOfServiceAgreed !== true) {
    throw problem('malformed', `this directory requires agreement to its terms of service (${terms}): send "termsOfServiceAgreed": true`);
  }
  return terms;
}

async function eabKidFor(deps: AcmeDeps, dir: AcmeDirectory, req: VerifiedRequest, thumbprint: string): Promise<string | null> {
  const binding = payloadOf(req).externalAccountBinding;
  if (binding === undefined) {
    if (dir.alias.eabRequired) {
      throw problem(
        'externalAccountRequired',
        'this directory requires an external account binding: ask the CA operator for a key id and MAC key',
      );
    }
    return null;
  }
  return verifyExternalAccountBinding(deps.pool, deps.config, binding, {
    alias: dir.alias.name,
    url: req.url,
    accountThumbprint: thumbprint,
  });
}

async function newAccount(deps: AcmeDeps, ctx: Context, req: VerifiedRequest, dir: AcmeDirectory): Promise<void> {
  const jwk = req.jwk!;
  const payload = payloadOf(req);
  const thumbprint = await jwkThumbprint(jwk);
  const existing = await accounts.getByThumbprint(deps.pool, dir.alias.name, thumbprint);
  if (existing) return existingAccount(ctx, dir, existing);
  if (payload.onlyReturnExisting === true) throw problem('accountDoesNotExist', 'no account exists for this key');
  const contact = validateContacts(payload.contact);
  const tosAgreed = agreedTerms(dir, payload);
  const eabKid = await eabKidFor(deps, dir, req, thumbprint);
  const id = newId();
  const created = await withTransaction(deps.pool, async (tx) => {
    await enforceAccountLimit(tx, deps.config.acme.rateLimits, ctx.ip || undefined);
    const row = await accounts.insert(tx, {
      id,
      alias: dir.alias.name,
      jwk,
      thumbprint,
      contact,
      tosAgreed,
      eabKid,
      createdIp: ctx.ip || undefined,
    });
    if (!row) return null; // a concurrent request created the account of this key first
    // Same transaction as the insert: a key is used up exactly when its account exists.
    if (eabKid && !(await eabKeys.bind(tx, eabKid, id))) {
      throw problem('unauthorized', `external account binding: key id "${eabKid}" has been used already`);
    }
    await audit(tx, {
      actor: `acme:${id}`,
      action: 'acme.account.create',
      object: id,
      details: { alias: dir.alias.name, contact, tosAgreed, eabKid },
    });
    return row;
  });
  if (!created) {
    const winner = await accounts.getByThumbprint(deps.pool, dir.alias.name, thumbprint);
    if (!winner) throw problem('serverInternal', 'the account of this key vanished; try again');
    return existingAccount(ctx, dir, winner);
  }
  deps.log.info({ account: id, alias: dir.alias.name, eab: eabKid ?? undefined }, 'ACME account created');
  sendAccount(ctx, dir, created, 201);
}

// ---- account resource (7.3.2, 7.3.3, 7.3.6) ------------------------------------------------

function accountChanges(dir: AcmeDirectory, account: AcmeAccount, payload: Record<string, unknown>): accounts.AccountChanges {
  const changes: accounts.AccountChanges = {};
  if (payload.status !== undefined && payload.status !== account.status) {
    if (payload.status !== 'deactivated') throw problem('malformed', `an account's status can only be changed to "deactivated"`);
    changes.status = 'deactivated';
  }
  if (payload.contact !== undefined) changes.contact = validateContacts(payload.contact);
  // Agreement is to the terms as they are now: the URL identifies the version (RFC 8555 7.3.3).
  if (payload.termsOfServiceAgreed === true && dir.alias.termsOfService) changes.tosAgreed = dir.alias.termsOfService;
  return changes;
}

async function accountResource(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const account = signedByAccount(req);
  if (ctx.params.id !== account.id) throw problem('unauthorized', 'the request is signed by another account than the one it addresses');
  if (req!.postAsGet) return sendAccount(ctx, dir, account, 200);
  const changes = accountChanges(dir, account, payloadOf(req!));
  if (!Object.keys(changes).length) return sendAccount(ctx, dir, account, 200);
  const updated = await withTransaction(deps.pool, async (tx) => {
    const row = await accounts.update(tx, account.id, changes);
    if (row) {
      const action = changes.status === 'deactivated' ? 'acme.account.deactivate' : 'acme.account.update';
      await audit(tx, { actor: `acme:${account.id}`, action, object: account.id, details: { ...changes } });
    }
    return row;
  });
  deps.accountCache?.evict(account.id);
  if (!updated) throw problem('unauthorized', `account ${account.id} is no longer valid`);
  if (changes.status) {
    deps.log.info({ account: account.id }, 'ACME account deactivated');
    await deps.ra.cancelOpenOrders(account.id);
  }
  sendAccount(ctx, dir, updated, 200);
}

// ---- key-change (7.3.5) ------------------------------------------------------------------

/** 409 with the URL of the account that has the key already (RFC 8555 7.3.5). */
function keyInUse(dir: AcmeDirectory, accountId: string): AcmeProblem {
  return problem('malformed', 'another account uses the new key already', {
    status: 409,
    headers: { Location: dir.accountUrl(accountId) },
  });
}

async function oldKeyMatches(oldKey: unknown, account: AcmeAccount): Promise<boolean> {
  if (typeof oldKey !== 'object' || oldKey === null)
    throw problem('malformed', 'the key change lacks "oldKey" (the current account key as a JWK)');
  const { thumbprint } = await checkPublicJwk(oldKey as JWK);
  return thumbprint === account.thumbprint;
}

async function keyChange(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const account = signedByAccount(req);
  const inner = await verifyInnerJws(req!.payload, req!.url);
  if (inner.payload.account !== dir.accountUrl(account.id)) {
    throw problem(
      'unauthorized',
      `the key change is for account ${JSON.stringify(inner.payload.account)}, but signed by ${dir.accountUrl(account.id)}`,
    );
  }
  if (!(await oldKeyMatches(inner.payload.oldKey, account)))
    throw problem('unauthorized', '"oldKey" is not the current key of the account');
  const holder = await accounts.getByThumbprint(deps.pool, dir.alias.name, inner.thumbprint);
  if (holder) throw keyInUse(dir, holder.id);
  let updated: AcmeAccount | null;
  try {
    updated = await withTransaction(deps.pool, async (tx) => {
      const row = await accounts.changeKey(tx, {
        id: account.id,
        oldThumbprint: account.thumbprint,
        jwk: inner.jwk,
        thumbprint: inner.thumbprint,
      });
      if (row) {
        await audit(tx, {
          actor: `acme:${account.id}`,
          action: 'acme.account.keyChange',
          object: account.id,
          details: { from: account.thumbprint, to: inner.thumbprint },
        });
      }
      return row;
    });
  } catch (e) {
    // Another account took the key between the check above and the update.
    if (!(e instanceof KeyInUseError)) throw e;
    const taker = await accounts.getByThumbprint(deps.pool, dir.alias.name, inner.thumbprint);
    throw taker ? keyInUse(dir, taker.id) : problem('malformed', 'another account uses the new key already', { status: 409 });
  }
  deps.accountCache?.evict(account.id);
  if (!updated)
    throw problem('unauthorized', 'the account changed meanwhile (another key change or a deactivation); fetch it and try again');
  deps.log.info({ account: account.id }, 'ACME account key changed');
  sendAccount(ctx, dir, updated, 200);
}

/** POST /new-account, /acct/:id and /key-change. */
export function accountRoutes(deps: AcmeDeps): ShellRoute[] {
  return [
    { method: 'POST', path: '/new-account', auth: 'jwk', handler: (ctx, req, dir) => newAccount(deps, ctx, req!, dir) },
    // Exempt from the terms check: this is where an account agrees to new terms.
    {
      method: 'POST',
      path: '/acct/:id',
      auth: 'kid',
      postAsGet: true,
      termsExempt: true,
      handler: (ctx, req, dir) => accountResource(deps, ctx, req, dir),
    },
    { method: 'POST', path: '/key-change', auth: 'kid', handler: (ctx, req, dir) => keyChange(deps, ctx, req, dir) },
  ];
}
