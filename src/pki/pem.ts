/**
 * PEM (RFC 7468) and the "PEM, DER or base64" input handling every front end needs:
 * EST sends base64 bodies, ACME base64url, the CLI reads PEM files, CMP carries DER.
 */
import { CaError, type ErrorKind } from '../core/errors.ts';

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** PEM with 64-column base64 lines and a trailing newline. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${label}-----\n`;
}

const BEGIN_RE = /^-----BEGIN ([^-]*)-----$/;
const END_RE = /^-----END ([^-]*)-----$/;

/**
 * Every PEM block in `text`, in order. Text outside the blocks is ignored (RFC 7468 allows
 * explanatory text, and `openssl req -text` prints some before the block); anything inside a
 * block that is not base64 is an error, as are RFC 1421 headers (encrypted PEM).
 */
export function pemDecodeAll(text: string): PemBlock[] {
  return decodePemBlocks(text, 'malformed');
}

function decodePemBlocks(text: string, kind: ErrorKind): PemBlock[] {
  const blocks: PemBlock[] = [];
  const lines = text.split(/\r?\n|\r/);
  let label: string | undefined;
  let body: string[] = [];
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (label === undefined) {
      const begin = BEGIN_RE.exec(line);
      if (begin) {
        label = begin[1];
        body = [];
      } else if (line.includes('-----BEGIN') || line.includes('-----END')) {
        throw new CaError(kind, `PEM line ${i + 1} is not a valid boundary: "${truncate(line)}"`);
      }
      continue;
    }
    const end = END_RE.exec(line);
    if (end) {
      if (end[1] !== label) {
        throw new CaError(kind, `PEM block "${label}" ends with a mismatched "-----END ${end[1]}-----" line`);
      }
      blocks.push({ label, der: decodeBase64(body.join(''), `PEM block "${label}"`, kind) });
      label = undefined;
      continue;
    }
    if (line.includes(':')) {
      throw new CaError(kind, `PEM block "${label}" has headers (line ${i + 1}); encrypted or RFC 1421 PEM is not supported`);
    }
    if (line.startsWith('-----')) {
      throw new CaError(kind, `PEM block "${label}" contains an unexpected boundary line ${i + 1}`);
    }
    body.push(line);
  }
  if (label !== undefined) throw new CaError(kind, `PEM block "${label}" has no "-----END ${label}-----" line`);
  return blocks;
}

/**
 * Strict base64 (or base64url) decoding: whitespace is ignored, any other character outside
 * the alphabet is an error. Buffer.from(s, 'base64') alone would silently skip garbage.
 */
function decodeBase64(text: string, what: string, kind: ErrorKind): Uint8Array {
  const compact = text.replace(/\s+/g, '');
  if (compact === '') throw new CaError(kind, `${what} is empty`);
  const standard = /^[A-Za-z0-9+/]+={0,2}$/.test(compact);
  const url = !standard && /^[A-Za-z0-9_-]+={0,2}$/.test(compact);
  if (!standard && !url) {
    const bad = /[^A-Za-z0-9+/=_-]/.exec(compact)?.[0];
    const why = bad === undefined ? 'misplaced "=" padding or mixed base64/base64url alphabets' : `character ${JSON.stringify(bad)}`;
    throw new CaError(kind, `${what} is not valid base64 (${why})`);
  }
  const unpadded = compact.replace(/=+$/, '');
  const padded = compact.length !== unpadded.length;
  if ((padded && compact.length % 4 !== 0) || unpadded.length % 4 === 1) {
    throw new CaError(kind, `${what} is not valid base64 (bad length ${compact.length})`);
  }
  return new Uint8Array(Buffer.from(unpadded, url ? 'base64url' : 'base64'));
}

/**
 * Accepts PEM (one block with one of `expectedLabels`), raw DER (bytes starting with a
 * SEQUENCE tag) or bare base64/base64url with or without line breaks, as a string or as
 * bytes, and returns the DER. Does not parse the DER itself.
 * @param kind the CaError kind for failures ('badCSR' for requests)
 */
export function toDer(input: string | Uint8Array, expectedLabels: string[], kind: ErrorKind = 'malformed'): Uint8Array {
  const what = expectedLabels.length ? `the ${expectedLabels[0].toLowerCase()}` : 'the input';
  let text: string;
  if (input instanceof Uint8Array) {
    if (input.length === 0) throw new CaError(kind, `${what} is empty`);
    if (input[0] === 0x30) return input;
    if (!isPrintableText(input)) {
      throw new CaError(kind, `${what} is neither DER (it does not start with a SEQUENCE) nor PEM nor base64 text`);
    }
    text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  } else {
    text = input;
  }
  text = text.trim();
  if (text === '') throw new CaError(kind, `${what} is empty`);
  const der = text.includes('-----BEGIN') ? pickPemBlock(text, expectedLabels, what, kind) : decodeBase64(text, `${what} (base64)`, kind);
  if (der.length === 0 || der[0] !== 0x30) {
    throw new CaError(kind, `${what} does not decode to a DER SEQUENCE`);
  }
  return der;
}

function pickPemBlock(text: string, expectedLabels: string[], what: string, kind: ErrorKind): Uint8Array {
  const blocks = decodePemBlocks(text, kind);
  const matching = blocks.filter((b) => expectedLabels.length === 0 || expectedLabels.includes(b.label));
  if (matching.length === 1) return matching[0].der;
  const expected = expectedLabels.map((l) => `"${l}"`).join(' or ');
  if (matching.length === 0) {
    const found = blocks.map((b) => `"${b.label}"`).join(', ') || 'none';
    throw new CaError(kind, `${what}: expected a PEM block labelled ${expected}, found ${found}`);
  }
  throw new CaError(kind, `${what}: expected one PEM block labelled ${expected}, found ${matching.length}`);
}

/** Whether bytes look like text (PEM or base64 sent as a byte body), not binary. */
function isPrintableText(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    const printable = (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d;
    if (!printable) return false;
  }
  return true;
}

function truncate(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}
