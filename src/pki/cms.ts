/**
 * The CMS (RFC 5652) that EST needs, and EST's base64 body encoding.
 *
 * EST returns certificates as a "certs-only" message (RFC 7030 4.1.3, RFC 5751 3.2.2): a
 * degenerate SignedData with no signers and no content, used purely as a bag of
 * certificates. certflow builds these for /cacerts, /simpleenroll, /simplereenroll and
 * /serverkeygen, and reads them back (tests, and any client-side code).
 *
 * EST bodies are base64 (RFC 7030 section 4, clarified by RFC 8951: the body is always
 * base64 and the Content-Transfer-Encoding header is to be ignored). The writer here emits
 * the conventional 64-column CRLF lines; the reader is lenient about line breaks and PEM
 * armor, as RFC 8951 asks, but strict about the alphabet and padding so that a broken body
 * gets an error saying what is wrong instead of silently decoding to garbage.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.ts';
import { derChildren, derElementExact, parseDer, tlv, wrapAsn1, type DerElement } from './der.ts';

/** CMS content types (RFC 5652 section 4 and 5, RFC 5083, RFC 5652 9.1). */
const CMS_OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
} as const;

/** Names of the other content types, only to say what a wrong message is. */
const CONTENT_TYPE_NAMES: Readonly<Record<string, string>> = {
  [CMS_OID.data]: 'data',
  '1.2.840.113549.1.7.3': 'envelopedData',
  '1.2.840.113549.1.7.5': 'digestedData',
  '1.2.840.113549.1.7.6': 'encryptedData',
  '1.2.840.113549.1.9.16.1.2': 'authData',
  '1.2.840.113549.1.9.16.1.23': 'authEnvelopedData',
};

// ---------------------------------------------------------------------------------------
// certs-only

/**
 * A DER ContentInfo holding a certs-only SignedData with `certs` in the given order:
 *
 *   SignedData { version 1, digestAlgorithms {}, encapContentInfo { id-data } (no eContent),
 *                certificates [0] certs, signerInfos {} }
 *
 * Version 1 is what RFC 5652 5.1 prescribes for this shape (X.509 certificates only, eContentType
 * id-data, no v3 SignerInfos); no crls field is written. The output is byte for byte what
 * `openssl crl2pkcs7 -nocrl` produces for the same certificates.
 *
 * The certificates keep the caller's order (e.g. issuing CA, then root) instead of being
 * sorted as strict DER would sort a SET OF: clients show and use the chain in the order
 * received, and OpenSSL and other CMS implementations do the same (CMS SignedData only has
 * to be BER; DER matters only for signed attributes, of which there are none here).
 *
 * The certificates come from certflow's own store, so a bad one is a bug: CaError('internal').
 */
export function buildCertsOnly(certs: Uint8Array[]): Uint8Array {
  if (certs.length === 0) throw new CaError('internal', 'a certs-only message needs at least one certificate');
  const signedData = tlv(
    0x30,
    VERSION_1,
    EMPTY_SET, // digestAlgorithms
    ENCAP_DATA,
    tlv(0xa0, ...certs.map((c, i) => checkedCertificate(c, i))),
    EMPTY_SET, // signerInfos
  );
  return tlv(0x30, SIGNED_DATA_OID, tlv(0xa0, signedData));
}

const VERSION_1 = Uint8Array.of(0x02, 0x01, 0x01);
const EMPTY_SET = Uint8Array.of(0x31, 0x00);
/** OBJECT IDENTIFIER 1.2.840.113549.1.7.2 (signedData). */
const SIGNED_DATA_OID = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02);
/** encapContentInfo: SEQUENCE { id-data 1.2.840.113549.1.7.1 }, no eContent. */
const ENCAP_DATA = Uint8Array.of(0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01);

/**
 * One certificate, embedded byte for byte after checking that it is one DER Certificate
 * (tbsCertificate, signatureAlgorithm, signatureValue; minimal lengths) on its bytes:
 * parsing it with pkijs and asn1js cost ~2.5 ms per certificate, on every EST answer.
 */
