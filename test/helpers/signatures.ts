/**
 * Independent verification of key-store signatures with node:crypto, used by the key store
 * tests and the signing benchmark.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { SIGN_ALGS, type KeyAlg, type SignAlg } from '../../src/keys/types.ts';

/** Every signature algorithm that fits a key algorithm (ECDSA for EC keys, PKCS#1 and PSS for RSA). */
export function signAlgsFor(alg: KeyAlg): SignAlg[] {
  const ec = alg.startsWith('ec-');
  return SIGN_ALGS.filter((s) => s.startsWith('ecdsa-') === ec);
}

export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/**
 * Verifies strictly: ECDSA as DER (OpenSSL rejects non-minimal INTEGERs), PSS with MGF1
 * of the same hash and exactly a hash-long salt (a different salt length fails).
 */
export function verifySignature(spki: Uint8Array, alg: SignAlg, data: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyFromSpki(spki);
  const hash = alg.slice(alg.lastIndexOf('-') + 1);
  const hashLen = { sha256: 32, sha384: 48, sha512: 64 }[hash];
  if (alg.startsWith('ecdsa-')) return verify(hash, data, { key, dsaEncoding: 'der' }, signature);
  if (alg.startsWith('rsa-pkcs1-')) return verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashLen }, signature);
}
