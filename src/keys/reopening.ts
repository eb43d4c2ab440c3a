/**
 * A key store that survives its token going away. A PKCS#11 token that is removed and put
 * back (an HSM that restarts, a SoftHSM token directory restored, a network HSM that lost
 * its sessions) is not seen again by a module that stays initialized: its sessions, object
 * handles and even its slot are gone. When an operation fails that way, this wrapper
 * closes the store (the module is finalized with its last user), opens a new one (which
 * initializes the module again and finds the token by label) and retries the operation
 * once. While the token stays away every operation fails at once with a clear
 * CaError('unavailable') naming the token, and the store is reopened at most once per
 * `reopenEveryMs`, so the worker never needs a restart: signing resumes when the token is
 * back (the workflows retry with backoff).
 */
import { CaError, errorMessage } from '../core/errors.ts';
import type { DecryptAlg, KeyAlg, KeyInfo, KeyStore, KeyUsage, SignAlg } from './types.ts';

export interface ReopeningOptions {
  /** How the token is named in messages ("PKCS#11 token \"certflow\""). */
  describe: string;
  /** At most one reopen attempt per this many ms while the token is away (default 1000). */
  reopenEveryMs?: number;
  warn?: (msg: string) => void;
}

export class ReopeningKeyStore implements KeyStore {
  readonly backend: KeyStore['backend'];
  #inner: KeyStore | undefined;
  #opening: Promise<KeyStore> | undefined;
  #lastFailure = 0;
  #lastError = '';
  /** Keys this store has seen: one of them missing means the token went away, not that it never had it. */
  readonly #known = new Set<string>();
  #closed = false;

  constructor(
    first: KeyStore,
    private readonly open: () => Promise<KeyStore>,
    private readonly opts: ReopeningOptions,
  ) {
    this.backend = first.backend;
    this.#inner = first;
  }

  generate(id: string, alg: KeyAlg, usage?: KeyUsage): Promise<KeyInfo> {
    // Never retried: after a failure half-way the key may or may not exist on the token.
    return this.#store()
      .then((s) => s.generate(id, alg, usage))
      .then((k) => this.#remember(k));
  }

  get(id: string): Promise<KeyInfo | undefined> {
    return this.#run(async (s) => {
      const key = await s.get(id);
      if (!key && this.#known.has(id)) throw new CaError('unavailable', `key "${id}" is no longer on ${this.opts.describe}`);
      return key && this.#remember(key);
    });
  }

  sign(id: string, alg: SignAlg, data: Uint8Array): Promise<Uint8Array> {
    return this.#run((s) => s.sign(id, alg, data));
  }

  decrypt(id: string, alg: DecryptAlg, data: Uint8Array): Promise<Uint8Array> {
    return this.#run((s) => s.decrypt(id, alg, data));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const inner = this.#inner;
    this.#inner = undefined;
    await inner?.close();
  }

  #remember(key: KeyInfo): KeyInfo {
    this.#known.add(key.id);
    return key;
  }

  async #run<T>(fn: (s: KeyStore) => Promise<T>): Promise<T> {
    const store = await this.#store();
    try {
      return await fn(store);
    } catch (e) {
      if (!tokenTrouble(e)) throw e;
      this.opts.warn?.(`${this.opts.describe} failed (${errorMessage(e)}); reopening it`);
      await this.#drop(store);
      return fn(await this.#store());
    }
  }

  async #store(): Promise<KeyStore> {
    if (this.#closed) throw new CaError('unavailable', `the key store of ${this.opts.describe} is closed`);
    if (this.#inner) return this.#inner;
    if (!this.#opening) {
      if (Date.now() - this.#lastFailure < (this.opts.reopenEveryMs ?? 1000)) throw this.#away();
      this.#opening = this.open().then(
        (s) => {
          this.#inner = s;
          this.opts.warn?.(`${this.opts.describe} is open again`);
          return s;
        },
        (e: unknown) => {
          this.#lastFailure = Date.now();
          this.#lastError = errorMessage(e);
          throw this.#away();
        },
      );
      this.#opening.finally(() => (this.#opening = undefined)).catch(() => {});
    }
    return this.#opening;
  }

  async #drop(store: KeyStore): Promise<void> {
    if (this.#inner !== store) return;
    this.#inner = undefined;
    await store.close().catch(() => {});
  }

  #away(): CaError {
    return new CaError('unavailable', `${this.opts.describe} is not available (${this.#lastError}); signing waits for it`, {
      rule: 'keys.tokenAway',
    });
  }
}

/**
 * Errors after which a fresh module session may help: the device or its sessions are gone
 * ('unavailable'), a key that was there is missing, or the token no longer answers as
 * configured ('config' from a token that lost its login). Wrong requests ('malformed',
 * 'conflict') are not retried.
 */
function tokenTrouble(e: unknown): boolean {
  return e instanceof CaError ? ['unavailable', 'config', 'notFound', 'internal'].includes(e.kind) : true;
}