function checkedCertificate(der: Uint8Array, index: number): Uint8Array {
  const what = `certificate ${index + 1} of the certs-only message`;
  const fail = (e?: unknown): never => {
    throw new CaError('internal', `${what} is not an X.509 certificate${e ? ` (${(e as Error).message})` : ''}`, { cause: e });
  };
  let fields: DerElement[] = [];
  try {
    fields = derChildren(derElementExact(der, what, 'internal', 0x30), what, 'internal');
  } catch (e) {
    fail(e);
  }
  const [tbs, alg, signature, ...rest] = fields;
  if (tbs?.tag !== 0x30 || alg?.tag !== 0x30 || signature?.tag !== 0x03 || rest.length) fail();
  return der;
}

/**
 * The X.509 certificates of a CMS SignedData (a certs-only message, or a signed message whose
 * signatures are not looked at), as DER, in the order they appear. BER input (e.g. the
 * indefinite lengths of streamed `openssl cms -sign -stream` output) is accepted.
 *
 * Other CertificateChoices (attribute certificates, other formats) are skipped: they are
 * valid CMS but carry no certificate a caller could use. A SignedData without certificates
 * gives an empty list; deciding whether that is acceptable is up to the caller.
 * Anything that is not a ContentInfo holding a SignedData is CaError('malformed').
 */
export function parseCertsOnly(der: Uint8Array): Uint8Array[] {
  const node = parseDer(der, 'the CMS message', 'malformed');
  const info = wrapAsn1('malformed', 'the input is not a CMS ContentInfo', () => new pkijs.ContentInfo({ schema: node }));
  if (info.contentType !== CMS_OID.signedData) {
    const name = CONTENT_TYPE_NAMES[info.contentType] ?? `content type ${info.contentType}`;
    throw new CaError('malformed', `the CMS message is ${name}, not signedData`);
  }
  const signedData = info.content as asn1js.BaseBlock;
  // Read the raw certificates first: their bytes come from the input buffer, whatever pkijs does later.
  const certs = certificateBytes(signedData);
  wrapAsn1('malformed', 'the CMS SignedData is malformed', () => new pkijs.SignedData({ schema: signedData }));
  return certs;
}

/** The DER of each X.509 certificate in the [0] certificates field of a SignedData node. */
function certificateBytes(signedData: asn1js.BaseBlock): Uint8Array[] {
  if (!(signedData instanceof asn1js.Sequence)) throw new CaError('malformed', 'the CMS SignedData is not a SEQUENCE');
  // The only context-specific [0] directly inside SignedData is `certificates`
  // (encapContentInfo's [0] eContent is one level deeper).
  const field = signedData.valueBlock.value.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0);
  if (!(field instanceof asn1js.Constructed)) return [];
  return field.valueBlock.value
    .filter((choice) => choice.idBlock.tagClass === 1 && choice.idBlock.tagNumber === 16) // plain SEQUENCE = Certificate
    .map((cert) => cert.valueBeforeDecodeView.slice());
}

// ---------------------------------------------------------------------------------------
// base64 bodies

/**
 * The base64 body EST sends: 64-character lines, each ended by LF, so that the body pipes
 * into GNU `base64 -d` (which refuses CR) as well as into `openssl base64 -d` and every EST
 * client (RFC 8951: line breaks are whitespace to the decoder). MIME bodies, where lines
 * end with CRLF (RFC 2045 6.8), pass eol '\r\n'. An empty input gives ''.
 */
