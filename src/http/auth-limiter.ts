/**
 * The one rule for failed authentications on every front end (issue 16, items 3 and 7):
 * the console login (per client address and per user name), EST HTTP Basic and CMP
 * password-based MAC (per client address). Each front end calls guard() around its slow
 * credential check (scrypt, PBM/PBMAC1 iterations):
 *
 * - BEFORE the check, each key takes a slot in Postgres (one locked row, src/db/repos/
 *   auth-failures.ts), so concurrent guesses from any number of processes are counted
 *   exactly and at most `maxFailures` of them per window reach the check;
 * - right credentials give the slot back; a failure keeps it, and the failure that fills
 *   the window locks the key for `lockSeconds` (audited once: auth.lockout);
 * - refused attempts cost no credential check and write no audit entry each: they are
 *   counted and reported in one auth.throttled entry when the key is next allowed.
 *
 * Refusals are CaError 'unauthorized' with rule auth.throttled, HTTP 429 and Retry-After.
 */
import type { AuthFailureLimits, Config, FailureRule } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Queryable } from '../db/pool.ts';
import { audit } from '../db/repos/audit.ts';
import * as failures from '../db/repos/auth-failures.ts';

export type AuthFrontEnd = 'console' | 'est' | 'cmp';

/**
 * The address part of a key: IPv4 as it is (also when mapped into IPv6), IPv6 by its /64
 * prefix (one subscriber usually holds a whole /64).
 */
function addressKey(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function throttledError(frontEnd: AuthFrontEnd, retryAfter: number): CaError {
  return new CaError('unauthorized', `too many failed authentications; try again in ${retryAfter} s`, {
    rule: 'auth.throttled',
    details: { httpStatus: 429, retryAfterSeconds: retryAfter, frontEnd },
  });
}

/** Whether an error of a credential check means "wrong credentials" (counted) rather than a fault. */
function isWrongCredentials(e: unknown): boolean {
  return CaError.is(e, 'unauthorized');
}

interface Slot {
  key: string;
  rule: FailureRule;
}

export class AuthLimiter {
  constructor(
    private readonly db: Queryable,
    private readonly limits: AuthFailureLimits,
    private readonly log?: Pick<Logger, 'warn'>,
  ) {}

  private slots(frontEnd: AuthFrontEnd, who: { address?: string; user?: string }): Slot[] {
    const slots: Slot[] = [];
    if (who.address) slots.push({ key: `${frontEnd}:ip:${addressKey(who.address)}`, rule: this.limits.perAddress });
    if (who.user !== undefined && frontEnd === 'console')
      slots.push({ key: `console:user:${who.user.slice(0, 200)}`, rule: this.limits.perConsoleUser });
    return slots;
  }

  /**
   * Runs `check` (which throws CaError 'unauthorized' for wrong credentials) if every key of
   * `who` has room; refuses with auth.throttled otherwise. Returns what `check` returns.
   */
  async guard<T>(frontEnd: AuthFrontEnd, who: { address?: string; user?: string }, check: () => Promise<T>): Promise<T> {
    const taken: Slot[] = [];
    try {
      for (const slot of this.slots(frontEnd, who)) {
        const a = await failures.attempt(this.db, slot.key, slot.rule);
        if (a.allowed) taken.push(slot);
        if (a.reportRefused > 0) await this.reportRefused(frontEnd, slot.key, a.reportRefused, a.reportSince);
        if (!a.allowed) throw throttledError(frontEnd, a.retryAfter);
      }
    } catch (e) {
      await this.settleAll(frontEnd, taken, true);
      throw e;
    }
    let failed = false;
    try {
      return await check();
    } catch (e) {
      failed = isWrongCredentials(e);
      throw e;
    } finally {
      await this.settleAll(frontEnd, taken, !failed);
    }
  }

  private async settleAll(frontEnd: AuthFrontEnd, slots: Slot[], ok: boolean): Promise<void> {
    for (const slot of slots) {
      try {
        const s = await failures.settle(this.db, slot.key, ok, slot.rule);
        if (s.lockedNow) {
          await audit(this.db, {
            actor: 'system',
            action: 'auth.lockout',
            object: slot.key,
            result: 'denied',
            details: { frontEnd, failures: s.failures, windowSeconds: slot.rule.windowSeconds, lockedUntil: s.lockedUntil },
          });
        }
      } catch (e) {
        // The attempt's own answer matters more; a slot not given back expires with its window.
        this.log?.warn({ key: slot.key, err: errorMessage(e) }, 'could not settle a counted authentication attempt');
      }
    }
  }

  private async reportRefused(frontEnd: AuthFrontEnd, key: string, refused: number, since: Date | null): Promise<void> {
    await audit(this.db, {
      actor: 'system',
      action: 'auth.throttled',
      object: key,
      result: 'denied',
      details: { frontEnd, refused, from: since, to: new Date() },
    });
  }
}

/**
 * guard() with the limits of `deps.config`: the one call a front end puts around its
 * credential check (EST Basic, CMP protection).
 */
export function guardAuthentication<T>(
  deps: { config: Pick<Config, 'authFailures'>; pool: Queryable; log?: Pick<Logger, 'warn'> },
  frontEnd: AuthFrontEnd,
  who: { address?: string; user?: string },
  check: () => Promise<T>,
): Promise<T> {
  return new AuthLimiter(deps.pool, deps.config.authFailures, deps.log).guard(frontEnd, who, check);
}
