/**
 * Distinguished names as text and as DER.
 *
 * ORDER: certflow writes and reads DN text in ENCODING order: the first attribute in the
 * text is the first RDN in the DER Name. "CN=foo,O=bar" encodes CN then O, and a Name whose
 * DER holds CN then O formats as "CN=foo,O=bar". This is the order OpenSSL displays
 * (`openssl x509 -subject`, `-subj /CN=foo/O=bar`), so what operators type, what the
 * config holds and what openssl prints agree; it is the reverse of strict RFC 4514, which
 * lists the last RDN first. Every function here uses this one order, so text -> DER -> text
 * round-trips exactly.
 *
 * Each attribute is its own RDN; multi-valued RDNs ("CN=a+OU=b") are not produced, and when
 * read from a certificate or request their attributes are flattened into the list.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError, type ErrorKind } from '../core/errors.ts';
import { SUBJECT_ATTRS } from '../config/profiles.ts';
import { derChildren, derOid, encodeDer, oidDer, tlv, toHex, type DerElement } from './der.ts';

export type RdnAttr = { type: string /* OID */; short?: string; value: string };

/** Well-known attributes beyond the profile-selectable SUBJECT_ATTRS, for display and parsing. */
const EXTRA_ATTRS: Record<string, string> = {
  SN: '2.5.4.4', // surname (OpenSSL spelling; serialNumber is spelled out)
  street: '2.5.4.9',
  title: '2.5.4.12',
  description: '2.5.4.13',
  postalCode: '2.5.4.17',
  GN: '2.5.4.42',
  pseudonym: '2.5.4.65',
  organizationIdentifier: '2.5.4.97',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
};

const SHORT_BY_OID = new Map<string, string>(
  [...Object.entries(EXTRA_ATTRS), ...Object.entries(SUBJECT_ATTRS)].map(([short, oid]) => [oid, short]),
);

const OID_BY_LOWER_SHORT = new Map<string, string>([
  ...Object.entries(EXTRA_ATTRS).map(([s, o]) => [s.toLowerCase(), o] as const),
  ...Object.entries(SUBJECT_ATTRS).map(([s, o]) => [s.toLowerCase(), o] as const),
  ['e', SUBJECT_ATTRS.emailAddress], // Windows spelling
]);

/** Short name of an attribute OID ("2.5.4.3" -> "CN"), undefined when unknown. */
export function attrShortName(oid: string): string | undefined {
  return SHORT_BY_OID.get(oid);
}

/** OID of a short name (case-insensitive) or of a dotted OID, undefined when unknown. */
function attrOid(nameOrOid: string): string | undefined {
  const s = nameOrOid.trim();
  const dotted = /^(?:oid\.)?(\d+(?:\.\d+)+)$/i.exec(s);
  if (dotted) return dotted[1];
  return OID_BY_LOWER_SHORT.get(s.toLowerCase());
}

function attr(type: string, value: string): RdnAttr {
  const short = attrShortName(type);
  return short === undefined ? { type, value } : { type, short, value };
}

// ---------------------------------------------------------------------------------------
// Text

/**
 * Parses DN text in encoding order (see the module comment): "CN=foo,O=Foo\, Inc.".
 * Accepts RFC 4514 escapes (\, \+ \\ \" and \XX hex bytes), double-quoted values, spaces
 * around separators, case-insensitive short names, dotted OIDs, and OpenSSL's slash form
 * ("/CN=foo/O=bar"). Throws CaError('malformed', rule dn.syntax).
 */
export function parseDn(text: string): RdnAttr[] {
  // Only leading blanks are trimmed here: a trailing space may be escaped ("CN=a\\ "), and
  // unescaped trailing spaces are dropped by the value scanner.
  const src = text.trimStart();
  if (src.trim() === '') return [];
  const slashForm = src.startsWith('/');
  const sep = slashForm ? '/' : ',';
  const body = slashForm ? src.slice(1) : src;
  const fail = (why: string): never => {
    throw new CaError('malformed', `invalid distinguished name "${text}": ${why}`, { rule: 'dn.syntax' });
  };

  const attrs: RdnAttr[] = [];
  let i = 0;
  while (i <= body.length) {
    // attribute type, up to '='
    const eq = body.indexOf('=', i);
    if (eq === -1) fail(`"${body.slice(i).trim()}" has no "="`);
    const typeText = body.slice(i, eq).trim();
    if (typeText === '') fail('an attribute has no type');
    const oid = attrOid(typeText) ?? fail(`unknown attribute type "${typeText}"`);
    // attribute value, up to an unescaped separator
    const { value, next } = readDnValue(body, eq + 1, sep, fail);
    if (value === '') fail(`attribute ${typeText} has an empty value`);
    attrs.push(attr(oid, value));
    if (next >= body.length) break;
    i = next + 1; // skip the separator
    if (body.slice(i).trim() === '') fail('it ends with a separator');
  }
  return attrs;
}

