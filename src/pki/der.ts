/**
 * Small DER helpers shared by the pki modules. Internal: only truncateToSecond is re-exported
 * from the index.
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

// ---- raw TLV reading and assembly -----------------------------------------------------
// Signed objects are assembled around the exact bytes that were signed, and the TBS we are
// about to sign is inspected on its bytes. Parsing those into asn1js objects (and pkijs
// schemas) and encoding them again costs more than the signature itself; the helpers below
// work on the bytes. They read DER only: single-byte tags, definite lengths.

/** One DER element: its tag byte, the whole element and its content octets (views, no copies). */
export interface DerElement {
  tag: number;
  bytes: Uint8Array;
  content: Uint8Array;
}

/** Reads the element at `offset` of `der`; malformed input is CaError(kind) naming `what`. */
function readElement(der: Uint8Array, offset: number, what: string, kind: ErrorKind): DerElement {
  const fail = (why: string): never => {
    throw new CaError(kind, `${what} is not valid DER (${why})`);
  };
  if (offset + 2 > der.length) fail('it ends inside an element');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('a tag number above 30');
  if (tag === 0) fail('a tag of 0, which ends BER contents');
  // Universal class: SEQUENCE and SET are always constructed, everything else primitive in DER.
  if (tag < 0x40 && (tag & 0x20 ? tag !== 0x30 && tag !== 0x31 : tag === 0x10 || tag === 0x11))
    fail(`tag 0x${tag.toString(16)}, a ${tag & 0x20 ? 'constructed string (BER)' : 'primitive SEQUENCE or SET'}`);
  let len = der[offset + 1]!;
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) fail('an indefinite length, which is BER');
    if (n > 4) fail(`a length of ${n} octets`);
    if (contentStart + n > der.length) fail('it ends inside a length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > der.length) fail('it ends inside an element');
  return { tag, bytes: der.subarray(offset, end), content: der.subarray(contentStart, end) };
}

