/**
 * Small DER helpers shared by the pki modules. Internal: not re-exported from the index.
 *
 * asn1js is a BER parser that reports errors through `offset === -1` instead of throwing and
 * silently ignores bytes after the first element. Everything that reads untrusted input goes
 * through `parseDer`, which turns both into a CaError of the caller's kind.
 */
import * as asn1js from 'asn1js';
import { CaError, type ErrorKind } from '../core/errors.ts';

export function bytesOf(buf: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return new Uint8Array(buf);
}

/** Encodes an asn1js node (or anything with toBER) to a fresh Uint8Array. */
export function encodeDer(node: { toBER(sizeOnly?: boolean): ArrayBuffer }): Uint8Array {
  return new Uint8Array(node.toBER(false));
}

/**
 * Parses exactly one ASN.1 element that must span all of `der`.
 * @param what human name of the structure, used in error messages ("certification request")
 */
export function parseDer(der: Uint8Array, what: string, kind: ErrorKind): asn1js.AsnType {
  if (der.length === 0) throw new CaError(kind, `${what} is empty`);
  let parsed: asn1js.FromBerResult;
  try {
    parsed = asn1js.fromBER(der);
  } catch (e) {
    throw new CaError(kind, `${what} is not valid DER: ${(e as Error).message}`, { cause: e });
  }
  if (parsed.offset === -1) {
    const why = parsed.result.error || 'cannot be decoded';
    throw new CaError(kind, `${what} is not valid DER (${why})`);
  }
  if (parsed.offset !== der.length) {
    const extra = der.length - parsed.offset;
    throw new CaError(kind, `${what} has ${extra} byte${extra === 1 ? '' : 's'} of trailing data after the DER structure`);
  }
  return parsed.result;
}

/**
 * Parses a DER element that will be embedded into a structure we sign, and checks that
 * asn1js re-encodes it to the very same bytes. Issuer names must match the issuer's
 * subject byte for byte (RFC 5280 name chaining); this guarantees that.
 */
export function parseDerExact(der: Uint8Array, what: string, kind: ErrorKind): asn1js.AsnType {
  const node = parseDer(der, what, kind);
  if (!bytesEqual(encodeDer(node), der)) {
    throw new CaError(kind, `${what} does not re-encode to the same bytes (it is not DER)`);
  }
  return node;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Runs `fn`, turning any non-CaError exception (pkijs/asn1js internals) into CaError(kind). */
export function wrapAsn1<T>(kind: ErrorKind, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CaError) throw e;
    throw new CaError(kind, `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}
