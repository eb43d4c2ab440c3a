/**
 * Replay nonces (RFC 8555 6.5, 7.2) kept in Postgres, so that any number of server
 * processes share them: a nonce issued by one process is accepted once by whichever
 * process gets the request that uses it, and never again.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/logger.ts';
import type { Queryable } from '../db/pool.ts';
import * as nonces from '../db/repos/acme-nonces.ts';

/** 128 random bits, base64url without padding: 22 characters. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export interface NonceStoreOptions {
  lifetimeSeconds: number;
  /** Expired rows are deleted after every this many issued nonces (default 200). */
  cleanupEvery?: number;
  log?: Pick<Logger, 'warn'>;
}

export class NonceStore {
  readonly #db: Queryable;
  readonly #lifetimeSeconds: number;
  readonly #cleanupEvery: number;
  readonly #log?: Pick<Logger, 'warn'>;
  #issuedSinceCleanup = 0;
  #cleaning = false;

  constructor(db: Queryable, opts: NonceStoreOptions) {
    this.#db = db;
    this.#lifetimeSeconds = opts.lifetimeSeconds;
    this.#cleanupEvery = Math.max(1, opts.cleanupEvery ?? 200);
    this.#log = opts.log;
  }

  /** A new nonce, stored before it is returned (so it is valid the moment a client sees it). */
  async issue(): Promise<string> {
    const value = randomBytes(16).toString('base64url');
    await nonces.insert(this.#db, value, this.#lifetimeSeconds);
    this.#maybeCleanup();
    return value;
  }

  /** Uses a nonce: true exactly once for a nonce issued here and not yet expired. */
  async consume(value: string): Promise<boolean> {
    // Anything else cannot be one of ours: no database round trip for garbage.
    if (!NONCE_PATTERN.test(value)) return false;
    return nonces.consume(this.#db, value);
  }

  /** Deletes expired nonces now; returns how many. */
  cleanup(limit?: number): Promise<number> {
    return nonces.deleteExpired(this.#db, limit);
  }

  /**
   * Unused nonces pile up (clients fetch more than they use). Instead of a timer per process,
   * every Nth issue deletes a bounded batch of expired rows, in the background: the request
   * that triggers it does not wait, and a failure only costs a log line.
   */
  #maybeCleanup(): void {
    if (++this.#issuedSinceCleanup < this.#cleanupEvery || this.#cleaning) return;
    this.#issuedSinceCleanup = 0;
    this.#cleaning = true;
    this.cleanup()
      .catch((e: unknown) => this.#log?.warn({ err: e }, 'deleting expired ACME nonces failed'))
      .finally(() => {
        this.#cleaning = false;
      });
  }
}
