/**
 * Replay nonces (RFC 8555 6.5, 7.2) that cost no database write to hand out.
 *
 * A nonce is `key id (1 byte) | issue time in ms (6 bytes) | random (9 bytes)` followed by an
 * HMAC-SHA256 (truncated to 16 bytes) of those 16 bytes, base64url: 43 characters. Every
 * server process shares the HMAC key (table acme_nonce_keys, created by the first process
 * that needs it, stored sealed under the secrets key: src/core/secrets.ts), so any process can check a nonce that any other process issued. A nonce is
 * written to Postgres only when it is used (table acme_used_nonces, primary key = its
 * authenticated part): the INSERT either adds the row (first use: accepted) or conflicts
 * (replay: refused), so a nonce is accepted once across any number of processes and across
 * restarts. Rows are kept until the nonce could no longer be accepted anyway (issue time +
 * lifetime + clock skew allowance) and purged in bounded batches in the background.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../core/logger.ts';
import type { Queryable } from '../db/pool.ts';
import * as nonces from '../db/repos/acme-nonces.ts';
import { openSecret, sealSecret, type SecretsKey } from '../core/secrets.ts';

const KEY_ID = 1;
const NONCE_KEY_PURPOSE = `acme nonce key ${KEY_ID}`;
const BODY_BYTES = 16;
const MAC_BYTES = 16;
/** 32 bytes in base64url without padding. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Server processes on different hosts may disagree about the time by this much. */
export const CLOCK_SKEW_MS = 5 * 60_000;

export interface NonceStoreOptions {
  lifetimeSeconds: number;
  /** The secrets key the shared HMAC key is stored under (src/core/secrets.ts). */
  secretsKey: () => Promise<SecretsKey>;
  /** Expired used-nonce rows are purged after every this many uses (default 500). */
  cleanupEvery?: number;
  log?: Pick<Logger, 'warn'>;
  /** Test hook: the clock (ms since the epoch). */
  now?: () => number;
}

export class NonceStore {
  readonly #db: Queryable;
  readonly #lifetimeMs: number;
  readonly #cleanupEvery: number;
  readonly #log?: Pick<Logger, 'warn'>;
  readonly #now: () => number;
  readonly #secretsKey: () => Promise<SecretsKey>;
  #key: Promise<Buffer> | undefined;
  #usedSinceCleanup = 0;
  #cleaning = false;

  constructor(db: Queryable, opts: NonceStoreOptions) {
    this.#db = db;
    this.#lifetimeMs = opts.lifetimeSeconds * 1000;
    this.#cleanupEvery = Math.max(1, opts.cleanupEvery ?? 500);
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#secretsKey = opts.secretsKey;
  }

  /** The shared HMAC key: read (or created) once per process; a failed read is retried next time. */
  #hmacKey(): Promise<Buffer> {
    this.#key ??= (async () => {
      const k = await this.#secretsKey();
      const sealed = await nonces.sealedHmacKey(this.#db, KEY_ID, () => sealSecret(k, NONCE_KEY_PURPOSE, randomBytes(32)));
      return openSecret(k, NONCE_KEY_PURPOSE, sealed, 'the ACME nonce key');
    })().catch((e: unknown) => {
      this.#key = undefined;
      throw e;
    });
    return this.#key;
  }

  #mac(key: Buffer, body: Buffer): Buffer {
    return createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);
  }

  /** A new nonce. No database write: only the first call of a process reads the key. */
  async issue(): Promise<string> {
    const key = await this.#hmacKey();
    const body = Buffer.alloc(BODY_BYTES);
    body[0] = KEY_ID;
    body.writeUIntBE(this.#now(), 1, 6);
    randomBytes(BODY_BYTES - 7).copy(body, 7);
    return Buffer.concat([body, this.#mac(key, body)]).toString('base64url');
  }

  /**
   * Uses a nonce: true exactly once for a nonce issued by any process sharing the key and
   * not older than the lifetime. Forged, foreign, garbled and expired values cost no query.
   */
  async consume(value: string): Promise<boolean> {
    if (!NONCE_PATTERN.test(value)) return false;
    const raw = Buffer.from(value, 'base64url');
    const body = raw.subarray(0, BODY_BYTES);
    if (body[0] !== KEY_ID) return false;
    const key = await this.#hmacKey();
    if (!timingSafeEqual(raw.subarray(BODY_BYTES), this.#mac(key, body))) return false;
    const issuedAt = body.readUIntBE(1, 6);
    const age = this.#now() - issuedAt;
    if (age > this.#lifetimeMs || age < -CLOCK_SKEW_MS) return false;
    const first = await nonces.use(this.#db, body, new Date(issuedAt + this.#lifetimeMs + CLOCK_SKEW_MS));
    if (first) this.#maybeCleanup();
    return first;
  }

  /** Deletes used-nonce rows that can no longer matter; returns how many. */
  cleanup(limit?: number): Promise<number> {
    return nonces.deleteExpired(this.#db, limit);
  }

  /** Every Nth use purges a bounded batch in the background: no request waits for it. */
  #maybeCleanup(): void {
    if (++this.#usedSinceCleanup < this.#cleanupEvery || this.#cleaning) return;
    this.#usedSinceCleanup = 0;
    this.#cleaning = true;
    this.cleanup()
      .catch((e: unknown) => this.#log?.warn({ err: e }, 'deleting expired ACME nonces failed'))
      .finally(() => {
        this.#cleaning = false;
      });
  }
}
