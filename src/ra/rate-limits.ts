/**
 * ACME rate limits (owned by the RA: checked in the transactions that insert orders,
 * authorizations and accounts), counted atomically: each limit takes a transaction-scoped advisory lock
 * on its key (the account, the registered domain, the client address), counts, and the
 * caller inserts the new row in the same transaction, so that N concurrent requests against
 * a limit of L give exactly L successes. Keys are locked in a fixed order (account first,
 * then domains sorted) so two requests never wait for each other in a cycle. The
 * per-domain certificate limit counts certificates, so the transaction that stores one (the
 * signing activity) counts it exactly; a new order is refused early when it is reached.
 *
 * Registered domains come from the Public Suffix List (npm tldts, private suffixes
 * included, so two customers of a hosting provider's suffix are counted apart); an IP
 * identifier counts as its own key.
 */
import { getDomain } from 'tldts';
import type { AcmeIdentifier } from '../../activities/acme-types.ts';
import type { AcmeConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as accounts from '../db/repos/acme-accounts.ts';
import * as orders from '../db/repos/acme-orders.ts';

const HOUR = 3600_000;
const WEEK = 7 * 24 * HOUR;

type Limits = AcmeConfig['rateLimits'];

/** The registered domain (eTLD+1) of a DNS name; the name itself when it has none (e.g. "localhost"). */
function registeredDomain(name: string): string {
  return getDomain(name, { allowPrivateDomains: true }) ?? name;
}

/** The per-domain limit keys of an order's identifiers: registered domains and IP addresses, sorted. */
function limitKeys(identifiers: AcmeIdentifier[]): string[] {
  return [...new Set(identifiers.map((i) => (i.type === 'dns' ? registeredDomain(i.value.replace(/^\*\./, '')) : i.value)))].sort();
}

/** A refusal by a rate limit: ACME renders the rule as rateLimited, with Retry-After from details.retryAfterSeconds. */
function rateLimited(detail: string, retryAfterSeconds: number): CaError {
  return new CaError('forbidden', detail, {
    rule: 'acme.rateLimited',
    details: { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) },
  });
}

function check(count: { count: number; oldest: Date | null }, limit: number, windowMs: number, what: string): void {
  if (count.count < limit) return;
  const retry = ((count.oldest?.getTime() ?? Date.now()) + windowMs - Date.now()) / 1000;
  throw rateLimited(what, retry);
}

/**
 * The limits of every request that creates authorizations — a new order, a pre-authorization
 * (newAuthz) — under the account's lock: new orders and pre-authorizations per hour, pending
 * authorizations (checked, as Boulder does, before the new ones are added), and failed
 * validations of each identifier.
 */
async function enforceAccountLimits(tx: Queryable, limits: Limits, accountId: string, identifiers: AcmeIdentifier[]): Promise<void> {
  const now = Date.now();
  await orders.lockRateKey(tx, `account:${accountId}`);
  check(
    await orders.countRecentOrders(tx, accountId, new Date(now - HOUR)),
    limits.newOrdersPerAccountPerHour,
    HOUR,
    `too many new orders: at most ${limits.newOrdersPerAccountPerHour} per account per hour (pre-authorizations count)`,
  );
  const pending = await orders.countPendingAuthzs(tx, accountId);
  check(
    { count: pending.count, oldest: pending.firstExpiry },
    limits.pendingAuthorizationsPerAccount,
    0,
    `too many pending authorizations: at most ${limits.pendingAuthorizationsPerAccount} per account; answer, deactivate or let them expire first`,
  );
  for (const id of identifiers) await enforceValidationLimit(tx, limits, accountId, id);
}

/**
 * Checks the limits of a new order inside the transaction that inserts it; returns the
 * limit keys to store with the order (acme_orders.registered_domains). The per-domain
 * certificate limit counts issued certificates; the signing activity counts again, exactly,
 * in the transaction that stores the certificate (activities/signing.ts).
 */
export async function enforceOrderLimits(
  tx: Queryable,
  limits: Limits,
  accountId: string,
  identifiers: AcmeIdentifier[],
): Promise<string[]> {
  await enforceAccountLimits(tx, limits, accountId, identifiers);
  const keys = limitKeys(identifiers);
  const full = await orders.domainAtCertificateLimit(tx, keys, limits.certificatesPerDomainPerWeek, new Date(Date.now() - WEEK));
  if (full) {
    throw rateLimited(
      `too many certificates for ${full.key}: at most ${limits.certificatesPerDomainPerWeek} per week, and that many were issued`,
      (full.oldest.getTime() + WEEK - Date.now()) / 1000,
    );
  }
  return keys;
}

/** The limits of a pre-authorization (newAuthz), inside the transaction that inserts it. */
export async function enforceAuthzLimits(tx: Queryable, limits: Limits, accountId: string, identifier: AcmeIdentifier): Promise<void> {
  await enforceAccountLimits(tx, limits, accountId, [identifier]);
}

/**
 * Failed validations per account and identifier: checked for every request that leads to a
 * validation of the identifier — a new order, a pre-authorization, a challenge answer.
 */
export async function enforceValidationLimit(tx: Queryable, limits: Limits, accountId: string, identifier: AcmeIdentifier): Promise<void> {
  const value = identifier.value.replace(/^\*\./, '');
  check(
    await orders.countFailedValidations(tx, accountId, { type: identifier.type, value }, new Date(Date.now() - HOUR)),
    limits.failedValidationsPerAccountPerIdentifierPerHour,
    HOUR,
    `too many failed validations for ${value}: at most ${limits.failedValidationsPerAccountPerIdentifierPerHour} per account and identifier per hour; fix the challenge response first`,
  );
}

/** The new-accounts-per-address limit, inside the transaction that inserts the account. */
export async function enforceAccountLimit(tx: Queryable, limits: Limits, address: string | undefined): Promise<void> {
  if (!address) return;
  await orders.lockRateKey(tx, `address:${address}`);
  check(
    await accounts.countCreatedFrom(tx, address, new Date(Date.now() - HOUR)),
    limits.newAccountsPerAddressPerHour,
    HOUR,
    `too many new accounts from ${address}: at most ${limits.newAccountsPerAddressPerHour} per hour`,
  );
}
