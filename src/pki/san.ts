/** Subject alternative names: the SanSet model, GeneralNames encoding and IP address text. */
import { isIPv4, isIPv6 } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError, type ErrorKind } from '../core/errors.ts';
import { derChildren, derElement, parseDer, tlv, toHex, type DerElement } from './der.ts';
import { attrsFromRdns, formatDn } from './names.ts';

export interface SanSet {
  dns: string[];
  ip: string[];
  email: string[];
  uri: string[];
}

export function emptySans(): SanSet {
  return { dns: [], ip: [], email: [], uri: [] };
}

/** The names as certflow stores and shows them: dns:…, ip:…, email:…, uri:… */
export function sanList(sans: SanSet): string[] {
  return [
    ...sans.dns.map((v) => `dns:${v}`),
    ...sans.ip.map((v) => `ip:${v}`),
    ...sans.email.map((v) => `email:${v}`),
    ...sans.uri.map((v) => `uri:${v}`),
  ];
}

export function sanCount(s: SanSet): number {
  return s.dns.length + s.ip.length + s.email.length + s.uri.length;
}

// GeneralName CHOICE tags (RFC 5280 4.2.1.6)
const GN = {
  otherName: 0,
  rfc822Name: 1,
  dNSName: 2,
  x400Address: 3,
  directoryName: 4,
  ediPartyName: 5,
  uri: 6,
  iPAddress: 7,
  registeredID: 8,
} as const;

// ---------------------------------------------------------------------------------------
// IP addresses

