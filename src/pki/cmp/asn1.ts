/**
 * Reading and writing helpers for the CMP and CRMF structures (RFC 9810, RFC 4211), on
 * asn1js. Readers walk a parsed asn1js tree and fail with CaError('malformed') naming the
 * structure and field; writers build asn1js nodes. Opaque values (certificates, names,
 * algorithm identifiers, extensions) are kept as their DER bytes, which makes every
 * structure re-encode to the bytes it was read from.
 */
import * as asn1js from 'asn1js';
import { CaError } from '../../core/errors.ts';
import { bytesOf, derElement, encodeDer, parseDer } from '../der.ts';

export type Node = asn1js.AsnType;

const CONTEXT = 3;

/** A structure that cannot be read: CaError('malformed', rule cmp.asn1). */
export function bad(what: string, why: string): never {
  throw new CaError('malformed', `${what}: ${why}`, { rule: 'cmp.asn1' });
}

/** Parses one DER element spanning all of `der`. */
export function fromDer(der: Uint8Array, what: string): Node {
  return parseDer(der, what, 'malformed');
}

/** The DER bytes a parsed node was read from (or its encoding, for a built node). */
export function derOf(node: Node): Uint8Array {
  const before = (node as { valueBeforeDecodeView?: Uint8Array }).valueBeforeDecodeView;
  if (before && before.byteLength > 0) return bytesOf(before).slice();
  return encodeDer(node);
}

/** A node for DER bytes that are known to be well-formed (kept from parsing or built by us). */
export function nodeOf(der: Uint8Array, what = 'a stored value'): Node {
  return fromDer(der, what);
}

/**
 * Encodes to `der` as is; asn1js writes a node's children through a ViewWriter, which this
 * one gets its bytes (RawData alone would only return them).
 */
class RawNode extends asn1js.RawData {
  override toBER(sizeOnly?: boolean, writer?: asn1js.ViewWriter): ArrayBuffer {
    const bytes = super.toBER(sizeOnly);
    if (!writer) return bytes;
    writer.write(bytes);
    return new ArrayBuffer(0);
  }
}

/**
 * A stored DER value (a certificate, name, algorithm identifier, a message's own header or
 * body) written into a structure as its bytes, checked to be one DER element: parsing it
 * into asn1js nodes only to encode it again cost ~0.6 ms per certificate, several times per
 * answer. For writing only; readers take nodeOf().
 */
export function rawNode(der: Uint8Array, what = 'a stored value'): Node {
  derElement(der, what, 'malformed');
  return new RawNode({ data: der }) as unknown as Node;
}

function tagOf(node: Node): { cls: number; num: number; constructed: boolean } {
  const id = (node as asn1js.BaseBlock).idBlock;
  return { cls: id.tagClass, num: id.tagNumber, constructed: id.isConstructed };
}

export function isContext(node: Node | undefined, num: number): boolean {
  if (!node) return false;
  const t = tagOf(node);
  return t.cls === CONTEXT && t.num === num;
}

export function contextNumber(node: Node): number | undefined {
  const t = tagOf(node);
  return t.cls === CONTEXT ? t.num : undefined;
}

function constructedValue(node: Node): Node[] {
  const v = (node as asn1js.Constructed).valueBlock?.value;
  return Array.isArray(v) ? (v as Node[]) : [];
}

/** The elements of a universal SEQUENCE. */
export function sequence(node: Node | undefined, what: string): Node[] {
  if (!(node instanceof asn1js.Sequence)) return bad(what, 'expected a SEQUENCE');
  return constructedValue(node);
}

/** The elements of a SEQUENCE OF with at least `min` elements. */
export function sequenceOf(node: Node | undefined, what: string, min = 0): Node[] {
  const items = sequence(node, what);
  if (items.length < min) bad(what, `expected at least ${min} element${min === 1 ? '' : 's'}`);
  return items;
}

/** The single element inside an EXPLICIT context tag [num]. */
export function explicit(node: Node | undefined, num: number, what: string): Node {
  if (!node || !isContext(node, num) || !tagOf(node).constructed) return bad(what, `expected an explicit [${num}]`);
  const inner = constructedValue(node);
  if (inner.length !== 1) bad(what, `[${num}] must hold exactly one element`);
  return inner[0]!;
}

/** The elements of an IMPLICIT [num] SEQUENCE. */
export function implicitSequence(node: Node | undefined, num: number, what: string): Node[] {
  if (!node || !isContext(node, num) || !tagOf(node).constructed) return bad(what, `expected a constructed [${num}]`);
  return constructedValue(node);
}

/** The content octets of an IMPLICIT [num] primitive (INTEGER, BIT STRING, NULL, ...). */
export function implicitPrimitive(node: Node | undefined, num: number, what: string): Uint8Array {
  if (!node || !isContext(node, num) || tagOf(node).constructed) return bad(what, `expected a primitive [${num}]`);
  return bytesOf((node as asn1js.Primitive).valueBlock.valueHexView).slice();
}

/** DER of the universal SEQUENCE whose elements an IMPLICIT [n] SEQUENCE carries. */
export function universalSequenceDer(items: Node[]): Uint8Array {
  return encodeDer(new asn1js.Sequence({ value: items.map((i) => rawNode(derOf(i))) }));
}

export function readInteger(node: Node | undefined, what: string): bigint {
  if (!(node instanceof asn1js.Integer)) return bad(what, 'expected an INTEGER');
  return integerFromBytes(bytesOf(node.valueBlock.valueHexView));
}

