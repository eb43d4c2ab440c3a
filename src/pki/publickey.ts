/** Public keys (SubjectPublicKeyInfo): what kind of key it is, and its key identifier. */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError, type ErrorKind } from '../core/errors.ts';
import { derChildren, derElement, parseDer, wrapAsn1, type DerElement } from './der.ts';
import { CURVE_NAMES, OID } from './oids.ts';

export type PublicKeyKind =
  { type: 'rsa'; bits: number } | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' | string } | { type: 'ed25519' } | { type: 'ed448' };

/** Parses DER SubjectPublicKeyInfo; errors become CaError(kind). */
export function parseSpki(spki: Uint8Array, kind: ErrorKind): pkijs.PublicKeyInfo {
  const node = parseDer(spki, 'the public key', kind);
  return wrapAsn1(kind, 'the public key is not a SubjectPublicKeyInfo', () => new pkijs.PublicKeyInfo({ schema: node }));
}

/** Bytes of the subjectPublicKey BIT STRING (without the unused-bits octet). */
function publicKeyBits(info: pkijs.PublicKeyInfo): Uint8Array {
  return info.subjectPublicKey.valueBlock.valueHexView;
}

/**
 * Classifies a public key by its algorithm OID. RSA-PSS-only keys (id-RSASSA-PSS) count as
 * RSA. EC keys with explicit curve parameters report curve "explicit parameters", which no
 * profile allows.
 * @param kind CaError kind for keys that cannot be decoded ('badKey' by default); unsupported
 *   key algorithms are always CaError('badKey', rule key.type)
 */
export function describePublicKey(spki: Uint8Array | pkijs.PublicKeyInfo, kind: ErrorKind = 'badKey'): PublicKeyKind {
  const info = spki instanceof Uint8Array ? parseSpki(spki, kind) : spki;
  const oid = info.algorithm.algorithmId;
  switch (oid) {
    case OID.rsaEncryption:
    case OID.rsassaPss:
      return { type: 'rsa', bits: rsaModulusBits(info, kind) };
    case OID.ecPublicKey:
      return { type: 'ec', curve: ecCurveName(info) };
    case OID.ed25519:
      expectKeyLength(info, 32, 'Ed25519', kind);
      return { type: 'ed25519' };
    case OID.ed448:
      expectKeyLength(info, 57, 'Ed448', kind);
      return { type: 'ed448' };
    default:
      // Well-formed but not a kind of key we issue for: a key policy matter, whatever `kind` says.
      throw new CaError('badKey', `public key algorithm ${oid} is not supported (RSA, EC, Ed25519 and Ed448 are)`, {
        rule: 'key.type',
        details: { oid },
      });
  }
}

function rsaModulusBits(info: pkijs.PublicKeyInfo, kind: ErrorKind): number {
  const node = parseDer(publicKeyBits(info), 'the RSA public key', kind);
  const key = wrapAsn1(kind, 'the RSA public key is malformed', () => new pkijs.RSAPublicKey({ schema: node }));
  const modulus = key.modulus.valueBlock.valueHexView;
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  if (i === modulus.length) throw new CaError(kind, 'the RSA public key has a zero modulus', { rule: 'key.rsa' });
  return (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i]));
}

function ecCurveName(info: pkijs.PublicKeyInfo): string {
  const params: unknown = info.algorithm.algorithmParams;
  if (!(params instanceof asn1js.ObjectIdentifier)) return 'explicit parameters';
  const oid = params.getValue();
  return CURVE_NAMES[oid] ?? oid;
}

function expectKeyLength(info: pkijs.PublicKeyInfo, bytes: number, name: string, kind: ErrorKind): void {
  const len = publicKeyBits(info).length;
  if (len !== bytes) throw new CaError(kind, `the ${name} public key is ${len} bytes long, expected ${bytes}`, { rule: 'key.length' });
}

/** Human description for messages: "RSA 2048", "EC P-256", "Ed25519". */
export function describeKeyKind(key: PublicKeyKind): string {
  switch (key.type) {
    case 'rsa':
      return `RSA ${key.bits}`;
    case 'ec':
      return `EC ${key.curve}`;
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
  }
}

/**
 * Key identifier per RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING
 * contents (without tag, length and unused-bits octet). Same value OpenSSL computes for
 * subjectKeyIdentifier=hash.
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  // On the bytes (der.ts), not through pkijs: issuance computes it several times per
  // certificate (subject key id, its lint, OCSP responder id), and pkijs' schema is slow.
  const what = 'the public key';
  const { key } = spkiParts(derElement(spki, what, 'malformed', 0x30), what);
  return new Uint8Array(createHash('sha1').update(key.content.subarray(1)).digest());
}

/** The algorithm and the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo; anything else is CaError('malformed'). */
export function spkiParts(spki: DerElement, what: string): { algorithm: DerElement; key: DerElement } {
  const [algorithm, key, ...extra] = derChildren(spki, what, 'malformed');
  if (algorithm?.tag !== 0x30 || key?.tag !== 0x03 || key.content.length === 0 || extra.length) {
    throw new CaError('malformed', `${what} is not a SubjectPublicKeyInfo`);
  }
  return { algorithm, key };
}
