/**
 * ACME accounts cached in the server process: every kid-signed request needs its account
 * (key and status), and most requests come from a few busy accounts. An account change
 * (key change, deactivation, contact update) is announced with NOTIFY in the transaction
 * that makes it (repos/acme-accounts.ts), and every server process evicts the account on
 * that notification — and at once in the process that made the change. The cache is used
 * only while the LISTEN connection is up; without it (or after a reconnect, when
 * notifications may have been missed) it is emptied and every look-up reads Postgres.
 * Entries also expire after `ttlMs`, as a bound on any staleness nobody foresaw.
 */
import type { Pool } from 'pg';
import type { Logger } from '../core/logger.ts';
import { listen, type Listener } from '../db/listen.ts';
import * as accounts from '../db/repos/acme-accounts.ts';
import type { AcmeAccount } from '../db/repos/acme-accounts.ts';

export interface AccountCacheOptions {
  /** Database URL for the LISTEN connection. */
  url: string;
  ttlMs?: number;
  maxEntries?: number;
  log: Pick<Logger, 'warn' | 'info'>;
}

export class AccountCache {
  readonly #pool: Pool;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #entries = new Map<string, { account: AcmeAccount; at: number }>();
  readonly #listener: Listener;
  /** Bumped by every eviction: a read that started before one does not fill the cache. */
  #epoch = 0;

  constructor(pool: Pool, opts: AccountCacheOptions) {
    this.#pool = pool;
    this.#ttlMs = opts.ttlMs ?? 60_000;
    this.#max = opts.maxEntries ?? 10_000;
    this.#listener = listen({
      url: opts.url,
      channel: accounts.ACCOUNT_CHANNEL,
      onNotify: (id) => this.evict(id),
      onConnectionChange: () => this.clear(),
      log: opts.log,
    });
  }

  /** The account with this id (whatever its status), or null. */
  async get(id: string): Promise<AcmeAccount | null> {
    const hit = this.#entries.get(id);
    if (hit && this.#listener.connected && Date.now() - hit.at < this.#ttlMs) return hit.account;
    const epoch = this.#epoch;
    const account = await accounts.get(this.#pool, id);
    if (account && this.#listener.connected && epoch === this.#epoch) {
      this.#entries.delete(id);
      this.#entries.set(id, { account, at: Date.now() });
      if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return account;
  }

  evict(id: string): void {
    this.#epoch++;
    this.#entries.delete(id);
  }

  clear(): void {
    this.#epoch++;
    this.#entries.clear();
  }

  close(): Promise<void> {
    this.clear();
    return this.#listener.close();
  }
}