/** An INTEGER that must fit a small non-negative number (ids, versions, counters). */
export function readSmallInt(node: Node | undefined, what: string, max = 2 ** 31 - 1): number {
  const v = readInteger(node, what);
  if (v < 0n || v > BigInt(max)) bad(what, `${v} is out of range (0..${max})`);
  return Number(v);
}

export function integerFromBytes(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  if (b[0]! & 0x80) v -= 1n << BigInt(b.length * 8);
  return v;
}

/** Content octets of an INTEGER, for values kept as bytes (serial numbers). */
export function readIntegerBytes(node: Node | undefined, what: string): Uint8Array {
  if (!(node instanceof asn1js.Integer)) return bad(what, 'expected an INTEGER');
  return bytesOf(node.valueBlock.valueHexView).slice();
}

export function readOid(node: Node | undefined, what: string): string {
  if (!(node instanceof asn1js.ObjectIdentifier)) return bad(what, 'expected an OBJECT IDENTIFIER');
  return node.valueBlock.toString();
}

export function readOctets(node: Node | undefined, what: string): Uint8Array {
  if (!(node instanceof asn1js.OctetString) || node.idBlock.isConstructed) return bad(what, 'expected a primitive OCTET STRING');
  return bytesOf(node.valueBlock.valueHexView).slice();
}

export function readBitString(node: Node | undefined, what: string): { bytes: Uint8Array; unusedBits: number } {
  if (!(node instanceof asn1js.BitString) || node.idBlock.isConstructed) return bad(what, 'expected a primitive BIT STRING');
  return { bytes: bytesOf(node.valueBlock.valueHexView).slice(), unusedBits: node.valueBlock.unusedBits };
}

export function readUtf8(node: Node | undefined, what: string): string {
  if (!(node instanceof asn1js.Utf8String)) return bad(what, 'expected a UTF8String');
  return node.valueBlock.value;
}

export function readGeneralizedTime(node: Node | undefined, what: string): Date {
  if (!(node instanceof asn1js.GeneralizedTime)) return bad(what, 'expected a GeneralizedTime');
  const d = node.toDate();
  if (Number.isNaN(d.getTime())) bad(what, 'is not a valid time');
  return d;
}

/** X.509 Time: UTCTime or GeneralizedTime. */
export function readTime(node: Node | undefined, what: string): Date {
  if (node instanceof asn1js.UTCTime || node instanceof asn1js.GeneralizedTime) {
    const d = node.toDate();
    if (Number.isNaN(d.getTime())) bad(what, 'is not a valid time');
    return d;
  }
  return bad(what, 'expected a UTCTime or GeneralizedTime');
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
  takeContext(num: number): Node | undefined {
    return this.takeIf((n) => isContext(n, num));
  }
  end(): void {
    if (this.i < this.items.length) bad(this.what, `has ${this.items.length - this.i} unexpected trailing element(s)`);
  }
}

// ---- writers --------------------------------------------------------------------------

export function seq(value: Node[]): asn1js.Sequence {
  return new asn1js.Sequence({ value });
}

export function int(v: number | bigint): asn1js.Integer {
  return typeof v === 'number' && Number.isSafeInteger(v) ? new asn1js.Integer({ value: v }) : integerNode(BigInt(v));
}

function integerNode(v: bigint): asn1js.Integer {
  // Two's complement, minimal length.
  let hex = (v < 0n ? (1n << 512n) + v : v).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (v >= 0n && bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  if (v < 0n) {
    while (bytes.length > 1 && bytes[0] === 0xff && bytes[1]! & 0x80) bytes = bytes.subarray(1);
  }
  return new asn1js.Integer({ valueHex: new Uint8Array(bytes) });
}

export function intBytes(bytes: Uint8Array): asn1js.Integer {
  return new asn1js.Integer({ valueHex: bytes });
}

export function octets(bytes: Uint8Array): asn1js.OctetString {
  return new asn1js.OctetString({ valueHex: bytes });
}

export function oid(value: string): asn1js.ObjectIdentifier {
  return new asn1js.ObjectIdentifier({ value });
}

export function utf8(value: string): asn1js.Utf8String {
  return new asn1js.Utf8String({ value });
}

export function bitString(bytes: Uint8Array, unusedBits = 0): asn1js.BitString {
  return new asn1js.BitString({ valueHex: bytes, unusedBits });
}

export function generalizedTime(d: Date): asn1js.GeneralizedTime {
  return new asn1js.GeneralizedTime({ valueDate: new Date(Math.floor(d.getTime() / 1000) * 1000) });
}

export function nullNode(): asn1js.Null {
  return new asn1js.Null();
}

export function ctxExplicit(num: number, inner: Node): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: CONTEXT, tagNumber: num }, value: [inner] });
}

export function ctxImplicitConstructed(num: number, value: Node[]): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: CONTEXT, tagNumber: num }, value });
}

export function ctxImplicitPrimitive(num: number, bytes: Uint8Array): asn1js.Primitive {
  return new asn1js.Primitive({ idBlock: { tagClass: CONTEXT, tagNumber: num }, valueHex: bytes });
}

/** The elements of a DER universal SEQUENCE, as nodes (to re-tag it implicitly). */
export function sequenceItems(der: Uint8Array, what: string): Node[] {
  return sequence(nodeOf(der, what), what);
}

/** Encodes a node (or a DER value given as bytes) to DER. */
export function toDerBytes(node: Node): Uint8Array {
  return encodeDer(node);
}