type Piece = { ch: string; escaped: boolean };

/** Reads one value starting at `start`; returns it unescaped and the separator's index. */
function readDnValue(body: string, start: number, sep: string, fail: (why: string) => never): { value: string; next: number } {
  let i = start;
  while (i < body.length && body[i] === ' ') i++;
  if (body[i] === '"') {
    const { pieces, end } = scanEscaped(body, i + 1, (c) => c === '"', fail);
    if (body[end] !== '"') fail('a quoted value is not closed');
    let j = end + 1;
    while (j < body.length && body[j] === ' ') j++;
    if (j < body.length && body[j] !== sep) fail('unexpected text after a quoted value');
    return { value: joinPieces(pieces), next: j };
  }
  if (body[i] === '#') fail('hex-encoded (#...) values are not supported');
  const { pieces, end } = scanEscaped(body, i, (c) => c === sep, fail, sep === ',');
  // Only unescaped trailing spaces are insignificant ("CN=a\ " keeps its space).
  while (pieces.length && !pieces[pieces.length - 1].escaped && pieces[pieces.length - 1].ch === ' ') pieces.pop();
  return { value: joinPieces(pieces), next: end };
}

/**
 * Scans characters until `stop` matches an unescaped character (or the end). "\XX" hex
 * escapes are collected as bytes and decoded as UTF-8 (RFC 4514 escapes UTF-8 octets).
 */
function scanEscaped(
  s: string,
  from: number,
  stop: (c: string) => boolean,
  fail: (why: string) => never,
  rejectPlus = false,
): { pieces: Piece[]; end: number } {
  const pieces: Piece[] = [];
  const bytes: number[] = [];
  const flushBytes = () => {
    if (bytes.length === 0) return;
    for (const ch of Buffer.from(bytes).toString('utf8')) pieces.push({ ch, escaped: true });
    bytes.length = 0;
  };
  let i = from;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const hex = s.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      if (i + 1 >= s.length) fail('it ends with a lone backslash');
      flushBytes();
      pieces.push({ ch: s[i + 1], escaped: true });
      i += 1;
      continue;
    }
    flushBytes();
    if (stop(c)) break;
    if (rejectPlus && c === '+') fail('multi-valued RDNs ("+") are not supported; escape a literal plus as "\\+"');
    pieces.push({ ch: c, escaped: false });
  }
  flushBytes();
  return { pieces, end: i };
}

function joinPieces(pieces: Piece[]): string {
  return pieces.map((p) => p.ch).join('');
}

/** Formats attributes as DN text in encoding order, RFC 4514 escaping: "CN=foo,O=Foo\, Inc.". */
export function formatDn(attrs: readonly RdnAttr[]): string {
  return attrs.map((a) => `${a.short ?? attrShortName(a.type) ?? a.type}=${escapeDnValue(a.value)}`).join(',');
}

