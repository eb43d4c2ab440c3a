/**
 * What signing a CRL or an OCSP response with a CA key has in common: the CA certificate
 * must allow the use, the key store key must be the certificate's key, and the signed
 * result is verified with the certificate's public key (what relying parties use) before
 * it is returned. A faulty HSM or a key/certificate mix-up must never publish revocation
 * data that does not verify: clients would treat it as "no answer" at best.
 */
import { recordArtifact, type ArtifactKind } from '../core/artifacts.ts';
import { caSummary } from './ca-summary.ts';
import { CaError } from '../core/errors.ts';
import type { KeyUsageName } from '../config/profiles.ts';
import { defaultSignAlg, type KeyAlg, type KeyStore, type SignAlg } from '../keys/types.ts';
import { verifySignedWith, type CertSummary } from '../pki/index.ts';

/** The CA that signs: its certificate and the key store key belonging to it. */
export interface SigningCa {
  certDer: Uint8Array;
  keyId: string;
  keyAlg: KeyAlg;
}

export interface CaSigningContext {
  issuer: CertSummary;
  sigAlg: SignAlg;
}

/**
 * Reads the CA certificate and checks that it may sign with `usage` (RFC 5280 4.2.1.3:
 * cRLSign for CRLs, digitalSignature for OCSP responses; a certificate without keyUsage
 * allows everything) and that the key store holds its key.
 */
export async function caSigningContext(keys: KeyStore, ca: SigningCa, usage: KeyUsageName): Promise<CaSigningContext> {
  const issuer = caSummary(ca.certDer);
  if (!issuer.isCa) throw new CaError('config', `certificate "${issuer.subject}" is not a CA certificate`, { rule: 'ca.notCa' });
  if (issuer.keyUsage.length > 0 && !issuer.keyUsage.includes(usage)) {
    throw new CaError('config', `the certificate of CA "${issuer.subject}" does not allow ${usage}`, { rule: 'ca.keyUsage' });
  }
  const key = await keys.get(ca.keyId);
  if (!key) throw new CaError('config', `CA key "${ca.keyId}" is not in the ${keys.backend} key store`, { rule: 'ca.key' });
  if (key.alg !== ca.keyAlg) {
    throw new CaError('config', `CA key "${ca.keyId}" is ${key.alg} in the ${keys.backend} key store, expected ${ca.keyAlg}`, {
      rule: 'ca.key',
    });
  }
  if (!Buffer.from(key.spki).equals(Buffer.from(issuer.spki))) {
    throw new CaError('config', `CA key "${ca.keyId}" is not the key of certificate "${issuer.subject}"`, { rule: 'ca.key' });
  }
  return { issuer, sigAlg: defaultSignAlg(ca.keyAlg) };
}

/**
 * Has the key store sign `tbs` and returns the assembled result only when the signature
 * verifies over `tbs` with the CA certificate's public key. `what` names the product in
 * the error ("CRL", "OCSP response").
 */
export async function signVerified(
  keys: KeyStore,
  ca: SigningCa,
  ctx: CaSigningContext,
  tbs: Uint8Array,
  steps: { assemble: (signature: Uint8Array) => Uint8Array; what: string; artifact?: ArtifactKind },
): Promise<Uint8Array> {
  const signature = await keys.sign(ca.keyId, ctx.sigAlg, tbs);
  if (!verifySignedWith(ctx.issuer.spki, ctx.sigAlg, tbs, signature)) {
    throw new CaError(
      'internal',
      `the ${keys.backend} key store returned a signature by key "${ca.keyId}" that does not verify; the ${steps.what} was discarded`,
      {
        rule: 'sign.verify',
      },
    );
  }
  const der = steps.assemble(signature);
  if (steps.artifact) recordArtifact(steps.artifact, der);
  return der;
}
