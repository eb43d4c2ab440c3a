/**
 * CMP message protection (RFC 9810 5.1.3, RFC 9481 6): password-based MAC (the classic
 * PasswordBasedMac of RFC 4211 4.4 and PBMAC1 of RFC 8018 with PBKDF2), and signatures.
 * Protection is computed over ProtectedPart ::= SEQUENCE { header, body } as received.
 */
import { createHmac, randomBytes, sign as nodeSign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CaError } from '../../core/errors.ts';
import { readSignatureAlgorithm, signatureAlgorithmDer, verifySignature, type VerifyAlgorithm } from '../algorithms.ts';
import type { SignAlg } from '../../keys/types.ts';
import { Cursor, fromDer, readOid, seq, oid, sequence } from './asn1.ts';
import { deriveMacKey, type Hash, type MacKeyDerivation } from './kdf.ts';
import { PBMParameter, Pbmac1Params, type PKIMessage } from './structures.ts';

const PROTECTION_OIDS = {
  passwordBasedMac: '1.2.840.113533.7.66.13',
  pbmac1: '1.2.840.113549.1.5.14',
} as const;

const OWF: Record<string, Hash> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** HMAC algorithms: RFC 9481 6.2.1 (hmacWithSHAxxx) and the older hmac-sha1 of RFC 2104/3370. */
const HMAC: Record<string, Hash> = {
  '1.3.6.1.5.5.8.1.2': 'sha1',
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

const HASH_OIDS: Record<Hash, string> = Object.fromEntries(Object.entries(OWF).map(([o, h]) => [h, o])) as Record<Hash, string>;
const HMAC_OIDS: Record<'hmac-sha1' | Hash, string> = {
  'hmac-sha1': '1.3.6.1.5.5.8.1.2',
  sha1: '1.2.840.113549.2.7',
  sha224: '1.2.840.113549.2.8',
  sha256: '1.2.840.113549.2.9',
  sha384: '1.2.840.113549.2.10',
  sha512: '1.2.840.113549.2.11',
};

const HASH_BYTES: Record<Hash, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

/** RFC 4211 4.4 requires at least 100 iterations; the maximum bounds the work one message can cause. */
const MIN_ITERATIONS = 100;

export type Protection =
  | { type: 'pbm'; params: PBMParameter; owf: Hash; mac: Hash; name: string }
  | { type: 'pbmac1'; params: Pbmac1Params; prf: Hash; mac: Hash; name: string }
  | { type: 'signature'; alg: VerifyAlgorithm; name: string };

function badAlg(why: string): never {
  throw new CaError('malformed', why, { rule: 'cmp.protection.alg' });
}

/** Interprets header.protectionAlg; unknown or unacceptable algorithms fail with rule cmp.protection.alg. */
export function describeProtection(protectionAlg: Uint8Array, maxIterations: number): Protection {
  const c = new Cursor(sequence(fromDer(protectionAlg, 'protectionAlg'), 'protectionAlg'), 'protectionAlg');
  const id = readOid(c.take(), 'protectionAlg.algorithm');
  const params = c.takeIf(() => true);
  c.end();
  const checkIterations = (n: number) => {
    if (n < MIN_ITERATIONS || n > maxIterations) badAlg(`iteration count ${n} is outside ${MIN_ITERATIONS}..${maxIterations}`);
  };
  if (id === PROTECTION_OIDS.passwordBasedMac) {
    if (!params) badAlg('PasswordBasedMac without PBMParameter');
    const p = PBMParameter.read(params);
    const owf = OWF[p.owf] ?? badAlg(`PasswordBasedMac one-way function ${p.owf} is not supported (SHA-1, SHA-2)`);
    const mac = HMAC[p.mac] ?? badAlg(`PasswordBasedMac MAC algorithm ${p.mac} is not supported (HMAC-SHA1, HMAC-SHA2)`);
    checkIterations(p.iterationCount);
    if (p.salt.length < 8 || p.salt.length > 64) badAlg(`PasswordBasedMac salt of ${p.salt.length} bytes (8..64 accepted)`);
    return { type: 'pbm', params: p, owf, mac, name: `PasswordBasedMac(${owf}, HMAC-${mac}, ${p.iterationCount} iterations)` };
  }
  if (id === PROTECTION_OIDS.pbmac1) {
    if (!params) badAlg('PBMAC1 without parameters');
    const p = Pbmac1Params.read(params);
    const prf = HMAC[p.prf] ?? badAlg(`PBKDF2 PRF ${p.prf} is not supported (HMAC-SHA1, HMAC-SHA2)`);
    const mac = HMAC[p.messageAuthScheme] ?? badAlg(`PBMAC1 message authentication scheme ${p.messageAuthScheme} is not supported`);
    checkIterations(p.iterationCount);
    if (p.keyLength !== undefined && (p.keyLength < 16 || p.keyLength > 64)) badAlg(`PBKDF2 key length ${p.keyLength} (16..64 accepted)`);
    if (p.salt.length < 8 || p.salt.length > 64) badAlg(`PBKDF2 salt of ${p.salt.length} bytes (8..64 accepted)`);
    return { type: 'pbmac1', params: p, prf, mac, name: `PBMAC1(PBKDF2-HMAC-${prf}, HMAC-${mac}, ${p.iterationCount} iterations)` };
  }
  try {
    const alg = readSignatureAlgorithm(protectionAlg, 'malformed');
    return { type: 'signature', alg, name: alg.name };
  } catch (e) {
    return badAlg(`protection algorithm ${id} is not supported: ${(e as Error).message}`);
  }
}

type MacProtection = Extract<Protection, { type: 'pbm' | 'pbmac1' }>;

/** The key derivation a MAC protection asks for (the expensive part: see kdf.ts). */
export function macKeyDerivation(p: MacProtection): MacKeyDerivation {
  if (p.type === 'pbm') return { type: 'pbm', hash: p.owf, salt: p.params.salt, iterations: p.params.iterationCount, keyLength: 0 };
  const keyLength = p.params.keyLength ?? HASH_BYTES[p.mac];
  return { type: 'pbmac1', hash: p.prf, salt: p.params.salt, iterations: p.params.iterationCount, keyLength };
}

/** The MAC of `data` under a derived key (cheap: one HMAC). */
export function macWithKey(p: MacProtection, key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac(p.mac, key).update(data).digest());
}

