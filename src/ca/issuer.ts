/**
 * Issuing end-entity certificates: prepareCertificate turns a request + profile into the
 * exact TBSCertificate bytes (pure, so they can be persisted before signing), and
 * signCertificate has the key store sign them and checks the result.
 */
import { caSummary } from './ca-summary.ts';
import { recordArtifact } from '../core/artifacts.ts';
import { asServerFault, CaError } from '../core/errors.ts';
import type { CertProfile } from '../config/profiles.ts';
import { defaultSignAlg, type KeyAlg, type KeyStore, type SignAlg } from '../keys/types.ts';
import {
  assembleCertificate,
  buildTbsCertificate,
  encodeName,
  formatDn,
  keyIdentifier,
  nameConstraintViolation,
  serialToHex,
  signAlgFitsKey,
  truncateToSecond,
  verifySignedWith,
  type CertSummary,
  type ParsedCsr,
  type SanSet,
  type TbsView,
} from '../pki/index.ts';
import { assertLintClean } from './lint.ts';
import { applyProfile } from './policy.ts';

export interface IssuingCa {
  name: string;
  certDer: Uint8Array;
  keyId: string;
  keyAlg: KeyAlg;
}

/** Where relying parties find the issuing CA's CRL, OCSP responder and certificate. */
export interface CaUrls {
  crl?: string;
  ocsp?: string;
  caIssuers?: string;
  /** Delta CRLs, when the CA publishes them (freshestCRL). */
  deltaCrl?: string;
}

export interface PreparedCertificate {
  tbsDer: Uint8Array;
  /** tbsDer decoded (by the pre-issuance lint): what the certificate will say. */
  tbs: TbsView;
  serialHex: string;
  /** DN text (encoding order) */
  subject: string;
  sans: SanSet;
  notBefore: Date;
  notAfter: Date;
  sigAlg: SignAlg;
}

/**
 * Reads the issuing CA certificate and checks it can issue at `now`: it must be a CA
 * (basicConstraints cA, keyCertSign when keyUsage is present) and not expired.
 */
export function issuerSummary(ca: Pick<IssuingCa, 'name' | 'certDer'>, now: Date): CertSummary {
  const summary = caSummary(ca.certDer);
  if (!summary.isCa || (summary.keyUsage.length > 0 && !summary.keyUsage.includes('keyCertSign'))) {
    throw new CaError('config', `the certificate of CA "${ca.name}" is not a CA certificate allowed to sign certificates`, {
      rule: 'ca.notCa',
    });
  }
  if (summary.notAfter.getTime() <= now.getTime()) {
    throw new CaError('config', `CA "${ca.name}" expired on ${summary.notAfter.toISOString()}`, { rule: 'ca.expired' });
  }
  return summary;
}

/**
 * The authority key identifier for certificates issued by `issuer`: the issuer's subject
 * key identifier, or (for a CA certificate without one) the RFC 5280 method-1 hash of its key.
 */
export function authorityKeyIdOf(issuer: CertSummary): Uint8Array {
  return issuer.subjectKeyIdHex ? new Uint8Array(Buffer.from(issuer.subjectKeyIdHex, 'hex')) : keyIdentifier(issuer.spki);
}

/**
 * Validity of a certificate issued at `now`: notBefore backdated by `backdateSeconds` (but
 * not before the issuer's notBefore), notAfter = now + validity capped at the issuer's
 * notAfter so that no certificate outlives its CA. Whole seconds.
 */
export function validityWindow(
  now: Date,
  backdateSeconds: number,
  validitySeconds: number,
  issuer: CertSummary,
): { notBefore: Date; notAfter: Date } {
  const t = truncateToSecond(now).getTime();
  const notBefore = new Date(Math.max(t - backdateSeconds * 1000, issuer.notBefore.getTime()));
  const notAfter = new Date(Math.min(t + validitySeconds * 1000, truncateToSecond(issuer.notAfter).getTime()));
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new CaError('config', `the issuing CA's validity (until ${issuer.notAfter.toISOString()}) leaves no room for a certificate`, {
      rule: 'ca.expired',
    });
  }
  return { notBefore, notAfter };
}

