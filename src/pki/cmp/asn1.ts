/**
 * Reading and writing helpers for the CMP and CRMF structures (RFC 9810, RFC 4211), on DER
 * bytes. Readers walk DER elements (der.ts) and fail with CaError('malformed') naming the
 * structure and field; writers return DER. Opaque values (certificates, names, algorithm
 * identifiers, extensions) are kept as their DER bytes, which makes every structure
 * re-encode to the bytes it was read from.
 *
 * A PKIMessage is DER (RFC 9811 3.2 says so of the HTTP transfer): fromDer checks the
 * framing of the whole message once (definite, minimal lengths; no constructed strings),
 * so the readers below only look at tags and content. Reading a message through asn1js
 * objects cost about 2.5 ms of the CMP server's time per transaction.
 */
import { CaError } from '../../core/errors.ts';
import { integerFromSigned, signedFromInteger } from '../integer.ts';
import {
  NULL,
  bitString,
  derChildren,
  derElement,
  derElementExact,
  derOid,
  derTime,
  oidDer,
  timeDer,
  tlv,
  type DerElement,
} from '../der.ts';

/** A DER element being read. */
export type Node = DerElement;

/** Universal tags the CMP and CRMF readers test for. */
export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, SEQUENCE: 0x30 } as const;

/** A structure that cannot be read: CaError('malformed', rule cmp.asn1). */
export function bad(what: string, why: string): never {
  throw new CaError('malformed', `${what}: ${why}`, { rule: 'cmp.asn1' });
}

/** One DER element spanning all of `der`, its framing checked throughout (derElementExact). */
export function fromDer(der: Uint8Array, what: string): Node {
  if (der.length === 0) throw new CaError('malformed', `${what} is empty`);
  return derElementExact(der, what, 'malformed');
}

/** A copy of an element's DER bytes, to keep beyond the buffer it was read from. */
export function derOf(node: Node): Uint8Array {
  return node.bytes.slice();
}

export function isContext(node: Node | undefined, num: number): boolean {
  return node !== undefined && contextNumber(node) === num;
}

export function contextNumber(node: Node): number | undefined {
  return (node.tag & 0xc0) === 0x80 ? node.tag & 0x1f : undefined;
}

const constructed = (node: Node) => (node.tag & 0x20) !== 0;

/** The elements of a universal SEQUENCE. */
export function sequence(node: Node | undefined, what: string): Node[] {
  if (node?.tag !== TAG.SEQUENCE) return bad(what, 'expected a SEQUENCE');
  return derChildren(node, what, 'malformed');
}

/** The elements of a SEQUENCE OF with at least `min` elements. */
export function sequenceOf(node: Node | undefined, what: string, min = 0): Node[] {
  const items = sequence(node, what);
  if (items.length < min) bad(what, `expected at least ${min} element${min === 1 ? '' : 's'}`);
  return items;
}

/** The single element inside an EXPLICIT context tag [num]. */
export function explicit(node: Node | undefined, num: number, what: string): Node {
  if (!node || !isContext(node, num) || !constructed(node)) return bad(what, `expected an explicit [${num}]`);
  const inner = derChildren(node, what, 'malformed');
  if (inner.length !== 1) bad(what, `[${num}] must hold exactly one element`);
  return inner[0]!;
}

/** `node` if it is a constructed context tag [num] (an IMPLICIT SEQUENCE). */
function constructedContext(node: Node | undefined, num: number, what: string): Node {
  if (!node || !isContext(node, num) || !constructed(node)) return bad(what, `expected a constructed [${num}]`);
  return node;
}

/** The elements of an IMPLICIT [num] SEQUENCE. */
export function implicitSequence(node: Node | undefined, num: number, what: string): Node[] {
  return derChildren(constructedContext(node, num, what), what, 'malformed');
}

/** DER of the universal SEQUENCE that an IMPLICIT [num] SEQUENCE carries (fromDer checked its framing). */
export function implicitAsSequence(node: Node | undefined, num: number, what: string): Uint8Array {
  return tlv(TAG.SEQUENCE, constructedContext(node, num, what).content);
}

/** The content octets of an IMPLICIT [num] primitive (INTEGER, BIT STRING, NULL, ...). */
export function implicitPrimitive(node: Node | undefined, num: number, what: string): Uint8Array {
  if (!node || !isContext(node, num) || constructed(node)) return bad(what, `expected a primitive [${num}]`);
  return node.content.slice();
}

function primitive(node: Node | undefined, tag: number, what: string, expected: string): Uint8Array {
  if (node?.tag !== tag) return bad(what, `expected ${expected}`);
  return node.content;
}

/** INTEGER content octets as DER has them: at least one, and no leading octet too many. */
export function integerContent(content: Uint8Array, what: string): Uint8Array {
  if (content.length === 0) bad(what, 'is an INTEGER without content octets');
  if (content.length > 1 && ((content[0] === 0 && content[1]! < 0x80) || (content[0] === 0xff && content[1]! >= 0x80)))
    bad(what, 'is not DER (an INTEGER with a leading octet too many)');
  return content.slice();
}

/** Content octets of an INTEGER, for values kept as bytes (serial numbers). */
export function readIntegerBytes(node: Node | undefined, what: string): Uint8Array {
  return integerContent(primitive(node, TAG.INTEGER, what, 'an INTEGER'), what);
}

