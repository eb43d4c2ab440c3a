/**
 * PKCS#11 key store: CA keys are generated inside an HSM token (SoftHSM in development and
 * tests) and never leave it (CKA_SENSITIVE, CKA_EXTRACTABLE=false). Signing uses a pool of
 * logged-in sessions, and the C_Sign call itself runs on the libuv thread pool
 * (pkcs11js's C_SignAsync), so the event loop keeps serving while the token works.
 */
import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { endianness } from 'node:os';
import pkcs11js from 'pkcs11js';
import type { Mechanism, PKCS11, RsaOAEP, RsaPSS, Template } from 'pkcs11js';
import { CaError, type ErrorKind } from '../core/errors.ts';
import { assertSignAlgFits, hashLength, keyFamily, rsaBits, rsaKeyAlg, type HashName, type SignAlgParts } from './algs.ts';
import { ecdsaRawToDer } from './ecdsa-der.ts';
import { assertKeyId } from './key-id.ts';
import { SessionPool } from './session-pool.ts';
import type { DecryptAlg, KeyAlg, KeyInfo, KeyStore, KeyUsage, SignAlg } from './types.ts';

type Handle = Buffer;

export const DEFAULT_PKCS11_SESSIONS = 4;

export interface Pkcs11KeyStoreOptions {
  /** Path of the PKCS#11 module (CERTFLOW_PKCS11_MODULE). */
  module: string;
  /** Token label (CERTFLOW_PKCS11_TOKEN_LABEL), without the token's trailing blank padding. */
  tokenLabel: string;
  /** User PIN (CERTFLOW_PKCS11_PIN). */
  pin: string;
  /** Number of logged-in sessions, i.e. how many signatures can be in flight (default 4). */
  sessions?: number;
}

// ---- module sharing -----------------------------------------------------------------------

/**
 * C_Initialize / C_Finalize and the login state are per process and module, not per
 * PKCS11 object: a second store on the same module must not initialize again, and the
 * first store's close() must not finalize (or log out) under the second one. Stores on
 * the same module therefore share one reference-counted handle.
 */
interface SharedModule {
  key: string;
  lib: PKCS11;
  refs: number;
  /** false when someone else in this process had initialized it: then we never finalize. */
  ownsInit: boolean;
  /**
   * PIN that logged this process in, per slot. Login is per process, so a second store's
   * C_Login only answers CKR_USER_ALREADY_LOGGED_IN without checking its PIN; comparing
   * with the PIN that did log in keeps a wrong PIN from being accepted silently.
   */
  loginPins: Map<string, string>;
}

const sharedModules = new Map<string, SharedModule>();

function acquireModule(path: string): SharedModule {
  const key = realpathSync(path); // /usr/lib/softhsm/x.so and its multiarch target are one module
  const existing = sharedModules.get(key);
  if (existing) {
    existing.refs++;
    return existing;
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
  } catch (e) {
    throw new CaError('config', `cannot load PKCS#11 module ${path} (CERTFLOW_PKCS11_MODULE): ${(e as Error).message}`, { cause: e });
  }
  let ownsInit = true;
  try {
    // OS locking: C_SignAsync calls the module from libuv worker threads concurrently.
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrOf(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      lib.close();
      throw pkcs11Error(e, `C_Initialize of ${path}`);
    }
    ownsInit = false;
  }
  const shared: SharedModule = { key, lib, refs: 1, ownsInit, loginPins: new Map() };
  sharedModules.set(key, shared);
  return shared;
}

function releaseModule(m: SharedModule): void {
  if (--m.refs > 0) return;
  sharedModules.delete(m.key);
  if (m.ownsInit) ignoreErrors(() => m.lib.C_Finalize());
  ignoreErrors(() => m.lib.close());
}

// ---- errors -------------------------------------------------------------------------------

