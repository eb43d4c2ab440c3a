/**
 * ACME rate limits (owned by the RA: checked in the transactions that insert orders and
 * accounts), counted atomically: each limit takes a transaction-scoped advisory lock
 * on its key (the account, the registered domain, the client address), counts, and the
 * caller inserts the new row in the same transaction, so that N concurrent requests against
 * a limit of L give exactly L successes. Keys are locked in a fixed order (account first,
 * then domains sorted) so two requests never wait for each other in a cycle.
 *
 * Registered domains come from the Public Suffix List (npm tldts, private suffixes
 * included, so two customers of a hosting provider's suffix are counted apart); an IP
 * identifier counts as its own key.
 */
import { getDomain } from 'tldts';
import type { AcmeIdentifier } from '../../activities/acme-types.ts';
import type { AcmeConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { lockForTransaction } from '../db/locks.ts';
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

/** The CaError rule of a refusal by a rate limit (ACME: rateLimited, with Retry-After from details.retryAfterSeconds). */
const RATE_LIMITED = 'acme.rateLimited';

function lock(tx: Queryable, key: string): Promise<void> {
  return lockForTransaction(tx, `certflow:acme-rate:${key}`);
}

function rateLimited(detail: string, retryAfterSeconds: number): CaError {
  return new CaError('forbidden', detail, {
    rule: RATE_LIMITED,
    details: { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) },
  });
}

function check(count: { count: number; oldest: Date | null }, limit: number, windowMs: number, what: string): void {
  if (count.count < limit) return;
  const retry = ((count.oldest?.getTime() ?? Date.now()) + windowMs - Date.now()) / 1000;
  throw rateLimited(what, retry);
}

/**
 * Checks the limits of a new order inside the transaction that inserts it; returns the
 * limit keys to store with the order (acme_orders.registered_domains).
 */
export async function enforceOrderLimits(
  tx: Queryable,
  limits: Limits,
  accountId: string,
  identifiers: AcmeIdentifier[],
): Promise<string[]> {
  const now = Date.now();
  await lock(tx, `account:${accountId}`);
  check(
    await orders.countRecentOrders(tx, accountId, new Date(now - HOUR)),
    limits.newOrdersPerAccountPerHour,
    HOUR,
    `too many new orders: at most ${limits.newOrdersPerAccountPerHour} per account per hour`,
  );
  for (const id of identifiers) {
    check(
      await orders.countFailedValidations(tx, accountId, { type: id.type, value: id.value.replace(/^\*\./, '') }, new Date(now - HOUR)),
      limits.failedValidationsPerAccountPerIdentifierPerHour,
      HOUR,
      `too many failed validations for ${id.value}: at most ${limits.failedValidationsPerAccountPerIdentifierPerHour} per account and identifier per hour; fix the challenge response first`,
    );
  }
  const keys = limitKeys(identifiers);
  for (const key of keys) {
    await lock(tx, `domain:${key}`);
    check(
      await orders.countOrdersForDomain(tx, key, new Date(now - WEEK)),
      limits.certificatesPerDomainPerWeek,
      WEEK,
      `too many certificates for ${key}: at most ${limits.certificatesPerDomainPerWeek} per week (orders in progress count)`,
    );
  }
  return keys;
}

/** The new-accounts-per-address limit, inside the transaction that inserts the account. */
export async function enforceAccountLimit(tx: Queryable, limits: Limits, address: string | undefined): Promise<void> {
  if (!address) return;
  await lock(tx, `address:${address}`);
  check(
    await accounts.countCreatedFrom(tx, address, new Date(Date.now() - HOUR)),
    limits.newAccountsPerAddressPerHour,
    HOUR,
    `too many new accounts from ${address}: at most ${limits.newAccountsPerAddressPerHour} per hour`,
  );
}
