/**
 * Software key store: CA keys generated with node:crypto and kept on disk as encrypted
 * PKCS#8 PEM files (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC), one file per key id.
 *
 *   <dir>/<id>.key.pem   encrypted private key, mode 0600 — the authoritative file
 *   <dir>/<id>.json      { id, alg, created } for humans and tooling
 *
 * The directory itself is created with mode 0700.
 */
import {
  constants as cryptoConstants,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  randomBytes,
  sign as signCb,
  type KeyObject,
} from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CaError } from '../core/errors.ts';
import { paths, type Config } from '../config/index.ts';
import { assertSignAlgFits, hashLength, keyFamily, rsaBits, rsaKeyAlg } from './algs.ts';
import { assertKeyId } from './key-id.ts';
import { generateKeyPair } from '../pki/keygen.ts';
import type { DecryptAlg, KeyAlg, KeyInfo, KeyStore, KeyUsage, SignAlg } from './types.ts';

// crypto.sign with a callback runs in the libuv thread pool, so RSA-4096 signing does not
// stall the event loop (the synchronous form would).
const signAsync = promisify(signCb) as (alg: string, data: Uint8Array, key: Parameters<typeof signCb>[2]) => Promise<Buffer>;

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

export interface SoftwareKeyStoreOptions {
  /** Directory holding the key files (normally `paths(config).keysDir`). */
  dir: string;
  /** Passphrase protecting every private key file. */
  passphrase: string;
}

interface LoadedKey {
  alg: KeyAlg;
  privateKey: KeyObject;
  spki: Uint8Array;
}

interface KeyMetadata {
  id: string;
  alg: KeyAlg;
  created: string;
}

export class SoftwareKeyStore implements KeyStore {
  readonly backend = 'software' as const;
  private readonly dir: string;
  private readonly passphrase: string;
  /** Decrypted keys. Promises, so concurrent first uses of a key decrypt it only once. */
  private readonly cache = new Map<string, Promise<LoadedKey | undefined>>();

  constructor(opts: SoftwareKeyStoreOptions) {
    if (!opts.passphrase) throw new CaError('config', 'the software key store needs a non-empty passphrase');
    this.dir = opts.dir;
    this.passphrase = opts.passphrase;
  }

