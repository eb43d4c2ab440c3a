import { describeKeyKind, formatDn, parseCsr, sanList, type ParsedCsr } from './index.ts';
import { parseCrmfRequest } from './cmp/index.ts';

/** A stored request (PKCS#10, or a CMP CertReqMsg), or undefined when it cannot be read. */
function parseRequest(csrDer: Uint8Array): ParsedCsr | undefined {
  for (const parse of [parseCsr, parseCrmfRequest]) {
    try {
      return parse(csrDer);
    } catch {
      /* try the next format */
    }
  }
  return undefined;
}

/** The subject of a stored request, for listings ("-" when it cannot be read). */
export function describeDn(csrDer: Uint8Array): string {
  const r = parseRequest(csrDer);
  return r ? formatDn(r.subject) || '(empty)' : '-';
}

/**
 * What an officer decides on: the subject, every requested subjectAltName and the key
 * type ("-" / [] when the request cannot be read).
 */
export function describeRequest(csrDer: Uint8Array): { subject: string; sans: string[]; keyType: string } {
  const r = parseRequest(csrDer);
  if (!r) return { subject: '-', sans: [], keyType: '-' };
  return {
    subject: formatDn(r.subject) || '(empty)',
    sans: [...sanList(r.sans), ...(r.unsupportedSans ?? [])],
    keyType: describeKeyKind(r.key),
  };
}