export function readInteger(node: Node | undefined, what: string): bigint {
  return signedFromInteger(readIntegerBytes(node, what));
}

/** An INTEGER that must fit a small non-negative number (ids, versions, counters). */
export function readSmallInt(node: Node | undefined, what: string, max = 2 ** 31 - 1): number {
  const v = readInteger(node, what);
  if (v < 0n || v > BigInt(max)) bad(what, `${v} is out of range (0..${max})`);
  return Number(v);
}

export function readOid(node: Node | undefined, what: string): string {
  return derOid(node, what, 'malformed');
}

export function readOctets(node: Node | undefined, what: string): Uint8Array {
  return primitive(node, TAG.OCTET_STRING, what, 'a primitive OCTET STRING').slice();
}

export function readBitString(node: Node | undefined, what: string): { bytes: Uint8Array; unusedBits: number } {
  const content = primitive(node, TAG.BIT_STRING, what, 'a primitive BIT STRING');
  const unusedBits = content[0];
  if (unusedBits === undefined || unusedBits > 7 || (unusedBits > 0 && content.length === 1))
    bad(what, 'is not a valid BIT STRING (its count of unused bits)');
  if (content[content.length - 1]! & ((1 << unusedBits) - 1)) bad(what, 'is not DER (its unused bits are not zero)');
  return { bytes: content.slice(1), unusedBits };
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function readUtf8(node: Node | undefined, what: string): string {
  const content = primitive(node, 0x0c, what, 'a UTF8String');
  try {
    return utf8Decoder.decode(content);
  } catch {
    return bad(what, 'is not valid UTF-8');
  }
}

export function readNull(node: Node | undefined, what: string): void {
  if (primitive(node, TAG.NULL, what, 'NULL').length !== 0) bad(what, 'is a NULL with content');
}

export function readGeneralizedTime(node: Node | undefined, what: string): Date {
  if (node?.tag !== 0x18) return bad(what, 'expected a GeneralizedTime');
  return readTime(node, what);
}

/** X.509 Time: UTCTime or GeneralizedTime (fractions of a second allowed, as DER writes them). */
export function readTime(node: Node | undefined, what: string): Date {
  if (node?.tag !== 0x17 && node?.tag !== 0x18) return bad(what, 'expected a UTCTime or GeneralizedTime');
  return derTime(node, what, 'malformed', { fractions: true }).date;
}

/** The optional elements of a SEQUENCE, read in order: `next(test)` takes the head if it matches. */
export class Cursor {
  private i = 0;
  constructor(
    private readonly items: Node[],
    private readonly what: string,
  ) {}
  peek(): Node | undefined {
    return this.items[this.i];
  }
  take(): Node {
    const n = this.items[this.i];
    if (!n) return bad(this.what, 'is missing a required element');
    this.i++;
    return n;
  }
  takeIf(test: (n: Node) => boolean): Node | undefined {
    const n = this.items[this.i];
    if (n && test(n)) {
      this.i++;
      return n;
    }
    return undefined;
  }
  takeTag(tag: number): Node | undefined {
    return this.takeIf((n) => n.tag === tag);
  }
  takeContext(num: number): Node | undefined {
    return this.takeIf((n) => isContext(n, num));
  }
  end(): void {
    if (this.i < this.items.length) bad(this.what, `has ${this.items.length - this.i} unexpected trailing element(s)`);
  }
}

// ---- writers: each returns one DER element ----------------------------------------------

export function seq(items: Uint8Array[]): Uint8Array {
  return tlv(TAG.SEQUENCE, ...items);
}

export function int(v: number | bigint): Uint8Array {
  return tlv(TAG.INTEGER, integerFromSigned(BigInt(v)));
}

export function intBytes(content: Uint8Array): Uint8Array {
  return tlv(TAG.INTEGER, content);
}

export function octets(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.OCTET_STRING, bytes);
}

export const oid = oidDer;

export function utf8(value: string): Uint8Array {
  return tlv(0x0c, Buffer.from(value, 'utf8'));
}

/** A GeneralizedTime with whole seconds. */
export function generalizedTime(d: Date): Uint8Array {
  return timeDer(d, 'generalized');
}

export { NULL, bitString };

export function ctxExplicit(num: number, inner: Uint8Array): Uint8Array {
  return tlv(0xa0 | num, inner);
}

export function ctxImplicitConstructed(num: number, items: Uint8Array[]): Uint8Array {
  return tlv(0xa0 | num, ...items);
}

export function ctxImplicitPrimitive(num: number, content: Uint8Array): Uint8Array {
  return tlv(0x80 | num, content);
}

/** [num] IMPLICIT of the DER universal SEQUENCE `der` (its content under the context tag). */
export function implicitFromSequence(num: number, der: Uint8Array, what: string): Uint8Array {
  return tlv(0xa0 | num, derElement(der, what, 'malformed', TAG.SEQUENCE).content);
}

/**
 * A stored DER value (a certificate, name, algorithm identifier, a message's own header or
 * body) written into a structure as its bytes, checked to be one DER element.
 */
export function rawNode(der: Uint8Array, what = 'a stored value'): Uint8Array {
  derElement(der, what, 'malformed');
  return der;
}
