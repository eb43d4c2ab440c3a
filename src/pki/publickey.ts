/** Public keys (SubjectPublicKeyInfo): what kind of key it is, and its key identifier. */
import { createHash, type JsonWebKey } from 'node:crypto';
import { CaError, type ErrorKind } from '../core/errors.ts';
import { derChildren, derElement, derOid, type DerElement } from './der.ts';
import { CURVE_NAMES, OID } from './oids.ts';

export type PublicKeyKind =
  { type: 'rsa'; bits: number } | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' | string } | { type: 'ed25519' } | { type: 'ed448' };

/**
 * Classifies a public key by its algorithm OID, on the SubjectPublicKeyInfo's bytes
 * (der.ts). RSA-PSS-only keys (id-RSASSA-PSS) count as RSA. EC keys with explicit curve
 * parameters report curve "explicit parameters", which no profile allows.
 * @param kind CaError kind for keys that cannot be decoded ('badKey' by default); unsupported
 *   key algorithms are always CaError('badKey', rule key.type)
 */
export function describePublicKey(spki: Uint8Array, kind: ErrorKind = 'badKey'): PublicKeyKind {
  const what = 'the public key';
  if (spki.length === 0) throw new CaError(kind, `${what} is empty`);
  const { algorithm, key } = spkiParts(derElement(spki, what, kind, 0x30), what, kind);
  const [oidEl, params] = derChildren(algorithm, what, kind);
  const oid = derOid(oidEl, `${what}'s algorithm`, kind);
  const bits = key.content.subarray(1); // after the unused-bits octet
  switch (oid) {
    case OID.rsaEncryption:
    case OID.rsassaPss:
      return { type: 'rsa', bits: rsaModulusBits(bits, kind) };
    case OID.ecPublicKey: {
      const curve = params?.tag === 0x06 ? derOid(params, `${what}'s curve`, kind) : undefined;
      return { type: 'ec', curve: curve === undefined ? 'explicit parameters' : (CURVE_NAMES[curve] ?? curve) };
    }
    case OID.ed25519:
      expectKeyLength(bits, 32, 'Ed25519', kind);
      return { type: 'ed25519' };
    case OID.ed448:
      expectKeyLength(bits, 57, 'Ed448', kind);
      return { type: 'ed448' };
    default:
      // Well-formed but not a kind of key we issue for: a key policy matter, whatever `kind` says.
      throw new CaError('badKey', `public key algorithm ${oid} is not supported (RSA, EC, Ed25519 and Ed448 are)`, {
        rule: 'key.type',
        details: { oid },
      });
  }
}

/** Bits of an RSAPublicKey's modulus (its DER: SEQUENCE { modulus INTEGER, publicExponent INTEGER }). */
function rsaModulusBits(rsaPublicKey: Uint8Array, kind: ErrorKind): number {
  const what = 'the RSA public key';
  const [n, e, ...extra] = derChildren(derElement(rsaPublicKey, what, kind, 0x30), what, kind);
  if (n?.tag !== 0x02 || e?.tag !== 0x02 || extra.length) throw new CaError(kind, `${what} is malformed`);
  const modulus = n.content;
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  if (i === modulus.length) throw new CaError(kind, 'the RSA public key has a zero modulus', { rule: 'key.rsa' });
  return (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i]!));
}

function expectKeyLength(bits: Uint8Array, bytes: number, name: string, kind: ErrorKind): void {
  const len = bits.length;
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
  return new Uint8Array(createHash('sha1').update(subjectPublicKeyBits(spki)).digest());
}

/**
 * The subjectPublicKey BIT STRING's contents without the unused-bits octet (what key
 * identifiers and OCSP issuerKeyHash are hashes of), read on the bytes (der.ts).
 */
export function subjectPublicKeyBits(spki: Uint8Array, kind: ErrorKind = 'malformed'): Uint8Array {
  const what = 'the public key';
  return spkiParts(derElement(spki, what, kind, 0x30), what, kind).key.content.subarray(1);
}

/** Octets of a coordinate for each curve a JWK can name (its crv is the curve's name). */
const JWK_COORDINATE_OCTETS: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

/**
 * The SubjectPublicKeyInfo as a JWK (RFC 7517/7518/8037), for node:crypto to import without
 * OpenSSL 3.0's DER decoder, which costs 0.13 ms per key alone and several times that in
 * a busy process; undefined for what a JWK cannot say exactly (RSASSA-PSS parameters, a
 * compressed or explicit-curve EC point, malformed keys), which is imported from the DER.
 */
export function publicKeyJwk(spki: Uint8Array): JsonWebKey | undefined {
  try {
    const { algorithm, key } = spkiParts(derElement(spki, 'the public key', 'malformed', 0x30), 'the public key');
    const [oidEl, params, ...extra] = derChildren(algorithm, 'the public key', 'malformed');
    const oid = derOid(oidEl, 'the public key', 'malformed');
    const bits = key.content;
    if (bits[0] !== 0 || extra.length) return undefined;
    const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
    switch (oid) {
      case OID.rsaEncryption: {
        if (params && (params.tag !== 0x05 || params.content.length)) return undefined;
        const [n, e, ...more] = derChildren(derElement(bits.subarray(1), 'the RSA key', 'malformed', 0x30), 'the RSA key', 'malformed');
        // Positive INTEGERs as DER writes them: a leading zero octet only before a high bit;
        // anything else is imported from the DER, as before.
        const unsigned = (i: DerElement | undefined) => {
          const c = i?.tag === 0x02 ? i.content : undefined;
          if (!c?.length || c[0]! & 0x80 || (c[0] === 0 && !(c.length > 1 && c[1]! & 0x80))) return undefined;
          return c[0] === 0 ? c.subarray(1) : c;
        };
        const [modulus, exponent] = [unsigned(n), unsigned(e)];
        return modulus && exponent && !more.length ? { kty: 'RSA', n: b64(modulus), e: b64(exponent) } : undefined;
      }
      case OID.ecPublicKey: {
        const crv = params?.tag === 0x06 ? CURVE_NAMES[derOid(params, 'the curve', 'malformed')] : undefined;
        const size = crv ? JWK_COORDINATE_OCTETS[crv] : undefined;
        const point = bits.subarray(1);
        if (!crv || !size || point.length !== 1 + 2 * size || point[0] !== 0x04) return undefined;
        return { kty: 'EC', crv, x: b64(point.subarray(1, 1 + size)), y: b64(point.subarray(1 + size)) };
      }
      case OID.ed25519:
      case OID.ed448:
        return params ? undefined : { kty: 'OKP', crv: oid === OID.ed25519 ? 'Ed25519' : 'Ed448', x: b64(bits.subarray(1)) };
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** The algorithm and the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo; anything else is CaError(kind). */
export function spkiParts(spki: DerElement, what: string, kind: ErrorKind = 'malformed'): { algorithm: DerElement; key: DerElement } {
  const [algorithm, key, ...extra] = derChildren(spki, what, kind);
  if (algorithm?.tag !== 0x30 || key?.tag !== 0x03 || key.content.length === 0 || extra.length) {
    throw new CaError(kind, `${what} is not a SubjectPublicKeyInfo`);
  }
  return { algorithm, key };
}
