/**
 * Password hashing for EST clients (RFC 7030 3.2.3: HTTP Basic for "external applications"
 * the administrator registers). Hashes are scrypt, stored self-describing as
 * `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>` so that the cost can be raised later
 * without invalidating stored hashes: verification reads the parameters from the encoding.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { CaError } from '../core/errors.ts';

/** Cost of new hashes: N=2^15, r=8 takes ~50-100 ms and 32 MiB per verification. */
const N = 2 ** 15;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/**
 * Bounds for parameters read from a stored encoding: room to raise the cost later (4x
 * memory, 16x work), but a corrupted or hand-edited row must not make one login allocate
 * gigabytes or run for minutes.
 */
const LIMITS = { maxN: 2 ** 17, maxR: 16, maxP: 4, maxMemory: 128 * 2 ** 20, minSalt: 8, maxSalt: 64, minKey: 16, maxKey: 64 };

const MIN_PASSWORD_LENGTH = 12;
/** Far above any sensible password; keeps scrypt's input and the Basic header small. */
const MAX_PASSWORD_LENGTH = 1024;

interface ScryptParams {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/**
 * RFC 8265 OpaqueString (which RFC 7617 names for Basic passwords) compares passwords in
 * NFC: the same password typed on systems that compose differently must still match.
 */
function normalize(password: string): string {
  return password.normalize('NFC');
}

/** Bytes scrypt's large table takes (the p lanes run one after another in OpenSSL). */
const scryptMemory = (n: number, r: number) => 128 * n * r;

/**
 * Node's default maxmem (32 MiB) is exactly the table of N=2^15, r=8, and OpenSSL's small
 * extra allocations on top make that fail: allow twice the table.
 */
function derive(password: string, salt: Buffer, n: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  const options: ScryptOptions = { N: n, r, p, maxmem: 2 * scryptMemory(n, r) };
  return new Promise((resolve, reject) => {
    scrypt(normalize(password), salt, keyBytes, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password for storage (est_clients.password_hash). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, N, R, P, KEY_BYTES);
  return ['scrypt', N, R, P, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/** Strict base64url (no padding, no stray characters: Buffer.from would silently skip them). */
function decodeB64url(s: string | undefined): Buffer | undefined {
  if (!s || !/^[A-Za-z0-9_-]+$/.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64url');
  return bytes.toString('base64url') === s ? bytes : undefined;
}

/** A decimal integer without sign, leading zeros or exponent, within [min, max]. */
function decodeInt(s: string | undefined, min: number, max: number): number | undefined {
  if (!s || !/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  const v = Number(s);
  return v >= min && v <= max ? v : undefined;
}

/** The parameters of an encoded hash, or undefined when it is not one certflow accepts. */
function parseEncoded(encoded: string): ScryptParams | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const n = decodeInt(parts[1], 2, LIMITS.maxN);
  const r = decodeInt(parts[2], 1, LIMITS.maxR);
  const p = decodeInt(parts[3], 1, LIMITS.maxP);
  const salt = decodeB64url(parts[4]);
  const hash = decodeB64url(parts[5]);
  if (n === undefined || r === undefined || p === undefined || !salt || !hash) return undefined;
  if ((n & (n - 1)) !== 0) return undefined; // scrypt requires N to be a power of two
  if (scryptMemory(n, r) > LIMITS.maxMemory) return undefined;
  if (salt.length < LIMITS.minSalt || salt.length > LIMITS.maxSalt) return undefined;
  if (hash.length < LIMITS.minKey || hash.length > LIMITS.maxKey) return undefined;
  return { n, r, p, salt, hash };
}

/**
 * Whether `password` matches `encoded`. A wrong password and a malformed encoding both give
 * false (never an exception): a broken row must lock its client out, not crash the request.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const params = parseEncoded(encoded);
  if (!params) return false;
  const actual = await derive(password, params.salt, params.n, params.r, params.p, params.hash.length);
  return timingSafeEqual(actual, params.hash);
}

/**
 * Random bytes in the encoding of a current hash: verifying against it costs what a real
 * verification costs and never succeeds (no password is known to match it).
 */
const NOTHING = ['scrypt', N, R, P, randomBytes(SALT_BYTES).toString('base64url'), randomBytes(KEY_BYTES).toString('base64url')].join('$');

/**
 * Spends the time of one verification and returns false. For unknown user names: answering
 * them faster than a wrong password would tell an attacker which names are registered.
 */
export async function verifyAgainstNothing(password: string): Promise<false> {
  await verifyPassword(password, NOTHING);
  return false;
}

/**
 * The administrator's rule for new passwords: at least MIN_PASSWORD_LENGTH characters
 * (code points, so that a non-ASCII password is not penalized by its UTF-16 length) and no
 * control characters, which RFC 7617 forbids in Basic credentials (a pasted newline would
 * otherwise produce a password no client can send).
 */
export function checkPasswordPolicy(password: string): void {
  const length = [...normalize(password)].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new CaError('malformed', `the password must have at least ${MIN_PASSWORD_LENGTH} characters (it has ${length})`, {
      rule: 'estClient.password.length',
    });
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new CaError('malformed', `the password must have at most ${MAX_PASSWORD_LENGTH} characters`, {
      rule: 'estClient.password.length',
    });
  }
  if (/\p{Cc}/u.test(password)) {
    throw new CaError('malformed', 'the password must not contain control characters (newline, tab, ...)', {
      rule: 'estClient.password.control',
    });
  }
}

export interface VerifiedCacheOptions {
  /** Default 1000; the oldest entry is dropped when full. */
  maxEntries?: number;
  /** Default 5 minutes. */
  ttlMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Remembers successful verifications for a short time. EST devices poll (202 + Retry-After)
 * and re-enroll, and each request would otherwise cost a full scrypt (~50-100 ms, 32 MiB).
 *
 * Entries are keyed by sha256(name, password, encoded hash): the map never holds a password,
 * only a successful triple can produce a hit, and a password change (new encoding) misses at
 * once. The cache only replaces the scrypt call: the caller still reads the client row on
 * every request, so removing or disabling a client takes effect immediately.
 */
export class VerifiedCache {
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: VerifiedCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 1000;
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  private static key(name: string, password: string, encoded: string): string {
    // Length-prefixed fields: ("ab", "c") and ("a", "bc") must not share a key.
    const h = createHash('sha256');
    for (const field of [name, normalize(password), encoded]) {
      const bytes = Buffer.from(field, 'utf8');
      h.update(`${bytes.length}:`).update(bytes);
    }
    return h.digest('hex');
  }

  has(name: string, password: string, encoded: string): boolean {
    const key = VerifiedCache.key(name, password, encoded);
    const expires = this.entries.get(key);
    if (expires === undefined) return false;
    if (expires <= this.now()) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  add(name: string, password: string, encoded: string): void {
    const key = VerifiedCache.key(name, password, encoded);
    // Re-inserting moves the key to the end of the Map's insertion order (the newest).
    this.entries.delete(key);
    this.entries.set(key, this.now() + this.ttlMs);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The process-wide cache the EST front end uses. */
export const verifiedPasswords = new VerifiedCache();

/** verifyPassword, skipped when the same name, password and hash were verified recently. */
export async function verifyPasswordCached(
  name: string,
  password: string,
  encoded: string,
  cache: VerifiedCache = verifiedPasswords,
): Promise<boolean> {
  if (cache.has(name, password, encoded)) return true;
  const ok = await verifyPassword(password, encoded);
  if (ok) cache.add(name, password, encoded);
  return ok;
}
