/**
 * What a certificate-authenticated request may name: exactly the subject and the
 * subjectAltName set of the certificate that authenticates it. Two rules share the
 * comparison (issue 16 item 2, issue 22 items 1 and 3):
 *  - a renewal (EST simplereenroll, CMP kur) keeps the names of the certificate it renews;
 *  - an enrollment authenticated only by a certificate (EST simpleenroll / serverkeygen,
 *    CMP ir / cr / p10cr by a certificate that is not registered as a client) asks for the
 *    certificate's own names: a certificate for one name never buys one for another.
 */
import { CaError } from '../core/errors.ts';
import { formatDn, type CertSummary, type RdnAttr, type SanSet } from '../pki/index.ts';

/** The names a request asks for (a PKCS#10 request or a CRMF template, as ParsedCsr). */
export interface RequestedNames {
  subject: readonly RdnAttr[];
  sans: SanSet;
}

function sanList(s: SanSet): string[] {
  return [
    ...s.dns.map((v) => `DNS:${v.toLowerCase()}`),
    ...s.ip.map((v) => `IP:${v}`),
    ...s.email.map((v) => `email:${v}`),
    ...s.uri.map((v) => `URI:${v}`),
  ];
}

function describeSans(s: SanSet): string {
  const all = sanList(s);
  return all.length ? all.join(', ') : 'none';
}

/** How the request's names differ from the certificate's, or undefined when they are the same. */
function difference(req: RequestedNames, cert: CertSummary): string | undefined {
  const subject = formatDn(req.subject);
  const problems: string[] = [];
  if (subject !== cert.subject) problems.push(`asks for the subject "${subject}"`);
  const have = new Set(sanList(cert.sans));
  const want = new Set(sanList(req.sans));
  const extra = [...want].filter((n) => !have.has(n));
  const missing = [...have].filter((n) => !want.has(n));
  if (extra.length) problems.push(`adds ${extra.join(', ')}`);
  if (missing.length) problems.push(`leaves out ${missing.join(', ')}`);
  return problems.length ? problems.join(' and ') : undefined;
}

/**
 * A renewal keeps the subject and SANs of the certificate it renews (RFC 7030 4.2.2, RFC 9483
 * 4.1.3): CaError('policy', rule renewal.names) otherwise — EST 400, CMP badCertTemplate.
 */
export function checkRenewalNames(req: RequestedNames, cert: CertSummary, what: 'a re-enrollment' | 'a key update'): void {
  const diff = difference(req, cert);
  if (diff === undefined) return;
  throw new CaError(
    'policy',
    `${what} must keep the subject and subjectAltName of certificate ${cert.serialHex}: "${cert.subject}", ` +
      `subjectAltName ${describeSans(cert.sans)}; the request ${diff}`,
    { rule: 'renewal.names' },
  );
}

/**
 * An enrollment authenticated by a certificate alone asks for that certificate's names:
 * CaError('forbidden', rule clientCert.names) otherwise — EST 403, CMP notAuthorized.
 */
export function checkCertificateEnrollmentNames(req: RequestedNames, cert: CertSummary): void {
  const diff = difference(req, cert);
  if (diff === undefined) return;
  throw new CaError(
    'forbidden',
    `the client certificate ${cert.serialHex} may request only its own subject "${cert.subject}" and subjectAltName ` +
      `(${describeSans(cert.sans)}); the request ${diff}. A registered client may ask for other names`,
    { rule: 'clientCert.names' },
  );
}
