/**
 * DER INTEGER contents: non-negative numbers given as hex text or bigint (CRL serials and
 * numbers, OCSP CertID serials), and signed ones (CMP's certReqId -1). Internal to the pki
 * layer; not re-exported from the index.
 */
import { CaError } from '../core/errors.ts';

/**
 * Content octets of the DER INTEGER for the non-negative number written in `hex` (any case,
 * leading zeros allowed, odd length allowed): minimal big-endian, with a 0x00 octet in
 * front when the high bit is set so that the INTEGER stays positive.
 */
export function integerFromHex(hex: string, what: string): Uint8Array {
  if (!/^[0-9a-f]+$/i.test(hex)) throw new CaError('malformed', `${what} "${hex}" is not a hexadecimal number`, { rule: 'serial' });
  const digits = hex.replace(/^0+/, '') || '0';
  const bytes = Buffer.from(digits.length % 2 ? `0${digits}` : digits, 'hex');
  return bytes[0] & 0x80 ? new Uint8Array([0, ...bytes]) : new Uint8Array(bytes);
}

/** Content octets of the DER INTEGER for a non-negative bigint. */
export function integerFromBigint(n: bigint, what: string): Uint8Array {
  if (n < 0n) throw new CaError('internal', `${what} ${n} is negative`);
  return integerFromHex(n.toString(16), what);
}

/** The value of an INTEGER's content octets, which must be non-negative. */
export function bigintFromInteger(bytes: Uint8Array, what: string): bigint {
  if (bytes.length === 0 || bytes[0] & 0x80) throw new CaError('malformed', `${what} is not a non-negative INTEGER`);
  return BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/** Content octets of the DER INTEGER for any bigint: minimal two's complement. */
export function integerFromSigned(n: bigint): Uint8Array {
  if (n >= 0n) return integerFromHex(n.toString(16), 'an INTEGER');
  // -n - 1 has the bits of n inverted: encode it positive, then invert every octet.
  return integerFromHex((-n - 1n).toString(16), 'an INTEGER').map((b) => b ^ 0xff);
}

/** The value of an INTEGER's content octets, read as two's complement. */
export function signedFromInteger(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  const v = BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  return bytes[0]! & 0x80 ? v - (1n << BigInt(bytes.length * 8)) : v;
}