  // `usage` does not change anything in a software key file.
  async generate(id: string, alg: KeyAlg, _usage: KeyUsage = 'sign'): Promise<KeyInfo> {
    assertKeyId(id);
    await ensurePrivateDir(this.dir);
    // Cheap early check so an RSA-4096 generation is not wasted; the authoritative check
    // is the exclusive link() in writeNewFile, which also covers concurrent generators.
    if (await exists(this.keyFile(id))) throw conflict(id);

    const privateKey = await generateKey(alg);
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: this.passphrase }) as string;
    await writeNewFile(this.keyFile(id), pem, () => conflict(id));
    const meta: KeyMetadata = { id, alg, created: new Date().toISOString() };
    await replaceFile(this.metaFile(id), `${JSON.stringify(meta, null, 2)}\n`);

    const loaded: LoadedKey = { alg, privateKey, spki: spkiOf(privateKey) };
    this.cache.set(id, Promise.resolve(loaded));
    return { id, alg, spki: loaded.spki.slice() };
  }

  /**
   * Stores an existing private key (an imported CA's) under `id`, encrypted like generated
   * keys. Importing the same key again is a no-op; another key under that id is a conflict.
   */
  async importKey(id: string, privateKey: KeyObject): Promise<KeyInfo> {
    assertKeyId(id);
    const alg = keyAlgOf(id, privateKey);
    const spki = spkiOf(privateKey);
    const existing = await this.load(id);
    if (existing) {
      if (!Buffer.from(existing.spki).equals(Buffer.from(spki))) throw conflict(id);
      return { id, alg: existing.alg, spki: existing.spki.slice() };
    }
    await ensurePrivateDir(this.dir);
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: this.passphrase }) as string;
    await writeNewFile(this.keyFile(id), pem, () => conflict(id));
    const meta: KeyMetadata = { id, alg, created: new Date().toISOString() };
    await replaceFile(this.metaFile(id), `${JSON.stringify(meta, null, 2)}\n`);
    this.cache.set(id, Promise.resolve({ alg, privateKey, spki }));
    return { id, alg, spki: spki.slice() };
  }

  async get(id: string): Promise<KeyInfo | undefined> {
    assertKeyId(id);
    const key = await this.load(id);
    return key && { id, alg: key.alg, spki: key.spki.slice() };
  }

  async sign(id: string, alg: SignAlg, data: Uint8Array): Promise<Uint8Array> {
    assertKeyId(id);
    const key = await this.load(id);
    if (!key) throw new CaError('notFound', `no CA key "${id}" in ${this.dir}`, { rule: 'key.notFound' });
    const { scheme, hash } = assertSignAlgFits(id, key.alg, alg);
    switch (scheme) {
      case 'ecdsa':
        return signAsync(hash, data, { key: key.privateKey, dsaEncoding: 'der' });
      case 'rsa-pkcs1':
        return signAsync(hash, data, { key: key.privateKey, padding: cryptoConstants.RSA_PKCS1_PADDING });
      case 'rsa-pss':
        // OpenSSL uses the signature hash for MGF1 too, which is what certflow specifies.
        return signAsync(hash, data, {
          key: key.privateKey,
          padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
          saltLength: hashLength(hash),
        });
    }
  }

  async decrypt(id: string, alg: DecryptAlg, data: Uint8Array): Promise<Uint8Array> {
    assertKeyId(id);
    const key = await this.load(id);
    if (!key) throw new CaError('notFound', `no key "${id}" in ${this.dir}`, { rule: 'key.notFound' });
    if (alg !== 'rsa-oaep-sha256') throw new CaError('malformed', `unsupported decryption algorithm ${String(alg)}`);
    if (keyFamily(key.alg) !== 'rsa') throw new CaError('config', `key "${id}" is ${key.alg}; ${alg} needs an RSA key`);
    try {
      return new Uint8Array(
        privateDecrypt({ key: key.privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data),
      );
    } catch (e) {
      throw new CaError('malformed', `decryption with key "${id}" failed (wrong key or corrupted data)`, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.cache.clear();
  }

  private keyFile(id: string): string {
    return join(this.dir, `${id}.key.pem`);
  }

  private metaFile(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private load(id: string): Promise<LoadedKey | undefined> {
    let pending = this.cache.get(id);
    if (!pending) {
      pending = this.readKey(id);
      this.cache.set(id, pending);
      // Only successful loads stay cached: a missing key may be generated later (by another
      // process), and a failed decryption must be retried with the next call.
      const entry = pending;
      const forget = () => {
        if (this.cache.get(id) === entry) this.cache.delete(id);
      };
      entry.then((k) => k === undefined && forget(), forget);
    }
    return pending;
  }

  private async readKey(id: string): Promise<LoadedKey | undefined> {
    const pem = await readOptional(this.keyFile(id));
    if (pem === undefined) return undefined;
    const privateKey = decryptKey(id, pem, this.passphrase);
    const alg = keyAlgOf(id, privateKey);
    await this.checkMetadata(id, alg);
    return { alg, privateKey, spki: spkiOf(privateKey) };
  }

  /** The key file is authoritative; a metadata file that disagrees means tampering or a mix-up. */
  private async checkMetadata(id: string, alg: KeyAlg): Promise<void> {
    const text = await readOptional(this.metaFile(id));
    if (text === undefined) return; // crash between the two writes of generate(): harmless
    let meta: Partial<KeyMetadata>;
    try {
      meta = JSON.parse(text) as Partial<KeyMetadata>;
    } catch (e) {
      throw new CaError('config', `metadata file ${this.metaFile(id)} is not valid JSON`, { cause: e });
    }
    if (meta.alg !== alg) {
      throw new CaError('config', `CA key "${id}" is ${alg} but ${this.metaFile(id)} says ${String(meta.alg)}`);
    }
  }
}

// ---- passphrase -----------------------------------------------------------------------

export interface ResolvedPassphrase {
  passphrase: string;
  /** 'env': CERTFLOW_KEY_PASSPHRASE; 'file': the dev-mode file next to the keys. */
  source: 'env' | 'file';
  /** Path of the passphrase file when source is 'file'. */
  file?: string;
}

/**
 * CERTFLOW_KEY_PASSPHRASE when set. Otherwise (dev mode) a random passphrase generated once
 * and kept in `<keysDir>/passphrase` (0600). That file sits next to the keys, so it only
 * protects against copying a single key file — production must set the variable.
 */
export async function resolvePassphrase(config: Pick<Config, 'home' | 'keys'>): Promise<ResolvedPassphrase> {
  if (config.keys.passphrase) return { passphrase: config.keys.passphrase, source: 'env' };
  const dir = paths(config).keysDir;
  const file = join(dir, 'passphrase');
  await ensurePrivateDir(dir);
  const fresh = `${randomBytes(32).toString('base64url')}\n`;
  // Exclusive create: when two processes start at once, one wins and both use its value.
  await writeNewFile(file, fresh, () => undefined);
  const passphrase = (await readFile(file, 'utf8')).trim();
  if (!passphrase) throw new CaError('config', `passphrase file ${file} is empty; delete it only if no keys use it`);
  return { passphrase, source: 'file', file };
}

// ---- crypto helpers ---------------------------------------------------------------------

async function generateKey(alg: KeyAlg): Promise<KeyObject> {
  if (keyFamily(alg) === 'ec') {
    const namedCurve = alg === 'ec-p256' ? 'P-256' : 'P-384';
    return (await generateKeyPair('ec', { namedCurve })).privateKey;
  }
  return (await generateKeyPair('rsa', { modulusLength: rsaBits(alg), publicExponent: 0x10001 })).privateKey;
}

function spkiOf(privateKey: KeyObject): Uint8Array {
  return new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
}

function decryptKey(id: string, pem: string, passphrase: string): KeyObject {
  if (!pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new CaError('config', `CA key file for "${id}" is not an encrypted PKCS#8 PEM file`);
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch (e) {
    // A wrong passphrase usually surfaces as "bad decrypt", but in ~1 of 150 cases the
    // CBC padding happens to check out and OpenSSL fails later decoding garbage
    // ("DECODER routines::unsupported"), so every failure here is reported the same way.
    throw new CaError('config', `cannot decrypt CA key ${id}: wrong CERTFLOW_KEY_PASSPHRASE?`, {
      cause: e,
      details: { opensslError: (e as Error).message },
    });
  }
}

function keyAlgOf(id: string, key: KeyObject): KeyAlg {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
  } else if (key.asymmetricKeyType === 'rsa' && details.modulusLength !== undefined) {
    const alg = rsaKeyAlg(details.modulusLength);
    if (alg) return alg;
  }
  throw new CaError('config', `CA key "${id}" has an unsupported type (${key.asymmetricKeyType} ${JSON.stringify(details)})`);
}

function conflict(id: string): CaError {
  return new CaError('conflict', `CA key "${id}" exists already`, { rule: 'key.exists' });
}

// ---- file helpers -----------------------------------------------------------------------

async function ensurePrivateDir(dir: string): Promise<void> {
  // Parents get the default mode; only the key directory itself must be private.
  await mkdir(dirname(dir), { recursive: true });
  try {
    await mkdir(dir, { mode: DIR_MODE });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Writes `data` to a fresh temp file next to `file` (mode 0600) and fsyncs it. */
async function writeTemp(file: string, data: string): Promise<string> {
  const tmp = join(dirname(file), `.tmp-${randomBytes(8).toString('hex')}`);
  const fh = await open(tmp, 'wx', FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Creates `file` with complete contents or not at all. link() of the finished temp file is
 * atomic and fails with EEXIST when `file` exists, unlike rename(), which would silently
 * replace an existing key. `onExists` returns the error to throw (or undefined to ignore).
 */
async function writeNewFile(file: string, data: string, onExists: () => Error | undefined): Promise<void> {
  const tmp = await writeTemp(file, data);
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const err = onExists();
    if (err) throw err;
    return;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDir(dirname(file));
}

/** Atomically replaces `file` (temp file + rename). */
async function replaceFile(file: string, data: string): Promise<void> {
  const tmp = await writeTemp(file, data);
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(file));
}