/** The single element that spans all of `der`, with tag `tag` when one is given. */
export function derElement(der: Uint8Array, what: string, kind: ErrorKind, tag?: number): DerElement {
  const el = readElement(der, 0, what, kind);
  const extra = der.length - el.bytes.length;
  if (extra) throw new CaError(kind, `${what} has ${extra} byte${extra === 1 ? '' : 's'} of trailing data after the DER element`);
  if (tag !== undefined && el.tag !== tag)
    throw new CaError(kind, `${what} has tag 0x${el.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return el;
}

/**
 * The single element spanning `der` (derElement), with the shortest length encoding
 * throughout (assertDerFraming): an element embedded as is into a structure we sign.
 */
export function derElementExact(der: Uint8Array, what: string, kind: ErrorKind, tag?: number): DerElement {
  const el = derElement(der, what, kind, tag);
  assertDerFraming(el, what, kind);
  return el;
}

/** How deep constructed elements may nest: certificates and CMP messages need about 15 levels. */
const MAX_DEPTH = 64;

/**
 * Checks that `el`, and every element inside its constructed elements, has the shortest
 * length encoding (DER): what parseDerExact guarantees of an element embedded as is into a
 * structure we sign, without building asn1js objects. Nesting deeper than MAX_DEPTH is
 * refused, before it could exhaust the stack.
 */
function assertDerFraming(el: DerElement, what: string, kind: ErrorKind, depth = 0): void {
  let lengthOctets = 1;
  if (el.content.length >= 0x80) for (let l = el.content.length; l > 0; l = Math.floor(l / 256)) lengthOctets++;
  if (el.bytes.length - el.content.length !== 1 + lengthOctets)
    throw new CaError(kind, `${what} is not valid DER (a length is not minimal)`);
  if (!(el.tag & 0x20)) return;
  if (depth >= MAX_DEPTH) throw new CaError(kind, `${what} nests elements deeper than ${MAX_DEPTH} levels`);
  for (const child of derChildren(el, what, kind)) assertDerFraming(child, what, kind, depth + 1);
}

/** The elements inside a constructed element (SEQUENCE, SET, [n] EXPLICIT). */
export function derChildren(el: DerElement, what: string, kind: ErrorKind): DerElement[] {
  if (!(el.tag & 0x20)) throw new CaError(kind, `${what} is not a constructed element`);
  const out: DerElement[] = [];
  for (let at = 0; at < el.content.length;) {
    const child = readElement(el.content, at, what, kind);
    out.push(child);
    at += child.bytes.length;
  }
  return out;
}

/** The dotted text of an OBJECT IDENTIFIER element. */
export function derOid(el: DerElement | undefined, what: string, kind: ErrorKind): string {
  if (el?.tag !== 0x06 || el.content.length === 0 || el.content[el.content.length - 1]! & 0x80)
    throw new CaError(kind, `${what} is not an OBJECT IDENTIFIER`);
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of el.content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/**
 * The elements of a SEQUENCE that must span all of `der`, as byte views: e.g. the fields
 * of a TBSCertificate, to check its signature algorithm without parsing it.
 */
export function sequenceElements(der: Uint8Array, what: string): Uint8Array[] {
  const outer = derElement(der, what, 'internal');
  if (outer.tag !== 0x30) throw new CaError('internal', `${what} is not one DER SEQUENCE`);
  return derChildren(outer, what, 'internal').map((e) => e.bytes);
}

/** A DER element with tag `tag` around the concatenated `content`. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const len = content.reduce((n, c) => n + c.length, 0);
  const lenBytes: number[] = [];
  if (len < 0x80) lenBytes.push(len);
  else {
    for (let l = len; l > 0; l = Math.floor(l / 256)) lenBytes.unshift(l % 256);
    lenBytes.unshift(0x80 | lenBytes.length);
  }
  const out = new Uint8Array(1 + lenBytes.length + len);
  out[0] = tag;
  out.set(lenBytes, 1);
  let at = 1 + lenBytes.length;
  for (const c of content) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const oidCache = new Map<string, Uint8Array>();

/** The OBJECT IDENTIFIER element of dotted text ("2.5.29.17"), encoded once per OID. */
export function oidDer(dotted: string): Uint8Array {
  let der = oidCache.get(dotted);
  if (der) return der;
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new CaError('internal', `"${dotted}" is not a dotted OID`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n))
    throw new CaError('internal', `"${dotted}" is not a dotted OID`);
  const content: number[] = [];
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const bytes = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | 0x80);
    content.push(...bytes);
  }
  der = tlv(0x06, Uint8Array.from(content));
  if (oidCache.size < 1000) oidCache.set(dotted, der);
  return der;
}

/** The NULL element (algorithm parameters, implicitConfirm's value). */
export const NULL: Uint8Array = Uint8Array.of(0x05, 0x00);

/** A BIT STRING: no unused bits for signatures and public keys; a named-bit list (CMP's PKIFailureInfo) may have some. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(0x03, Uint8Array.of(unusedBits), bytes);
}

/** Dates in certificates have whole seconds (RFC 5280 forbids fractional GeneralizedTime). */
export function truncateToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * A time element with whole seconds. `rfc5280` (certificates, RFC 5280 4.1.2.5): UTCTime
 * through 2049, GeneralizedTime from 2050 (and before 1950); `generalized`: always
 * GeneralizedTime (OCSP, RFC 6960; CMP).
 */
export function timeDer(d: Date, form: 'rfc5280' | 'generalized' = 'rfc5280'): Uint8Array {
  const t = truncateToSecond(d);
  const year = t.getUTCFullYear();
  if (year < 0 || year > 9999) throw new CaError('internal', `${t.toISOString()} is outside the years a certificate time can hold`);
  const iso = t.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  const utc = form === 'rfc5280' && year >= 1950 && year <= 2049;
  return tlv(utc ? 0x17 : 0x18, new Uint8Array(Buffer.from(`${utc ? digits.slice(2) : digits}Z`, 'latin1')));
}

/**
 * A UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the only forms RFC 5280
 * 4.1.2.5 allows; with `fractions`, a GeneralizedTime may also carry fractions of a second
 * (YYYYMMDDHHMMSS.fffZ, as DER writes them: CMP's messageTime).
 */
export function derTime(
  el: DerElement,
  what: string,
  kind: ErrorKind,
  opts: { fractions?: boolean } = {},
): { date: Date; type: 'UTCTime' | 'GeneralizedTime' } {
  const text = Buffer.from(el.content).toString('latin1');
  const m = (
    el.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})()Z$/
      : el.tag === 0x18
        ? opts.fractions
          ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?Z$/
          : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})()Z$/
        : undefined
  )?.exec(text);
  const forms = opts.fractions ? 'YYMMDDHHMMSSZ nor YYYYMMDDHHMMSS[.f]Z' : 'YYMMDDHHMMSSZ nor YYYYMMDDHHMMSSZ';
  if (!m) throw new CaError(kind, `${what} has a time that is neither ${forms}: "${text}"`);
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // RFC 5280 4.1.2.5.1: a UTCTime year YY >= 50 is 19YY, else 20YY.
  const year = el.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, sec, ms));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) {
    throw new CaError(kind, `${what} has a time that is no date: "${text}"`);
  }
  return { date, type: el.tag === 0x17 ? 'UTCTime' : 'GeneralizedTime' };
}
