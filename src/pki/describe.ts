import { formatDn, parseCsr } from './index.ts';
import { parseCrmfRequest } from './cmp/index.ts';

/** The subject of a stored request (PKCS#10, or a CMP CertReqMsg), for listings ("-" when it cannot be read). */
export function describeDn(csrDer: Uint8Array): string {
  for (const parse of [parseCsr, parseCrmfRequest]) {
    try {
      return formatDn(parse(csrDer).subject) || '(empty)';
    } catch {
      /* try the next format */
    }
  }
  return '-';
}
