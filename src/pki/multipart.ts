/**
 * The multipart/mixed response of EST /serverkeygen (RFC 7030 4.4.2): the server-generated
 * private key and the certificate issued for it, in that order.
 *
 * Only the unencrypted form is built: the key travels as a plain PKCS#8 part
 * (application/pkcs8), protected by the TLS session. The encrypted forms of RFC 7030 4.4.2
 * (application/pkcs7-mime; smime-type=server-generated-key) are not supported.
 *
 * Both parts carry "Content-Transfer-Encoding: base64" because RFC 7030 clients look for it;
 * RFC 8951 says the header is to be ignored and the content is base64 regardless, which is
 * also how the parts are encoded.
 */
import { randomBytes } from 'node:crypto';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.ts';
import { base64Body, parseCertsOnly } from './cms.ts';
import { parseDer, wrapAsn1 } from './der.ts';

export interface MimePart {
  /** Header names in lower case, values trimmed and unfolded. */
  headers: Record<string, string>;
  /** The part's content, without the line break that belongs to the next boundary. */
  body: string;
}

export interface ServerKeygenResponse {
  /** The value for the HTTP Content-Type header, including the boundary parameter. */
  contentType: string;
  body: string;
}

/**
 * The /serverkeygen response body. The boundary is random so that no part content can
 * contain it (RFC 2046 5.1.1; base64 cannot contain "-" anyway, so "--certflow-..." never
 * occurs in a part). Lines end with CRLF as MIME requires.
 *
 * Both inputs are produced by certflow itself; a key that is not PKCS#8 or a message that is
 * not certs-only with at least one certificate is a bug: CaError('internal').
 */
export function buildServerKeygenResponse(p: { privateKeyPkcs8: Uint8Array; certsOnly: Uint8Array }): ServerKeygenResponse {
  checkPkcs8(p.privateKeyPkcs8);
  checkCertsOnly(p.certsOnly);
  const boundary = `certflow-${randomBytes(16).toString('hex')}`;
  const parts = [
    mimePart(['Content-Type: application/pkcs8', 'Content-Transfer-Encoding: base64'], base64Body(p.privateKeyPkcs8, '\r\n')),
    mimePart(
      ['Content-Type: application/pkcs7-mime; smime-type=certs-only', 'Content-Transfer-Encoding: base64'],
      base64Body(p.certsOnly, '\r\n'),
    ),
  ];
  // base64Body ends with CRLF, which becomes the CRLF that starts the next delimiter line.
  const body = `${parts.map((part) => `--${boundary}\r\n${part}`).join('')}--${boundary}--\r\n`;
  return { contentType: `multipart/mixed; boundary=${boundary}`, body };
}

function mimePart(headers: string[], content: string): string {
  return `${headers.join('\r\n')}\r\n\r\n${content}`;
}

function checkPkcs8(der: Uint8Array): void {
  const node = parseDer(der, 'the server-generated private key', 'internal');
  wrapAsn1('internal', 'the server-generated private key is not PKCS#8', () => new pkijs.PrivateKeyInfo({ schema: node }));
}

function checkCertsOnly(der: Uint8Array): void {
  let count: number;
  try {
    count = parseCertsOnly(der).length;
  } catch (e) {
    throw new CaError('internal', `the /serverkeygen certificate is not a certs-only message: ${(e as Error).message}`, { cause: e });
  }
  if (count === 0) throw new CaError('internal', 'the /serverkeygen certs-only message holds no certificate');
}

// ---------------------------------------------------------------------------------------
// Reading

/**
 * The parts of a multipart body (RFC 2046 5.1), for tests and client code. Preamble and
 * epilogue are ignored; CRLF and bare LF line ends are both accepted. CaError('malformed')
 * when the content type is not multipart with a boundary, or the body has no parts or no
 * closing delimiter.
 */
export function parseMultipart(contentType: string, body: string): MimePart[] {
  const delimiter = delimiterRegExp(boundaryOf(contentType));
  const marks = [...body.matchAll(delimiter)];
  const close = marks.findIndex((m) => m[1] === '--');
  if (close < 0) throw new CaError('malformed', 'the multipart body has no closing boundary delimiter');
  if (close === 0) throw new CaError('malformed', 'the multipart body has no parts');
  const parts: MimePart[] = [];
  for (let i = 0; i < close; i++) {
    const start = (marks[i].index ?? 0) + marks[i][0].length;
    parts.push(readPart(body.slice(start, marks[i + 1].index), i));
  }
  return parts;
}

/** The boundary parameter of a multipart Content-Type (RFC 2046 5.1.1: 1 to 70 characters). */
function boundaryOf(contentType: string): string {
  if (!/^\s*multipart\/[^\s;]+/i.test(contentType)) throw new CaError('malformed', `"${contentType}" is not a multipart content type`);
  const m = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary || boundary.length > 70)
    throw new CaError('malformed', `the content type "${contentType}" has no valid boundary parameter`);
  return boundary;
}

/**
 * Matches a delimiter line: "--boundary" (group 1 is "--" for the closing one) at the start of
 * the body or after a line break, which belongs to the delimiter; trailing spaces allowed.
 */
function delimiterRegExp(boundary: string): RegExp {
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  return new RegExp(`(?:^|\\r?\\n)--${escaped}(--)?[ \\t]*(?=\\r?\\n|$)(?:\\r?\\n)?`, 'g');
}

function readPart(raw: string, index: number): MimePart {
  // Headers end at the first empty line; a part may have no headers at all (raw starts with it).
  const blank = /(^|\r?\n)\r?\n/.exec(raw);
  if (!blank) throw new CaError('malformed', `part ${index + 1} of the multipart body has no empty line after its headers`);
  return { headers: readHeaders(raw.slice(0, blank.index), index), body: raw.slice(blank.index + blank[0].length) };
}

function readHeaders(text: string, index: number): Record<string, string> {
  const headers: Record<string, string> = {};
  // RFC 5322 2.2.3 unfolding: a line break followed by whitespace continues the header.
  const lines = text === '' ? [] : text.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/);
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new CaError('malformed', `part ${index + 1} of the multipart body has a bad header line "${line}"`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
