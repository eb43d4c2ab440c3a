/**
 * Key pair generation for all of certflow (and its tests and benchmarks): node:crypto's
 * generateKeyPair(Sync), but the KeyObjects returned share nothing with the generation job.
 *
 * Why: Node 20 can deadlock on a KeyObject that generateKeyPair(Sync) returned. Such a key
 * shares its lock with the finished generation job; a native key method that holds that
 * lock while it allocates (a JWK export, `asymmetricKeyDetails`) can trigger a garbage
 * collection, which runs the job's destructor, which takes the same lock: the thread waits
 * on itself for ever (gdb: ~KeyGenJob under ExportJWKRsaKey and under GetKeyDetail). Here
 * the generator hands out DER bytes, the KeyObjects are parsed from them with locks of their
 * own, and the job's key dies with the job. test/unit/keygen.test.ts runs the loop that
 * shows it: with node:crypto's generateKeyPairSync it hangs in every run.
 *
 * eslint forbids importing node:crypto's generators anywhere else.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateCb,
  generateKeyPairSync as generateSync,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { createOnce } from '../core/files.ts';
import { pemEncode } from './pem.ts';

export type KeyPairType = 'rsa' | 'ec' | 'ed25519' | 'ed448' | 'x25519';

export interface KeyPairOptions {
  /** RSA modulus in bits. */
  modulusLength?: number;
  /** RSA public exponent (default 0x10001). */
  publicExponent?: number;
  /** EC curve ('P-256', 'P-384', 'P-521'). */
  namedCurve?: string;
}

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** A key pair as DER: SubjectPublicKeyInfo and PKCS#8. */
export interface EncodedKeyPair {
  publicKey: Buffer;
  privateKey: Buffer;
}

const DER = { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } } as const;
const generateAsync = promisify(generateCb) as unknown as (type: KeyPairType, options: object) => Promise<EncodedKeyPair>;

function keyObjects(encoded: EncodedKeyPair): KeyPair {
  return {
    publicKey: createPublicKey({ key: encoded.publicKey, format: 'der', type: 'spki' }),
    privateKey: createPrivateKey({ key: encoded.privateKey, format: 'der', type: 'pkcs8' }),
  };
}

/** A new key pair as DER, generated on the calling thread (no KeyObject made at all). */
export function generateDerKeyPairSync(type: KeyPairType, options: KeyPairOptions = {}): EncodedKeyPair {
  return (generateSync as (t: KeyPairType, o: object) => EncodedKeyPair)(type, { ...options, ...DER });
}

/** A new key pair, generated on the calling thread. */
export function generateKeyPairSync(type: KeyPairType, options: KeyPairOptions = {}): KeyPair {
  return keyObjects(generateDerKeyPairSync(type, options));
}

/** A new key pair, generated in libuv's thread pool. */
export async function generateKeyPair(type: KeyPairType, options: KeyPairOptions = {}): Promise<KeyPair> {
  return keyObjects(await generateAsync(type, { ...options, ...DER }));
}

/**
 * The P-256 private key in `file` (PKCS#8 PEM), made and written once (mode 0600) when the
 * file does not exist yet: the key of a certificate certflow keeps for itself (its HTTPS
 * and cluster TLS leaves).
 */
export async function p256KeyFile(file: string): Promise<{ pem: string; key: KeyObject }> {
  const pem = await createOnce(file, () => pemEncode('PRIVATE KEY', generateDerKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
  return { pem, key: createPrivateKey(pem) };
}