export function prepareCertificate(args: {
  csr: ParsedCsr;
  profile: CertProfile;
  ca: IssuingCa;
  serial: Uint8Array;
  now: Date;
  urls: CaUrls;
  /** The CA certificates above the issuing CA (DER): their name constraints bind it too (RFC 5280 4.2.1.10). */
  ancestors?: Uint8Array[];
}): PreparedCertificate {
  const { csr, profile, ca, urls } = args;
  const policy = applyProfile(csr, profile);
  const issuer = issuerSummary(ca, args.now);
  for (const c of [issuer, ...(args.ancestors ?? []).map(caSummary)]) {
    const outside = c.nameConstraints && nameConstraintViolation(c.nameConstraints, policy.sans);
    if (outside) {
      throw new CaError('policy', `${outside} is outside the name constraints of CA "${c === issuer ? ca.name : c.subject}"`, {
        rule: 'ca.nameConstraints',
        details: { name: outside, nameConstraints: c.nameConstraints },
      });
    }
  }
  const sigAlg = defaultSignAlg(ca.keyAlg);
  const { notBefore, notAfter } = validityWindow(args.now, profile.backdateSeconds, profile.validitySeconds, issuer);
  const tbsDer = buildTbsCertificate({
    serial: args.serial,
    issuer: issuer.subjectDer,
    subject: encodeName(policy.subject),
    notBefore,
    notAfter,
    spki: csr.spki,
    sigAlg,
    extensions: {
      basicConstraints: { ca: false },
      keyUsage: policy.keyUsage,
      extKeyUsage: policy.extKeyUsage,
      sans: policy.sans,
      subjectKeyId: keyIdentifier(csr.spki),
      authorityKeyId: authorityKeyIdOf(issuer),
      // A URL the profile asks for but the deployment did not configure is left out.
      crlUrls: profile.crlDistributionPoint && urls.crl ? [urls.crl] : undefined,
      deltaCrlUrls: profile.crlDistributionPoint && urls.deltaCrl ? [urls.deltaCrl] : undefined,
      ocspUrls: profile.aia.ocsp && urls.ocsp ? [urls.ocsp] : undefined,
      caIssuersUrls: profile.aia.caIssuers && urls.caIssuers ? [urls.caIssuers] : undefined,
      policies: profile.policies,
    },
  });
  // Nothing is signed that the linter refuses (Boulder's pre-issuance linting).
  const tbs = assertLintClean(tbsDer, { profile, issuer, expectedEku: policy.extKeyUsage });
  return {
    tbsDer,
    tbs,
    serialHex: serialToHex(args.serial),
    subject: formatDn(policy.subject),
    sans: policy.sans,
    notBefore,
    notAfter,
    sigAlg,
  };
}

/**
 * Signs a TBSCertificate with the CA key and returns the certificate DER. The signature is
 * verified with the key store's public key before anything is returned: a faulty HSM or
 * key mix-up must never produce a published certificate that does not verify.
 */
export async function signCertificate(
  keys: KeyStore,
  ca: { keyId: string; keyAlg: KeyAlg },
  tbsDer: Uint8Array,
  sigAlg: SignAlg,
): Promise<Uint8Array> {
  if (!signAlgFitsKey(sigAlg, ca.keyAlg)) {
    throw new CaError('internal', `signature algorithm ${sigAlg} cannot be used with the ${ca.keyAlg} key "${ca.keyId}"`);
  }
  // Whatever the key store says (a key it cannot find, a token that is gone) is the CA's
  // fault, never the requester's: the request is kept and retried.
  const key = await keys.get(ca.keyId).catch((e: unknown) => {
    throw asServerFault(e, `the ${keys.backend} key store cannot find CA key "${ca.keyId}"`);
  });
  if (!key) throw new CaError('config', `CA key "${ca.keyId}" is not in the ${keys.backend} key store`, { rule: 'ca.key' });
  if (key.alg !== ca.keyAlg) {
    throw new CaError('config', `CA key "${ca.keyId}" is ${key.alg} in the ${keys.backend} key store, expected ${ca.keyAlg}`, {
      rule: 'ca.key',
    });
  }
  const signature = await keys.sign(ca.keyId, sigAlg, tbsDer).catch((e: unknown) => {
    throw asServerFault(e, `signing with CA key "${ca.keyId}" failed`);
  });
  if (!verifySignedWith(key.spki, sigAlg, tbsDer, signature)) {
    throw new CaError(
      'internal',
      `the ${keys.backend} key store returned a signature by key "${ca.keyId}" that does not verify; the certificate was discarded`,
      {
        rule: 'sign.verify',
      },
    );
  }
  const certDer = assembleCertificate(tbsDer, sigAlg, signature);
  recordArtifact('cert', certDer);
  return certDer;
}