function escapeDnValue(v: string): string {
  const chars = [...v];
  return chars
    .map((c, i) => {
      if ('\\",+;<>='.includes(c)) return `\\${c}`;
      if (c === '\0') return '\\00';
      const leading = i === 0 && (c === '#' || c === ' ');
      const trailing = i === chars.length - 1 && c === ' ';
      return leading || trailing ? `\\${c}` : c;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------
// DER

const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
// eslint-disable-next-line no-control-regex -- IA5String is the whole 7-bit range, controls included
const IA5_RE = /^[\x00-\x7f]*$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** ASN.1 string type per attribute: PrintableString for C and serialNumber (RFC 5280), IA5String
 *  for emailAddress and DC (their PKCS#9 / RFC 4519 syntax), UTF8String for everything else. */
function attributeValue(a: RdnAttr): Uint8Array {
  const short = attrShortName(a.type);
  const bad = (syntax: string): never => {
    throw new CaError('malformed', `subject attribute ${short ?? a.type}="${a.value}" is not a valid ${syntax}`, { rule: 'dn.value' });
  };
  if (short === 'C' || short === 'serialNumber') {
    if (!PRINTABLE_RE.test(a.value)) bad('PrintableString');
    return tlv(0x13, Buffer.from(a.value, 'latin1'));
  }
  if (short === 'emailAddress' || short === 'DC') {
    if (!IA5_RE.test(a.value)) bad('IA5String (ASCII)');
    return tlv(0x16, Buffer.from(a.value, 'latin1'));
  }
  if (LONE_SURROGATE_RE.test(a.value)) bad('UTF8String (it has a lone surrogate)');
  return tlv(0x0c, Buffer.from(a.value, 'utf8'));
}

/** DER Name, one attribute per RDN, in array order, from DER pieces (der.ts). */
export function encodeName(attrs: readonly RdnAttr[]): Uint8Array {
  return tlv(0x30, ...attrs.map((a) => tlv(0x31, tlv(0x30, oidDer(a.type), attributeValue(a)))));
}

/** Attributes of a parsed Name (pkijs flattens multi-valued RDNs for us). */
export function attrsFromRdns(rdns: pkijs.RelativeDistinguishedNames): RdnAttr[] {
  return rdns.typesAndValues.map((tv) => attr(tv.type, attributeValueText(tv.value)));
}

/** String attributes as their text; anything else RFC 4514 style as "#" + hex of its DER. */
function attributeValueText(v: pkijs.AttributeValueType | asn1js.AsnType): string {
  if (v instanceof asn1js.BaseStringBlock) return v.getValue();
  return `#${toHex(encodeDer(v))}`;
}

/**
 * Attributes of a DER Name (RDNSequence), read on its bytes (der.ts) like attrsFromRdns
 * reads a parsed one: multi-valued RDNs flattened in order, strings as their text, other
 * values as "#" + hex of their DER. Malformed names, and strings that are not what their
 * type says (a UTF8String that is not UTF-8, a lone surrogate), are CaError(kind).
 */
export function readName(name: DerElement, what: string, kind: ErrorKind): RdnAttr[] {
  const fail = (why: string): never => {
    throw new CaError(kind, `${what} ${why}`);
  };
  if (name.tag !== 0x30) fail('is not a Name (a SEQUENCE of RDNs)');
  const out: RdnAttr[] = [];
  for (const rdn of derChildren(name, what, kind)) {
    if (rdn.tag !== 0x31) fail('has a relative distinguished name that is not a SET');
    const atvs = derChildren(rdn, what, kind);
    if (atvs.length === 0) fail('has an empty relative distinguished name');
    for (const atv of atvs) {
      const [type, value, ...extra] = atv.tag === 0x30 ? derChildren(atv, what, kind) : [];
      if (!value || extra.length) fail('has an attribute that is not a type and a value');
      out.push(attr(derOid(type, `${what}'s attribute type`, kind), derStringText(value!, what, kind) ?? `#${toHex(value!.bytes)}`));
    }
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Tags of the ASN.1 string types whose octets are one character each (as asn1js reads them). */
const BYTE_STRING_TAGS = new Set([0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1a, 0x1b, 0x1d]);

/**
 * The text of an ASN.1 string element (UTF8String, BMPString, UniversalString, and the
 * byte-per-character types: PrintableString, IA5String, TeletexString, ...), undefined for
 * an element of another type. Octets that are no text in their type are CaError(kind).
 */
export function derStringText(el: DerElement, what: string, kind: ErrorKind): string | undefined {
  const bad = (type: string): never => {
    throw new CaError(kind, `${what} has a ${type} that is not valid text`);
  };
  const bytes = Buffer.from(el.content.buffer, el.content.byteOffset, el.content.byteLength);
  switch (el.tag) {
    case 0x0c:
      try {
        return strictUtf8.decode(bytes);
      } catch {
        return bad('UTF8String');
      }
    case 0x1e: {
      if (bytes.length % 2) bad('BMPString');
      const text = Buffer.from(bytes).swap16().toString('utf16le');
      return /\p{Cs}/u.test(text) ? bad('BMPString') : text;
    }
    case 0x1c: {
      if (bytes.length % 4) bad('UniversalString');
      let text = '';
      for (let i = 0; i < bytes.length; i += 4) {
        const cp = bytes.readUInt32BE(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) bad('UniversalString');
        text += String.fromCodePoint(cp);
      }
      return text;
    }
    default:
      return BYTE_STRING_TAGS.has(el.tag) ? bytes.toString('latin1') : undefined;
  }
}
