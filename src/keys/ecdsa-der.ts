/**
 * PKCS#11 (CKM_ECDSA) returns an ECDSA signature as the fixed-width concatenation r || s;
 * X.509 and CMS carry it as the DER Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER }.
 * DER INTEGERs are minimal two's complement: leading zero bytes are dropped, and a single
 * 0x00 is prepended when the first remaining byte has its high bit set (otherwise the value
 * would read as negative). Verifiers such as OpenSSL reject non-minimal encodings.
 */

function derLength(len: number): number[] {
  if (len < 0x80) return [len];
  const bytes: number[] = [];
  for (let n = len; n > 0; n >>>= 8) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function derUnsignedInteger(bigEndian: Uint8Array): number[] {
  let start = 0;
  while (start < bigEndian.length - 1 && bigEndian[start] === 0) start++;
  const body = Array.from(bigEndian.subarray(start));
  if (body.length === 0) body.push(0);
  if (body[0]! & 0x80) body.unshift(0);
  return [0x02, ...derLength(body.length), ...body];
}

export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new RangeError(`raw ECDSA signature must be r || s of equal length, got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const content = [...derUnsignedInteger(raw.subarray(0, half)), ...derUnsignedInteger(raw.subarray(half))];
  return Uint8Array.from([0x30, ...derLength(content.length), ...content]);
}