/** The CKR_* name of a pkcs11js error (its message is exactly that name). */
export function ckrOf(e: unknown): string | undefined {
  return e instanceof Error ? /^CKR_[A-Z0-9_]+/.exec(e.message)?.[0] : undefined;
}

/** Mistakes an operator fixes in the configuration or on the token. */
const CONFIG_CKRS = new Set([
  'CKR_PIN_INCORRECT',
  'CKR_PIN_INVALID',
  'CKR_PIN_LEN_RANGE',
  'CKR_PIN_EXPIRED',
  'CKR_PIN_LOCKED',
  'CKR_USER_PIN_NOT_INITIALIZED',
  'CKR_USER_TYPE_INVALID',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_TOKEN_WRITE_PROTECTED',
  'CKR_SLOT_ID_INVALID',
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_SIZE_RANGE',
  'CKR_TEMPLATE_INCOMPLETE',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_DOMAIN_PARAMS_INVALID',
  'CKR_CURVE_NOT_SUPPORTED',
]);

/** The device or its sessions are (temporarily) unusable: retry later. */
const UNAVAILABLE_CKRS = new Set([
  'CKR_DEVICE_ERROR',
  'CKR_DEVICE_MEMORY',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_SESSION_COUNT',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
  'CKR_FUNCTION_CANCELED',
  'CKR_HOST_MEMORY',
  'CKR_CANT_LOCK',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

const HINTS: Record<string, string> = {
  CKR_PIN_INCORRECT: ' (wrong CERTFLOW_PKCS11_PIN?)',
  CKR_PIN_LOCKED: ' (the user PIN is locked; the security officer must reset it)',
  CKR_MECHANISM_INVALID: ' (the token does not support this algorithm)',
};

/** Wraps any error of a PKCS#11 call in a CaError naming the operation and the CKR code. */
function pkcs11Error(e: unknown, what: string): CaError {
  if (e instanceof CaError) return e;
  const ckr = ckrOf(e);
  if (!ckr) return new CaError('internal', `PKCS#11 ${what} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  const kind: ErrorKind = CONFIG_CKRS.has(ckr) ? 'config' : UNAVAILABLE_CKRS.has(ckr) ? 'unavailable' : 'internal';
  return new CaError(kind, `PKCS#11 ${what} failed: ${ckr}${HINTS[ckr] ?? ''}`, { cause: e, details: { ckr } });
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // best effort clean-up of a session or module that may already be gone
  }
}

// ---- what to do after a failed call ------------------------------------------------------

/** The session itself is unusable; a fresh one will do (signing is safe to repeat). */
const SESSION_GONE_CKRS = new Set(['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_OPERATION_ACTIVE']);
const MAX_RETRIES = 2;
/** Cached object handles went stale (token re-plugged, objects re-created by another process). */
const HANDLE_STALE_CKRS = new Set(['CKR_KEY_HANDLE_INVALID', 'CKR_OBJECT_HANDLE_INVALID']);

// ---- curves and attribute decoding ---------------------------------------------------------

interface CurveInfo {
  alg: KeyAlg;
  jwkCurve: 'P-256' | 'P-384';
  /** DER OBJECT IDENTIFIER of the named curve, the CKA_EC_PARAMS value. */
  params: Buffer;
  /** Byte length of a coordinate and of the group order. */
  size: number;
}

const CURVES: CurveInfo[] = [
  { alg: 'ec-p256', jwkCurve: 'P-256', params: Buffer.from('06082a8648ce3d030107', 'hex'), size: 32 }, // 1.2.840.10045.3.1.7
  { alg: 'ec-p384', jwkCurve: 'P-384', params: Buffer.from('06052b81040022', 'hex'), size: 48 }, // 1.3.132.0.34
];

function curveOf(alg: KeyAlg): CurveInfo {
  const c = CURVES.find((x) => x.alg === alg);
  if (!c) throw new CaError('internal', `${alg} is not an EC key algorithm`);
  return c;
}

/** CK_ULONG attributes come back as native-endian 4- or 8-byte buffers. */
function readUlong(b: Buffer): number {
  const le = endianness() === 'LE';
  if (b.length === 8) return Number(le ? b.readBigUInt64LE() : b.readBigUInt64BE());
  return le ? b.readUInt32LE() : b.readUInt32BE();
}

/**
 * CKA_EC_POINT is, per the standard, the DER OCTET STRING wrapping the point (SoftHSM does
 * this); a few tokens return the bare point. Returns the bare uncompressed point 04||x||y.
 */
export function unwrapEcPoint(attr: Buffer, size: number): Buffer {
  const rawLen = 1 + 2 * size;
  if (attr.length === rawLen && attr[0] === 0x04) return attr;
  if (attr[0] === 0x04) {
    let len = attr[1] ?? 0;
    let offset = 2;
    if (len === 0x81) {
      len = attr[2] ?? 0;
      offset = 3;
    }
    if (len === rawLen && attr.length === offset + len && attr[offset] === 0x04) return attr.subarray(offset);
  }
  throw new CaError('config', `unsupported CKA_EC_POINT encoding (${attr.length} bytes; only uncompressed points are supported)`);
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function spkiFromJwk(jwk: JsonWebKey): Uint8Array {
  // Lets node:crypto do the ASN.1 and also validates the key (an EC point must be on the curve).
  return new Uint8Array(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }));
}

// ---- key templates and mechanisms ------------------------------------------------------------

function keyGenMechanism(alg: KeyAlg): Mechanism {
  return { mechanism: keyFamily(alg) === 'ec' ? pkcs11js.CKM_EC_KEY_PAIR_GEN : pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN };
}

function keyGenTemplates(id: string, alg: KeyAlg, usage: KeyUsage = 'sign'): { publicKey: Template; privateKey: Template } {
  const naming: Template = [
    { type: pkcs11js.CKA_LABEL, value: id },
    { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'utf8') },
    { type: pkcs11js.CKA_TOKEN, value: true },
  ];
  const ec = keyFamily(alg) === 'ec';
  const sign = usage === 'sign';
  if (!sign && ec) throw new CaError('config', `key "${id}": decryption keys must be RSA, not ${alg}`);
  const keyType = ec ? pkcs11js.CKK_EC : pkcs11js.CKK_RSA;
  const publicParams: Template = ec
    ? [{ type: pkcs11js.CKA_EC_PARAMS, value: curveOf(alg).params }]
    : [
        { type: pkcs11js.CKA_MODULUS_BITS, value: rsaBits(alg) },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
      ];
  return {
    publicKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: keyType },
      ...naming,
      ...(sign
        ? [{ type: pkcs11js.CKA_VERIFY, value: true }]
        : [
            { type: pkcs11js.CKA_VERIFY, value: false },
            { type: pkcs11js.CKA_ENCRYPT, value: true },
          ]),
      ...publicParams,
    ],
    privateKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: keyType },
      ...naming,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      // A CA key signs and does nothing else; a key-archive key decrypts and does nothing else.
      { type: pkcs11js.CKA_SIGN, value: sign },
      { type: pkcs11js.CKA_DECRYPT, value: !sign },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ],
  };
}