export function base64Body(der: Uint8Array, eol: '\n' | '\r\n' = '\n'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let out = '';
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}${eol}`;
  return out;
}

/**
 * Decodes an EST request or response body (RFC 8951): base64 with or without line breaks
 * (CR, LF, spaces and tabs are ignored anywhere), optionally inside one PEM block
 * (`-----BEGIN <any label>-----`). Everything else is CaError('malformed') with a message
 * naming the problem and its offset: characters outside the base64 alphabet (base64url's
 * "-" and "_" included), "=" padding that is missing, misplaced or too long, and raw DER,
 * which RFC 8951 explicitly does not allow. The DER itself is not parsed here.
 */
export function decodeBase64Body(body: string | Uint8Array): Uint8Array {
  // latin1 maps each byte to the character with the same code, so offsets stay byte offsets.
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  if (/^[ \t\r\n]*$/.test(text)) throw new CaError('malformed', 'the body is empty');
  if (looksLikeDer(text)) {
    throw new CaError('malformed', 'the body is binary (it looks like raw DER); EST bodies must be base64 encoded (RFC 8951)');
  }
  const { inner, offset } = unwrapPem(text);
  return decodeStrictBase64(inner, offset);
}

/** A SEQUENCE tag followed by binary bytes: DER sent without the base64 step. */
function looksLikeDer(text: string): boolean {
  return text.charCodeAt(0) === 0x30 && /[^\x20-\x7e\t\r\n]/.test(text);
}

const PEM_BEGIN_RE = /^[ \t\r\n]*-----BEGIN ([^\r\n]*?)-----[ \t]*(?:\r?\n|$)/;

/**
 * The base64 text inside a PEM block and its offset in `text`; `text` itself when it is not
 * PEM. Exactly one block is allowed, with nothing but whitespace around it.
 */
function unwrapPem(text: string): { inner: string; offset: number } {
  const begin = PEM_BEGIN_RE.exec(text);
  if (!begin) return { inner: text, offset: 0 };
  const label = begin[1];
  const endLine = `-----END ${label}-----`;
  const start = begin[0].length;
  const end = text.indexOf(endLine, start);
  if (end < 0) throw new CaError('malformed', `the body starts a PEM block "-----BEGIN ${label}-----" but has no "${endLine}" line`);
  const after = end + endLine.length;
  if (!/^[ \t\r\n]*$/.test(text.slice(after))) {
    throw new CaError('malformed', `the body has more data after the "${endLine}" line at offset ${after}; expected one PEM block`);
  }
  return { inner: text.slice(start, end), offset: start };
}

/**
 * RFC 4648 base64 with whitespace ignored; `offset` is where `text` starts in the body, so
 * that errors point into what the client sent.
 */
function decodeStrictBase64(text: string, offset: number): Uint8Array {
  const notBase64 = (why: string) => new CaError('malformed', `the body is not base64: ${why}`);
  const bad = /[^A-Za-z0-9+/= \t\r\n]/.exec(text);
  if (bad) throw notBase64(`invalid character ${describeChar(text, bad.index)} at offset ${offset + bad.index}`);
  const compact = text.replace(/[ \t\r\n]+/g, '');
  if (compact === '') throw new CaError('malformed', 'the body is empty');
  const firstPad = compact.indexOf('=');
  const padding = firstPad < 0 ? 0 : compact.length - firstPad;
  if (firstPad >= 0 && !/^=+$/.test(compact.slice(firstPad))) {
    throw notBase64(`data follows the "=" padding at offset ${offset + text.indexOf('=')}`);
  }
  if (padding > 2) throw notBase64(`${padding} "=" padding characters at offset ${offset + text.indexOf('=')}; at most 2 are allowed`);
  if (compact.length % 4 !== 0) {
    const hint = padding === 0 ? ' (the "=" padding is missing, or the body is truncated)' : '';
    throw notBase64(`${compact.length} base64 characters (not counting line breaks) is not a multiple of 4${hint}`);
  }
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

/** `"!"` for printable ASCII, `U+0082` for anything else (control characters, binary, non-ASCII). */
function describeChar(text: string, index: number): string {
  const code = text.codePointAt(index) ?? 0;
  if (code >= 0x21 && code <= 0x7e) return JSON.stringify(String.fromCodePoint(code));
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
