import { formatDn, parseCsr } from '../pki/index.ts';

/** The subject of a stored request, for listings ("-" when it cannot be read). */
export function describeDn(csrDer: Uint8Array): string {
  try {
    return formatDn(parseCsr(csrDer).subject) || '(empty)';
  } catch {
    return '-';
  }
}