const PKCS11_HASH: Record<HashName, { hash: number; mgf: number; rsaPkcs: number; rsaPss: number }> = {
  sha256: {
    hash: pkcs11js.CKM_SHA256,
    mgf: pkcs11js.CKG_MGF1_SHA256,
    rsaPkcs: pkcs11js.CKM_SHA256_RSA_PKCS,
    rsaPss: pkcs11js.CKM_SHA256_RSA_PKCS_PSS,
  },
  sha384: {
    hash: pkcs11js.CKM_SHA384,
    mgf: pkcs11js.CKG_MGF1_SHA384,
    rsaPkcs: pkcs11js.CKM_SHA384_RSA_PKCS,
    rsaPss: pkcs11js.CKM_SHA384_RSA_PKCS_PSS,
  },
  sha512: {
    hash: pkcs11js.CKM_SHA512,
    mgf: pkcs11js.CKG_MGF1_SHA512,
    rsaPkcs: pkcs11js.CKM_SHA512_RSA_PKCS,
    rsaPss: pkcs11js.CKM_SHA512_RSA_PKCS_PSS,
  },
};

/** The mechanism and the bytes to pass to C_Sign for one signature. */
function signOperation(parts: SignAlgParts, key: TokenKey, data: Uint8Array): { mechanism: Mechanism; input: Buffer } {
  const h = PKCS11_HASH[parts.hash];
  switch (parts.scheme) {
    case 'ecdsa': {
      // SoftHSM (and many HSMs) only offer raw CKM_ECDSA, so hash in software. X9.62 uses
      // the leftmost bits of the digest when it is longer than the group order; for P-256
      // and P-384 that is a byte-aligned cut, done here because some tokens reject longer
      // input with CKR_DATA_LEN_RANGE instead of truncating.
      const digest = createHash(parts.hash).update(data).digest();
      return { mechanism: { mechanism: pkcs11js.CKM_ECDSA }, input: digest.subarray(0, curveOf(key.alg).size) };
    }
    case 'rsa-pkcs1':
      return { mechanism: { mechanism: h.rsaPkcs }, input: Buffer.from(data) };
    case 'rsa-pss': {
      const parameter: RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: h.hash, mgf: h.mgf, saltLen: hashLength(parts.hash) };
      return { mechanism: { mechanism: h.rsaPss, parameter }, input: Buffer.from(data) };
    }
  }
}

