import { createHash } from 'node:crypto';
import { describeCertificate, type CertSummary } from '../pki/index.ts';

const cache = new Map<string, Readonly<CertSummary>>();

/**
 * The parsed summary of a CA certificate, memoized: CA certificates never change, and
 * parsing one costs ~2 ms of ASN.1 work that issuance and OCSP signing repeated several
 * times per certificate (measured with bench:est). Keyed by the DER's hash; bounded.
 */
export function caSummary(certDer: Uint8Array): Readonly<CertSummary> {
  const key = createHash('sha256').update(certDer).digest('base64');
  let summary = cache.get(key);
  if (!summary) {
    if (cache.size >= 64) cache.clear();
    summary = Object.freeze(describeCertificate(certDer));
    cache.set(key, summary);
  }
  return summary;
}
