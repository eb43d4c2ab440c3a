/**
 * Facts about KeyAlg / SignAlg shared by both key stores, so that the software store and
 * the PKCS#11 store agree on which combinations are legal and on PSS parameters.
 */
import { CaError } from '../core/errors.ts';
import type { KeyAlg, SignAlg } from './types.ts';

export type HashName = 'sha256' | 'sha384' | 'sha512';
export type KeyFamily = 'ec' | 'rsa';
export type SignScheme = 'ecdsa' | 'rsa-pkcs1' | 'rsa-pss';

export interface SignAlgParts {
  scheme: SignScheme;
  hash: HashName;
}

const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** Splits e.g. 'rsa-pss-sha384' into { scheme: 'rsa-pss', hash: 'sha384' }. */
function signAlgParts(alg: SignAlg): SignAlgParts {
  const cut = alg.lastIndexOf('-');
  return { scheme: alg.slice(0, cut) as SignScheme, hash: alg.slice(cut + 1) as HashName };
}

/** Byte length of the digest; also the PSS salt length we use (RFC 4055 recommendation). */
export function hashLength(hash: HashName): number {
  return HASH_LENGTH[hash];
}

export function keyFamily(alg: KeyAlg): KeyFamily {
  return alg.startsWith('ec-') ? 'ec' : 'rsa';
}

/** Modulus size of an RSA KeyAlg. */
export function rsaBits(alg: KeyAlg): number {
  if (keyFamily(alg) !== 'rsa') throw new CaError('internal', `${alg} is not an RSA key algorithm`);
  return Number(alg.slice('rsa-'.length));
}

/** The KeyAlg of an RSA key with `bits` modulus bits, or undefined when certflow has none. */
export function rsaKeyAlg(bits: number): KeyAlg | undefined {
  const alg = `rsa-${bits}`;
  return alg === 'rsa-2048' || alg === 'rsa-3072' || alg === 'rsa-4096' ? alg : undefined;
}

/**
 * Throws CaError('config') when `signAlg` cannot be used with a key of `keyAlg` (ECDSA on an
 * RSA key or the reverse). The sign algorithm comes from configuration (profile / CA
 * settings), so a mismatch is a configuration mistake rather than a bad request.
 */
export function assertSignAlgFits(keyId: string, keyAlg: KeyAlg, signAlg: SignAlg): SignAlgParts {
  const parts = signAlgParts(signAlg);
  const wanted: KeyFamily = parts.scheme === 'ecdsa' ? 'ec' : 'rsa';
  if (keyFamily(keyAlg) !== wanted) {
    throw new CaError('config', `signature algorithm ${signAlg} cannot be used with CA key "${keyId}" (${keyAlg})`, {
      rule: 'key.signAlg',
      details: { keyId, keyAlg, signAlg },
    });
  }
  return parts;
}
