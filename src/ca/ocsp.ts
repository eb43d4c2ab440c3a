/**
 * Signing OCSP responses with the issuing CA's own key. RFC 6960 4.2.2.2 lets the CA that
 * issued a certificate sign responses about it directly, which needs no delegated responder
 * certificate: clients already hold the CA certificate, so the response carries no certs.
 */
import { CaError } from '../core/errors.ts';
import type { KeyStore } from '../keys/types.ts';
import { assembleOcspResponse, buildOcspResponseData, certIdMatches, keyIdentifier, type OcspSingleResponse } from '../pki/index.ts';
import { caSigningContext, signVerified, type SigningCa } from './ca-signing.ts';

export interface OcspResponseParams {
  producedAt: Date;
  responses: OcspSingleResponse[];
  /** The request's nonce (parseOcspRequest), echoed in the response. */
  nonce?: Uint8Array;
}

/** Builds, signs and verifies a successful OCSPResponse by `ca`; returns its DER. */
export async function signOcspResponse(keys: KeyStore, ca: SigningCa, p: OcspResponseParams): Promise<Uint8Array> {
  const ctx = await caSigningContext(keys, ca, 'digitalSignature');
  const { issuer, sigAlg } = ctx;
  // The CA may only speak for certificates it issued; a CertID naming another issuer
  // (or using a hash we cannot check) would be a response clients must reject.
  const foreign = p.responses.find((r) => !certIdMatches(r.certId, issuer));
  if (foreign) {
    throw new CaError('internal', `OCSP CertID for serial ${foreign.certId.serialHex} does not name CA "${issuer.subject}" as issuer`);
  }
  const tbs = buildOcspResponseData({
    // RFC 6960 4.2.2.3: byKey is the SHA-1 of the responder's subjectPublicKey, which for
    // certflow CAs is also their SKI; computed rather than read so imported CAs whose SKI
    // uses another method still get the value clients compare against.
    responderKeyId: keyIdentifier(issuer.spki),
    producedAt: p.producedAt,
    responses: p.responses,
    nonce: p.nonce,
  });
  return signVerified(keys, ca, ctx, tbs, {
    assemble: (signature) => assembleOcspResponse(tbs, sigAlg, signature),
    what: 'OCSP response',
    artifact: 'ocsp',
  });
}
