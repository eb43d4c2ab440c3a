/**
 * Signing CRLs with a CA key. The CRL is for the CA's own certificates: its issuer is the
 * CA certificate's subject byte for byte and its AKI the CA's key identifier, so relying
 * parties match it to the certificates the CA issued (RFC 5280 6.3.3).
 */
import type { KeyStore } from '../keys/types.ts';
import { assembleCrl, buildTbsCrl, type CrlEntry } from '../pki/index.ts';
import { caSigningContext, signVerified, type SigningCa } from './ca-signing.ts';
import { authorityKeyIdOf } from './issuer.ts';

export interface CrlParams {
  thisUpdate: Date;
  nextUpdate: Date;
  /** Monotonically increasing per CA (RFC 5280 5.2.3); the caller allocates it. */
  crlNumber: bigint;
  entries: CrlEntry[];
  /** URL the CRL is published at (critical issuingDistributionPoint), when wanted. */
  idpUrl?: string;
  /** A delta CRL: its base CRL's number. */
  deltaBase?: bigint;
  /** Where the delta CRLs of a complete CRL are (freshestCRL). */
  freshestUrl?: string;
}

/** Builds, signs and verifies a v2 CRL (complete, or a delta with deltaBase) of `ca`; returns its DER. */
export async function signCrl(keys: KeyStore, ca: SigningCa, p: CrlParams): Promise<Uint8Array> {
  const ctx = await caSigningContext(keys, ca, 'cRLSign');
  const { issuer, sigAlg } = ctx;
  const tbs = buildTbsCrl({
    issuer: issuer.subjectDer,
    thisUpdate: p.thisUpdate,
    nextUpdate: p.nextUpdate,
    crlNumber: p.crlNumber,
    authorityKeyId: authorityKeyIdOf(issuer),
    sigAlg,
    entries: p.entries,
    idpUrl: p.idpUrl,
    deltaBase: p.deltaBase,
    freshestUrl: p.freshestUrl,
  });
  return signVerified(keys, ca, ctx, tbs, {
    assemble: (signature) => assembleCrl(tbs, sigAlg, signature),
    what: 'CRL',
    artifact: 'crl',
  });
}