/** The MAC of `data` under the shared secret, as the protection algorithm says (derivation on this thread). */
export function computeMac(p: MacProtection, secret: Uint8Array, data: Uint8Array): Uint8Array {
  return macWithKey(p, deriveMacKey(secret, macKeyDerivation(p)), data);
}

/** Whether the message's MAC verifies under a key derived from the secret (constant-time comparison). */
export function verifyMacWithKey(msg: PKIMessage, p: MacProtection, key: Uint8Array): boolean {
  if (!msg.protection) return false;
  const expected = macWithKey(p, key, msg.protectedPart());
  return expected.length === msg.protection.length && timingSafeEqual(expected, msg.protection);
}

/** Whether the message's MAC verifies under `secret` (derivation on this thread). */
export function verifyMac(msg: PKIMessage, p: MacProtection, secret: Uint8Array): boolean {
  return verifyMacWithKey(msg, p, deriveMacKey(secret, macKeyDerivation(p)));
}

/** Whether the message's signature verifies with the public key `spki`. */
export function verifySignatureProtection(msg: PKIMessage, p: Extract<Protection, { type: 'signature' }>, spki: Uint8Array): boolean {
  if (!msg.protection) return false;
  return verifySignature(spki, p.alg, msg.protectedPart(), msg.protection);
}

export interface MacChoice {
  type: 'pbm' | 'pbmac1';
  /** OWF (PBM) or PBKDF2 PRF (PBMAC1). */
  hash: Hash;
  mac: Hash | 'hmac-sha1';
  iterations: number;
}

/** The MAC parameters a response uses: the same algorithms as the request, a fresh salt. */
export function macChoiceOf(p: Extract<Protection, { type: 'pbm' | 'pbmac1' }>): MacChoice {
  if (p.type === 'pbm') {
    const macName = p.params.mac === HMAC_OIDS['hmac-sha1'] ? 'hmac-sha1' : p.mac;
    return { type: 'pbm', hash: p.owf, mac: macName, iterations: p.params.iterationCount };
  }
  return { type: 'pbmac1', hash: p.prf, mac: p.mac, iterations: p.params.iterationCount };
}

/**
 * Sets header.protectionAlg for MAC protection with a fresh salt and returns the protection
 * to compute (macKeyDerivation, then macWithKey over protectedPart()).
 */
export function setMacProtection(msg: PKIMessage, choice: MacChoice): MacProtection {
  const salt = new Uint8Array(randomBytes(16));
  const macHash: Hash = choice.mac === 'hmac-sha1' ? 'sha1' : choice.mac;
  let protection: MacProtection;
  if (choice.type === 'pbm') {
    const params = new PBMParameter(salt, HASH_OIDS[choice.hash], choice.iterations, HMAC_OIDS[choice.mac]);
    msg.header.protectionAlg = seq([oid(PROTECTION_OIDS.passwordBasedMac), params.toDer()]);
    protection = { type: 'pbm', params, owf: choice.hash, mac: macHash, name: 'PBM' };
  } else {
    const params = new Pbmac1Params(salt, choice.iterations, HASH_BYTES[macHash], HMAC_OIDS[choice.hash], HMAC_OIDS[macHash]);
    msg.header.protectionAlg = seq([oid(PROTECTION_OIDS.pbmac1), params.toDer()]);
    protection = { type: 'pbmac1', params, prf: choice.hash, mac: macHash, name: 'PBMAC1' };
  }
  msg.raw = undefined;
  return protection;
}

/** Sets header.protectionAlg for MAC protection and computes the protection (derivation on this thread). */
export function protectWithMac(msg: PKIMessage, secret: Uint8Array, choice: MacChoice): void {
  const p = setMacProtection(msg, choice);
  msg.protection = computeMac(p, secret, msg.protectedPart());
}

/** Sets header.protectionAlg for a signature with `key` and signs; extraCerts are set by the caller. */
export function protectWithSignature(msg: PKIMessage, key: KeyObject, alg: SignAlg): void {
  msg.header.protectionAlg = signatureAlgorithmDer(alg);
  msg.raw = undefined;
  const hash = alg.endsWith('sha384') ? 'sha384' : alg.endsWith('sha512') ? 'sha512' : 'sha256';
  const data = msg.protectedPart();
  const signature = alg.startsWith('rsa-pss')
    ? nodeSign(hash, data, { key, padding: 6, saltLength: HASH_BYTES[hash] })
    : nodeSign(hash, data, { key, dsaEncoding: 'der' });
  msg.protection = new Uint8Array(signature);
}