/** Text form of a 4- or 16-byte address: dotted IPv4, RFC 5952 IPv6 ("::1", "2001:db8::1"). */
export function ipToText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new CaError('malformed', `an IP address has ${bytes.length} bytes, expected 4 or 16`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // RFC 5952 4.2: compress the longest run (>= 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Bytes of an IPv4 or IPv6 address in text form, undefined when it is not one. */
export function ipFromText(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return new Uint8Array(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) return undefined; // zone ids have no place in a certificate
  let head = text;
  let v4Tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4Tail = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`; // placeholder groups, replaced below
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const l = parse(left);
  const r = parse(right);
  const groups = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (v4Tail.length) out.set(v4Tail, 12);
  return out;
}

/** Canonical text of an IP address ("0:0::1" -> "::1"), undefined when it is not one. */
export function normalizeIp(text: string): string | undefined {
  const bytes = ipFromText(text.trim());
  return bytes && ipToText(bytes);
}

// ---------------------------------------------------------------------------------------
// GeneralNames <-> SanSet

/** DER GeneralNames for a SanSet, in the order DNS, IP, email, URI (IMPLICIT tags [2], [7], [1], [6]). */
export function encodeGeneralNames(sans: SanSet): Uint8Array {
  for (const v of [...sans.dns, ...sans.email, ...sans.uri]) {
    // dNSName, rfc822Name and URI are IA5String: ASCII only (IDNs must be punycode).
    if (!/^[\x21-\x7e]+$/.test(v)) throw new CaError('malformed', `SAN "${v}" is not printable ASCII`, { rule: 'san.ascii' });
  }
  const text = (tag: number) => (v: string) => tlv(tag, new Uint8Array(Buffer.from(v, 'latin1')));
  return tlv(
    0x30,
    ...sans.dns.map(text(0x80 | GN.dNSName)),
    ...sans.ip.map((v) => tlv(0x80 | GN.iPAddress, ipBytesOrThrow(v))),
    ...sans.email.map(text(0x80 | GN.rfc822Name)),
    ...sans.uri.map(text(0x80 | GN.uri)),
  );
}

function ipBytesOrThrow(text: string): Uint8Array {
  const b = ipFromText(text);
  if (!b) throw new CaError('malformed', `"${text}" is not an IP address`, { rule: 'san.ipSyntax' });
  return b;
}

export interface DecodedNames {
  sans: SanSet;
  /** Names a SanSet cannot hold, described for error messages ("directoryName CN=x"). */
  other: string[];
}

/** One GeneralName as sansFromGeneralNames reads it: text (rfc822Name, dNSName, URI), bytes (iPAddress), or another kind of name. */
type ReadName = { type: 1 | 2 | 6; text: string } | { type: 7; bytes: Uint8Array } | { type: number; other: string };

/** SanSet from GeneralNames; malformed IP lengths throw CaError(kind). */
function sansFromGeneralNames(names: readonly ReadName[], kind: ErrorKind): DecodedNames {
  const sans = emptySans();
  const other: string[] = [];
  for (const n of names) {
    if ('other' in n) {
      other.push(n.other);
    } else if ('bytes' in n) {
      if (n.bytes.length !== 4 && n.bytes.length !== 16) {
        throw new CaError(kind, `an IP address SAN has ${n.bytes.length} bytes (expected 4 or 16): ${toHex(n.bytes)}`, {
          rule: 'san.ipSyntax',
        });
      }
      sans.ip.push(ipToText(n.bytes));
    } else {
      (n.type === GN.dNSName ? sans.dns : n.type === GN.rfc822Name ? sans.email : sans.uri).push(n.text);
    }
  }
  return { sans, other };
}

/** A GeneralName pkijs parsed, as sansFromGeneralNames reads it. */
function readPkijsName(n: pkijs.GeneralName): ReadName {
  switch (n.type) {
    case GN.dNSName:
    case GN.rfc822Name:
    case GN.uri:
      return { type: n.type, text: String(n.value) };
    case GN.iPAddress:
      return { type: GN.iPAddress, bytes: (n.value as asn1js.OctetString).valueBlock.valueHexView };
    default:
      return { type: n.type, other: describeOtherName(n) };
  }
}

/**
 * The names of a GeneralNames that holds only rfc822Name, dNSName, URI and iPAddress
 * entries (what a SAN carries in practice), read on its bytes (der.ts) without pkijs'
 * GeneralName schema, whose nine alternatives (a Name among them) cost about a millisecond
 * per extension. Undefined for anything else: pkijs reads it (and refuses what is malformed).
 * The text is the IA5String's bytes one character each, as asn1js decodes an IA5String.
 */
function readSimpleNames(der: Uint8Array): ReadName[] | undefined {
  let items: DerElement[];
  try {
    items = derChildren(derElement(der, 'the GeneralNames', 'malformed', 0x30), 'the GeneralNames', 'malformed');
  } catch {
    return undefined;
  }
  if (items.length === 0) return undefined;
  const out: ReadName[] = [];
  for (const item of items) {
    // 0x80 | n: context-specific, primitive; the four kinds are IMPLICIT primitives.
    const tagNumber = item.tag ^ 0x80;
    const bytes = item.content;
    if (tagNumber === GN.iPAddress) out.push({ type: GN.iPAddress, bytes });
    else if (tagNumber === GN.dNSName || tagNumber === GN.rfc822Name || tagNumber === GN.uri)
      out.push({ type: tagNumber, text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') });
    else return undefined;
  }
  return out;
}

function describeOtherName(n: pkijs.GeneralName): string {
  const value: unknown = n.value;
  switch (n.type) {
    case GN.otherName: {
      const oid = value instanceof asn1js.Constructed ? value.valueBlock.value[0] : undefined;
      return `otherName ${oid instanceof asn1js.ObjectIdentifier ? oid.getValue() : ''}`.trim();
    }
    case GN.directoryName:
      return value instanceof pkijs.RelativeDistinguishedNames ? `directoryName ${formatDn(attrsFromRdns(value))}` : 'directoryName';
    case GN.registeredID:
      return `registeredID ${String(value)}`;
    case GN.x400Address:
      return 'x400Address';
    case GN.ediPartyName:
      return 'ediPartyName';
    default:
      return `GeneralName [${n.type}]`;
  }
}

/** Parses a DER GeneralNames (a SAN extension value). */
export function decodeGeneralNames(der: Uint8Array, kind: ErrorKind): DecodedNames {
  const simple = readSimpleNames(der);
  if (simple) return sansFromGeneralNames(simple, kind);
  const node = parseDer(der, 'the subjectAltName extension', kind);
  let parsed: pkijs.GeneralNames;
  try {
    parsed = new pkijs.GeneralNames({ schema: node });
  } catch (e) {
    throw new CaError(kind, `the subjectAltName extension is malformed (${der.length} bytes)`, { rule: 'san.syntax', cause: e });
  }
  return sansFromGeneralNames(parsed.names.map(readPkijsName), kind);
}
