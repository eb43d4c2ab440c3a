/**
 * Checks a CA certificate brought from outside (an externally signed CA's certificate, an
 * imported CA): it must be a CA certificate valid now, and chain — through the
 * certificates given with it — to a trust anchor: a configured one (`ca.trustAnchors`) or a
 * CA certflow already has. Signatures, names, validity, cA and keyCertSign, and path length
 * constraints are checked along the path (RFC 5280 6.1, the parts that apply to CAs).
 */
import { CaError } from '../core/errors.ts';
import { describeCertificate, verifyCertificateSignature, type CertSummary } from '../pki/index.ts';

export interface ChainCert {
  der: Uint8Array;
  summary: CertSummary;
}

const MAX_DEPTH = 8;

function summarize(der: Uint8Array): ChainCert {
  return { der, summary: describeCertificate(der) };
}

/** Why `c` cannot act as a CA at `now`, or undefined. */
function caProblem(c: CertSummary, now: Date): string | undefined {
  if (!c.isCa) return 'it is not a CA certificate (basicConstraints cA is not TRUE)';
  if (c.keyUsage.length && !c.keyUsage.includes('keyCertSign')) return 'its keyUsage lacks keyCertSign';
  if (c.notAfter.getTime() <= now.getTime()) return `it expired on ${c.notAfter.toISOString()}`;
  if (c.notBefore.getTime() > now.getTime() + 5 * 60_000) return `it is not valid before ${c.notBefore.toISOString()}`;
  return undefined;
}

/** Whether the certificate is self-signed: issuer = subject and its own key verifies its signature. */
export function isSelfSigned(c: ChainCert): boolean {
  return c.summary.issuer === c.summary.subject && verifyCertificateSignature(c.der, c.summary.spki);
}

/**
 * The path from `cert` up to an anchor: [cert, intermediates..., anchor]. `anchors` are the
 * certificates that end a path (trust anchors, certflow's own CAs); `intermediates` may be
 * used on the way. Throws CaError('policy') naming what is wrong.
 */
export function certificatePath(certDer: Uint8Array, intermediateDers: Uint8Array[], anchorDers: Uint8Array[], now: Date): ChainCert[] {
  const cert = summarize(certDer);
  const fail = (why: string): never => {
    throw new CaError('policy', why, { rule: 'ca.import.chain' });
  };
  const problem = caProblem(cert.summary, now);
  if (problem) fail(`the certificate of "${cert.summary.subject}" cannot be a CA's: ${problem}`);
  const intermediates = intermediateDers.map(summarize);
  const anchors = anchorDers.map(summarize);
  const path: ChainCert[] = [cert];
  for (let current = cert; path.length <= MAX_DEPTH;) {
    const signs = (c: ChainCert) =>
      c.summary.fingerprintSha256 !== current.summary.fingerprintSha256 &&
      c.summary.subject === current.summary.issuer &&
      verifyCertificateSignature(current.der, c.summary.spki);
    const anchor = anchors.find(signs);
    const next = anchor ?? intermediates.find(signs);
    if (!next) {
      const names =
        current === cert
          ? ''
          : ` (reached through ${path
              .slice(1)
              .map((c) => `"${c.summary.subject}"`)
              .join(', ')})`;
      fail(
        `"${current.summary.subject}" is signed by "${current.summary.issuer}"${names}, which is neither a configured trust anchor ` +
          `(ca.trustAnchors in the configuration file) nor a CA of this certflow, and not among the certificates given with --chain`,
      );
    }
    const issuerProblem = caProblem(next!.summary, now);
    if (issuerProblem) fail(`the issuer "${next!.summary.subject}" cannot sign CA certificates: ${issuerProblem}`);
    // pathLenConstraint: the number of CA certificates that may follow the issuer in the path.
    const below = path.length - 1;
    if (next!.summary.pathLen !== undefined && below > next!.summary.pathLen) {
      fail(`"${next!.summary.subject}" allows ${next!.summary.pathLen} CA(s) below it (pathLen), the path has ${below}`);
    }
    path.push(next!);
    if (anchor) return path;
    current = next!;
  }
  return fail(`no trust anchor within ${MAX_DEPTH} certificates`);
}