// ---- RSA-OAEP (SHA-256, MGF1-SHA256, empty label) decoding, RFC 8017 7.1.2 ----------------

/** CKRs with which a token refuses the OAEP parameters (rather than the key or the data). */
const OAEP_PARAMS_REFUSED = new Set(['CKR_ARGUMENTS_BAD', 'CKR_MECHANISM_PARAM_INVALID', 'CKR_MECHANISM_INVALID']);

function mgf1Sha256(seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * 32 < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash('sha256').update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** The message of an OAEP-encoded block EM (k bytes), or undefined when it does not decode. */
function oaepDecodeSha256(em: Buffer): Buffer | undefined {
  const hLen = 32;
  const k = em.length;
  if (k < 2 * hLen + 2) return undefined;
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seedMask = mgf1Sha256(maskedDb, hLen);
  const seed = Buffer.from(maskedSeed.map((b, i) => b ^ seedMask[i]!));
  const dbMask = mgf1Sha256(seed, k - hLen - 1);
  const db = Buffer.from(maskedDb.map((b, i) => b ^ dbMask[i]!));
  const lHash = createHash('sha256').digest();
  // Look at every byte before deciding, so the failure reason does not show in the timing.
  let bad = em[0]! | (lHash.equals(db.subarray(0, hLen)) ? 0 : 1);
  let separator = -1;
  for (let i = hLen; i < db.length; i++) {
    const b = db[i]!;
    if (separator < 0 && b === 0x01) separator = i;
    else if (separator < 0 && b !== 0x00) bad |= 1;
  }
  if (bad || separator < 0) return undefined;
  return db.subarray(separator + 1);
}

// ---- the store ---------------------------------------------------------------------------------

/** What the store remembers about a key: object handles stay valid across sessions. */
interface TokenKey {
  alg: KeyAlg;
  spki: Uint8Array;
  /** undefined when the token holds only the public key. */
  privateKey?: Handle;
  /** Signature size in bytes (r||s for ECDSA), so C_Sign's output buffer always fits. */
  signatureSize: number;
}

interface OpenedToken {
  module: SharedModule;
  slot: Handle;
  label: string;
  pin: string;
}

export class Pkcs11KeyStore implements KeyStore {
  readonly backend = 'pkcs11' as const;
  private readonly lib: PKCS11;
  private readonly pool: SessionPool<Handle>;
  private readonly keys = new Map<string, TokenKey>();
  /** Counters for metrics and tests: recoveries should be rare, and zero in normal operation. */
  readonly stats = { retries: 0, sessionsReplaced: 0 };
  /** Ids being generated right now, so two concurrent generate(id) cannot both pass the check. */
  private readonly generating = new Set<string>();
  private closed = false;
  /** The token refused CKM_RSA_PKCS_OAEP with SHA-256: decrypt uses CKM_RSA_X_509 + OAEP decoding in software. */
  private rawOaep = false;

  /** Loads the module, finds the token, opens and logs in `sessions` sessions. */
  static async open(opts: Pkcs11KeyStoreOptions): Promise<Pkcs11KeyStore> {
    const module = acquireModule(opts.module);
    try {
      const slot = findTokenSlot(module.lib, opts.tokenLabel);
      const store = new Pkcs11KeyStore({ module, slot, label: opts.tokenLabel, pin: opts.pin }, opts.sessions ?? DEFAULT_PKCS11_SESSIONS);
      try {
        store.pool.fill();
      } catch (e) {
        await store.pool.close((idle) => idle.forEach((s) => ignoreErrors(() => module.lib.C_CloseSession(s))));
        throw pkcs11Error(e, `log-in to token "${opts.tokenLabel}"`);
      }
      return store;
    } catch (e) {
      releaseModule(module);
      throw e;
    }
  }

  private constructor(
    private readonly token: OpenedToken,
    sessions: number,
  ) {
    this.lib = token.module.lib;
    this.pool = new SessionPool<Handle>({
      size: sessions,
      create: () => this.openSession(),
      destroy: (s) => ignoreErrors(() => this.lib.C_CloseSession(s)),
      closedError: () => new CaError('unavailable', `PKCS#11 key store for token "${token.label}" is closed`),
    });
  }

  async generate(id: string, alg: KeyAlg, usage: KeyUsage = 'sign'): Promise<KeyInfo> {
    assertKeyId(id);
    if (this.generating.has(id)) throw conflict(id, this.token.label);
    this.generating.add(id);
    try {
      // No retry: after a failure half-way the key may or may not exist on the token.
      return await this.withSession(`key generation of "${id}"`, false, async (session) => {
        if (this.findObjects(session, [{ type: pkcs11js.CKA_LABEL, value: id }]).length > 0) throw conflict(id, this.token.label);
        const { publicKey, privateKey } = keyGenTemplates(id, alg, usage);
        await this.lib.C_GenerateKeyPairAsync(session, keyGenMechanism(alg), publicKey, privateKey);
        const key = this.lookupKey(session, id);
        if (!key) throw new CaError('internal', `generated key "${id}" not found on token "${this.token.label}"`);
        return { id, alg: key.alg, spki: key.spki.slice() };
      });
    } finally {
      this.generating.delete(id);
    }
  }

  async get(id: string): Promise<KeyInfo | undefined> {
    assertKeyId(id);
    const key = await this.withSession(`lookup of key "${id}"`, true, async (session) => this.cachedKey(session, id));
    return key && { id, alg: key.alg, spki: key.spki.slice() };
  }

  async sign(id: string, alg: SignAlg, data: Uint8Array): Promise<Uint8Array> {
    assertKeyId(id);
    return this.withSession(`signing with key "${id}"`, true, async (session) => {
      const key = this.cachedKey(session, id);
      if (!key?.privateKey) {
        throw new CaError('notFound', `no private key "${id}" on PKCS#11 token "${this.token.label}"`, { rule: 'key.notFound' });
      }
      const parts = assertSignAlgFits(id, key.alg, alg);
      const { mechanism, input } = signOperation(parts, key, data);
      this.lib.C_SignInit(session, mechanism, key.privateKey);
      const signature = await this.lib.C_SignAsync(session, input, Buffer.alloc(key.signatureSize));
      return parts.scheme === 'ecdsa' ? ecdsaRawToDer(signature) : new Uint8Array(signature);
    });
  }

  async decrypt(id: string, alg: DecryptAlg, data: Uint8Array): Promise<Uint8Array> {
    assertKeyId(id);
    if (alg !== 'rsa-oaep-sha256') throw new CaError('malformed', `unsupported decryption algorithm ${String(alg)}`);
    return this.withSession(`decryption with key "${id}"`, true, async (session) => {
      const key = this.cachedKey(session, id);
      if (!key?.privateKey) {
        throw new CaError('notFound', `no private key "${id}" on PKCS#11 token "${this.token.label}"`, { rule: 'key.notFound' });
      }
      if (keyFamily(key.alg) !== 'rsa') throw new CaError('config', `key "${id}" is ${key.alg}; ${alg} needs an RSA key`);
      const k = key.signatureSize; // the modulus length for RSA
      if (!this.rawOaep) {
        const parameter: RsaOAEP = {
          type: pkcs11js.CK_PARAMS_RSA_OAEP,
          hashAlg: pkcs11js.CKM_SHA256,
          mgf: pkcs11js.CKG_MGF1_SHA256,
          source: 1, // CKZ_DATA_SPECIFIED, with no label
        };
        try {
          this.lib.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter }, key.privateKey);
          return new Uint8Array(await this.lib.C_DecryptAsync(session, Buffer.from(data), Buffer.alloc(k)));
        } catch (e) {
          // Some tokens (SoftHSM 2.6) only offer OAEP with SHA-1 and refuse these parameters
          // at C_DecryptInit; those fall back to raw RSA in the token plus OAEP decoding here.
          if (!OAEP_PARAMS_REFUSED.has(ckrOf(e) ?? '')) throw e;
          this.rawOaep = true;
        }
      }
      if (data.length !== k) throw new CaError('malformed', `decryption with key "${id}" failed: the data is not ${k} bytes long`);
      this.lib.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_X_509 }, key.privateKey);
      const raw = await this.lib.C_DecryptAsync(session, Buffer.from(data), Buffer.alloc(k));
      const em = Buffer.concat([Buffer.alloc(Math.max(0, k - raw.length)), raw]);
      const plain = oaepDecodeSha256(em);
      if (!plain) throw new CaError('malformed', `decryption with key "${id}" failed (wrong key or corrupted data)`);
      return new Uint8Array(plain);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const { module } = this.token;
    await this.pool.close((idle) => {
      // Login state belongs to the whole process: only the last user of the module logs out.
      if (module.refs === 1 && idle[0]) ignoreErrors(() => this.lib.C_Logout(idle[0]!));
      for (const s of idle) ignoreErrors(() => this.lib.C_CloseSession(s));
    });
    this.keys.clear();
    releaseModule(module);
  }

  // ---- sessions ----

  private openSession(): Handle {
    const session = this.lib.C_OpenSession(this.token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      this.login(session);
    } catch (e) {
      ignoreErrors(() => this.lib.C_CloseSession(session));
      throw e;
    }
    return session;
  }

  /** Logs in; login state is shared by all sessions of the process, see SharedModule.loginPins. */
  private login(session: Handle): void {
    const { loginPins } = this.token.module;
    const slot = this.token.slot.toString('hex');
    try {
      this.lib.C_Login(session, pkcs11js.CKU_USER, this.token.pin);
      loginPins.set(slot, this.token.pin);
    } catch (e) {
      if (ckrOf(e) !== 'CKR_USER_ALREADY_LOGGED_IN') throw e;
      const pin = loginPins.get(slot);
      if (pin !== undefined && pin !== this.token.pin) {
        throw new CaError('config', `PKCS#11 log-in to token "${this.token.label}" failed: CKR_PIN_INCORRECT${HINTS.CKR_PIN_INCORRECT}`, {
          details: { ckr: 'CKR_PIN_INCORRECT', reason: 'differs from the PIN this process is logged in with' },
        });
      }
    }
  }

  private isAlive(session: Handle): boolean {
    try {
      this.lib.C_GetSessionInfo(session);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Runs `fn` with a session of its own. On failure the session is repaired or replaced
   * (see recover()); when `retry` is set, the operation is then tried again, at most
   * MAX_RETRIES times (a token reset can cost one retry for the session and one for a
   * stale key handle).
   */
  private async withSession<T>(what: string, retry: boolean, fn: (session: Handle) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let session: Handle;
      try {
        session = await this.pool.acquire();
      } catch (e) {
        throw pkcs11Error(e, `opening a session on token "${this.token.label}"`);
      }
      try {
        const result = await fn(session);
        this.pool.release(session);
        return result;
      } catch (e) {
        const recovered = this.recover(session, e);
        if (!(retry && recovered && attempt < MAX_RETRIES)) throw pkcs11Error(e, what);
        this.stats.retries++;
      }
    }
  }

  /** Gives the session back to the pool in a usable state; true when a retry may succeed. */
  private recover(session: Handle, e: unknown): boolean {
    const ckr = ckrOf(e);
    if (ckr && SESSION_GONE_CKRS.has(ckr)) {
      this.pool.discard(session);
      // One dead session usually means all of them died (token reset, C_CloseAllSessions),
      // and with them the login, which may invalidate handles of private objects too.
      this.stats.sessionsReplaced += 1 + this.pool.sweepIdle((s) => this.isAlive(s));
      this.keys.clear();
      return true;
    }
    if (ckr === 'CKR_USER_NOT_LOGGED_IN') {
      try {
        this.login(session);
      } catch {
        this.pool.discard(session);
        return false;
      }
      this.pool.release(session);
      return true;
    }
    if (ckr && HANDLE_STALE_CKRS.has(ckr)) this.keys.clear();
    this.pool.release(session);
    return ckr !== undefined && HANDLE_STALE_CKRS.has(ckr);
  }

  // ---- objects ----

  private findObjects(session: Handle, template: Template): Handle[] {
    this.lib.C_FindObjectsInit(session, template);
    try {
      const found: Handle[] = [];
      for (let batch = this.lib.C_FindObjects(session, 16); batch.length > 0; batch = this.lib.C_FindObjects(session, 16)) {
        found.push(...batch);
      }
      return found;
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  /**
   * The one object of `objectClass` labelled `id`. Keys made by other tools may share a
   * label; then CKA_ID (which certflow sets to the id's bytes) decides.
   */
  private findKeyObject(session: Handle, objectClass: number, id: string): Handle | undefined {
    const byLabel: Template = [
      { type: pkcs11js.CKA_CLASS, value: objectClass },
      { type: pkcs11js.CKA_LABEL, value: id },
    ];
    let found = this.findObjects(session, byLabel);
    if (found.length > 1) found = this.findObjects(session, [...byLabel, { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'utf8') }]);
    if (found.length > 1) {
      throw new CaError('config', `${found.length} keys labelled "${id}" on PKCS#11 token "${this.token.label}"; labels must be unique`);
    }
    return found[0];
  }

  private cachedKey(session: Handle, id: string): TokenKey | undefined {
    const cached = this.keys.get(id);
    if (cached) return cached;
    const key = this.lookupKey(session, id);
    // Keys without a private half are not cached: the private key may be imported later.
    if (key?.privateKey) this.keys.set(id, key);
    return key;
  }

  private lookupKey(session: Handle, id: string): TokenKey | undefined {
    const publicKey = this.findKeyObject(session, pkcs11js.CKO_PUBLIC_KEY, id);
    if (!publicKey) return undefined;
    const privateKey = this.findKeyObject(session, pkcs11js.CKO_PRIVATE_KEY, id);
    return { ...this.describePublicKey(session, publicKey, id), privateKey };
  }

  private attribute(session: Handle, object: Handle, type: number): Buffer {
    const [attr] = this.lib.C_GetAttributeValue(session, object, [{ type }]);
    if (!attr) throw new CaError('internal', `PKCS#11 module returned no value for attribute 0x${type.toString(16)}`);
    return attr.value;
  }

  /** Algorithm, SPKI and signature size from the public key object. */
  private describePublicKey(session: Handle, publicKey: Handle, id: string): Omit<TokenKey, 'privateKey'> {
    const keyType = readUlong(this.attribute(session, publicKey, pkcs11js.CKA_KEY_TYPE));
    if (keyType === pkcs11js.CKK_EC) {
      const params = this.attribute(session, publicKey, pkcs11js.CKA_EC_PARAMS);
      const curve = CURVES.find((c) => c.params.equals(params));
      if (!curve) throw new CaError('config', `key "${id}" uses an EC curve certflow does not support (params ${params.toString('hex')})`);
      const point = unwrapEcPoint(this.attribute(session, publicKey, pkcs11js.CKA_EC_POINT), curve.size);
      const jwk: JsonWebKey = {
        kty: 'EC',
        crv: curve.jwkCurve,
        x: point.subarray(1, 1 + curve.size).toString('base64url'),
        y: point.subarray(1 + curve.size).toString('base64url'),
      };
      return { alg: curve.alg, spki: spkiFromJwk(jwk), signatureSize: 2 * curve.size };
    }
    if (keyType === pkcs11js.CKK_RSA) {
      const modulus = stripLeadingZeros(this.attribute(session, publicKey, pkcs11js.CKA_MODULUS));
      const exponent = stripLeadingZeros(this.attribute(session, publicKey, pkcs11js.CKA_PUBLIC_EXPONENT));
      const bits = modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24;
      const alg = rsaKeyAlg(bits);
      if (!alg) throw new CaError('config', `key "${id}" is RSA-${bits}; certflow supports RSA 2048, 3072 and 4096`);
      const jwk: JsonWebKey = { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') };
      return { alg, spki: spkiFromJwk(jwk), signatureSize: modulus.length };
    }
    throw new CaError('config', `key "${id}" has a PKCS#11 key type (0x${keyType.toString(16)}) certflow does not support`);
  }
}

function conflict(id: string, label: string): CaError {
  return new CaError('conflict', `a key labelled "${id}" exists already on PKCS#11 token "${label}"`, { rule: 'key.exists' });
}

/** Token labels are blank-padded to 32 bytes in CK_TOKEN_INFO (some modules pad with NULs). */
function trimLabel(label: string): string {
  return label.replace(/[\s\0]+$/, '');
}

function findTokenSlot(lib: PKCS11, wanted: string): Handle {
  let slots: Handle[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (e) {
    throw pkcs11Error(e, 'C_GetSlotList');
  }
  const labels: string[] = [];
  const matches: Handle[] = [];
  for (const slot of slots) {
    let label: string;
    try {
      label = trimLabel(lib.C_GetTokenInfo(slot).label);
    } catch {
      continue; // token removed between C_GetSlotList and C_GetTokenInfo
    }
    labels.push(label);
    if (label === trimLabel(wanted)) matches.push(slot);
  }
  if (matches.length === 0) {
    const present = labels.length ? labels.map((l) => JSON.stringify(l)).join(', ') : 'none';
    throw new CaError('config', `no PKCS#11 token labelled "${wanted}" (CERTFLOW_PKCS11_TOKEN_LABEL); tokens present: ${present}`, {
      rule: 'env.CERTFLOW_PKCS11_TOKEN_LABEL',
    });
  }
  if (matches.length > 1) {
    throw new CaError('config', `${matches.length} PKCS#11 tokens are labelled "${wanted}"; token labels must be unique`, {
      rule: 'env.CERTFLOW_PKCS11_TOKEN_LABEL',
    });
  }
  return matches[0]!;
}
