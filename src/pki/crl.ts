/**
 * Certificate revocation lists (RFC 5280 section 5): building the TBSCertList, wrapping it
 * with the KeyStore's signature, and reading CRLs back. Like certificates, signing happens
 * elsewhere; this module only produces the exact bytes to sign and assembles the result.
 *
 * Only complete (non-delta) v2 CRLs for the CA's own certificates are produced: extensions
 * authorityKeyIdentifier and cRLNumber, optionally a critical issuingDistributionPoint
 * holding the URL the CRL is published at, and a reasonCode per entry.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.ts';
import type { SignAlg } from '../keys/types.ts';
import { readSignatureAlgorithm, signatureAlgorithmDer, signatureAlgorithmIdentifier, verifySignature } from './algorithms.ts';
import {
  bytesEqual,
  encodeDer,
  parseDer,
  parseDerExact,
  toHex,
  wrapAsn1,
  bitString,
  sequenceElements,
  tlv,
  truncateToSecond,
} from './der.ts';
import { bigintFromInteger, integerFromBigint, integerFromHex } from './integer.ts';
import { attrsFromRdns, formatDn } from './names.ts';
import { OID } from './oids.ts';
import { encodeCrlDistributionPoints } from './extensions.ts';
import { assertValidSerial, serialToHex } from './serial.ts';

/** CRL-specific extension OIDs (RFC 5280 5.2 and 5.3). */
const CRL_OID = {
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  issuingDistributionPoint: '2.5.29.28',
} as const;

// ---------------------------------------------------------------------------------------
// Revocation reasons

export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'removeFromCRL'
  | 'privilegeWithdrawn'
  | 'aACompromise';

/** CRLReason codes (RFC 5280 5.3.1); 7 is unused. */
export const REVOCATION_REASONS: Readonly<Record<RevocationReason, number>> = Object.freeze({
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
});

const REASON_BY_CODE = new Map(Object.entries(REVOCATION_REASONS).map(([name, code]) => [code, name as RevocationReason]));

/** The reason for a CRLReason code; undefined for 7 and codes outside 0..10. */
export function reasonFromCode(code: number): RevocationReason | undefined {
  return REASON_BY_CODE.get(code);
}

export function reasonCode(reason: RevocationReason): number {
  const code = REVOCATION_REASONS[reason];
  if (code === undefined) throw new CaError('internal', `unknown revocation reason "${reason}"`);
  return code;
}

/**
 * (Internal, shared with ocsp.ts.) The reason code to write into a CRL entry or OCSP RevokedInfo, or undefined when none is
 * written. RFC 5280 5.3.1: "unspecified" SHOULD be expressed by leaving the reason out.
 * removeFromCRL only has a meaning in delta CRLs (a certificate released from hold), which
 * certflow does not produce; a "revoked" status carrying it is a bug upstream.
 */
export function reasonToEncode(reason: RevocationReason | undefined, serialHex: string): number | undefined {
  if (reason === undefined || reason === 'unspecified') return undefined;
  if (reason === 'removeFromCRL') {
    throw new CaError(
      'internal',
      `certificate ${serialHex} is listed as revoked with reason removeFromCRL, which only delta CRLs may carry`,
    );
  }
  return reasonCode(reason);
}

/** (Internal, shared with ocsp.ts.) ENUMERATED CRLReason node -> reason; undefined for undefined codes. */
export function readReasonNode(node: asn1js.AsnType, what: string): RevocationReason | undefined {
  if (!(node instanceof asn1js.Enumerated)) throw new CaError('malformed', `${what} is not an ENUMERATED CRLReason`);
  return reasonFromCode(node.valueBlock.valueDec);
}

// ---------------------------------------------------------------------------------------
// Building

export interface CrlEntry {
  /** Serial number of the revoked certificate, hex (as serialToHex writes it). */
  serialHex: string;
  revokedAt: Date;
  /** Absent or "unspecified": no reasonCode entry extension is written. */
  reason?: RevocationReason;
}

export interface TbsCrlParams {
  /** DER Name, copied byte-exact from the CA certificate's subject. */
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
  /** The CA's subject key identifier (the AKI of the CRL). */
  authorityKeyId: Uint8Array;
  sigAlg: SignAlg;
  entries: CrlEntry[];
  /** URL the CRL is published at; written as a critical issuingDistributionPoint fullName. */
  idpUrl?: string;
  /** A delta CRL (RFC 5280 5.2.4): the number of the complete CRL it updates (critical deltaCRLIndicator). */
  deltaBase?: bigint;
  /** A complete CRL whose deltas are published: where (freshestCRL, RFC 5280 5.2.6). */
  freshestUrl?: string;
}

/**
 * INTEGER content of a certificate serial given in hex: positive (0x00 in front when the
 * high bit is set), at most 20 octets as RFC 5280 4.1.2.2 demands of serials.
 */
export function serialFromHex(serialHex: string): Uint8Array {
  const bytes = integerFromHex(serialHex, 'certificate serial number');
  assertValidSerial(bytes);
  return bytes;
}

/**
 * RFC 5280 5.1.2.4/5.1.2.6: CRL times follow the certificate rule, UTCTime through 2049
 * and GeneralizedTime from 2050 (and before 1950), whole seconds.
 */
function crlTime(d: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  const year = d.getUTCFullYear();
  const valueDate = truncateToSecond(d);
  return year >= 1950 && year <= 2049 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate });
}

function extension(extnID: string, critical: boolean, value: Uint8Array): asn1js.Sequence {
  return new pkijs.Extension({ extnID, critical, extnValue: value.slice().buffer }).toSchema();
}

function crlEntry(entry: CrlEntry): asn1js.Sequence {
  const fields: asn1js.BaseBlock[] = [new asn1js.Integer({ valueHex: serialFromHex(entry.serialHex) }), crlTime(entry.revokedAt)];
  const code = reasonToEncode(entry.reason, entry.serialHex);
  if (code !== undefined) {
    // Entry extensions are non-critical (RFC 5280 5.3): the reason is informational.
    const reason = extension(CRL_OID.reasonCode, false, encodeDer(new asn1js.Enumerated({ value: code })));
    fields.push(new asn1js.Sequence({ value: [reason] }));
  }
  return new asn1js.Sequence({ value: fields });
}

/** revokedCertificates; a serial listed twice would make the CRL ambiguous, so it is refused. */
function revokedCertificates(entries: CrlEntry[]): asn1js.Sequence {
  const seen = new Set<string>();
  const list = entries.map((entry) => {
    const key = serialToHex(serialFromHex(entry.serialHex));
    if (seen.has(key)) throw new CaError('internal', `certificate ${key} appears twice in the CRL entries`);
    seen.add(key);
    return crlEntry(entry);
  });
  return new asn1js.Sequence({ value: list });
}

function crlExtensions(p: TbsCrlParams): asn1js.Sequence {
  const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: p.authorityKeyId }) });
  const number = new asn1js.Integer({ valueHex: crlNumberBytes(p.crlNumber) });
  const exts = [
    extension(OID.authorityKeyIdentifier, false, encodeDer(aki.toSchema())),
    extension(CRL_OID.cRLNumber, false, encodeDer(number)),
  ];
  if (p.idpUrl !== undefined) {
    // Critical (RFC 5280 5.2.5): a relying party that cannot process the scope must not use the CRL.
    const idp = new pkijs.IssuingDistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: p.idpUrl })] });
    exts.push(extension(CRL_OID.issuingDistributionPoint, true, encodeDer(idp.toSchema())));
  }
  if (p.deltaBase !== undefined) {
    exts.push(extension(OID.deltaCrlIndicator, true, encodeDer(new asn1js.Integer({ valueHex: crlNumberBytes(p.deltaBase) }))));
  }
  if (p.freshestUrl !== undefined) exts.push(extension(OID.freshestCrl, false, encodeCrlDistributionPoints([p.freshestUrl])));
  return new asn1js.Sequence({ value: exts });
}

/** RFC 5280 5.2.3: a non-negative INTEGER of at most 20 octets. */
function crlNumberBytes(n: bigint): Uint8Array {
  const bytes = integerFromBigint(n, 'CRL number');
  if (bytes.length > 20) throw new CaError('internal', `CRL number ${n} is longer than the 20 octets RFC 5280 allows`);
  return bytes;
}

/**
 * DER TBSCertList (v2). Dates are truncated to whole seconds. revokedCertificates is left
 * out entirely when there are no entries (RFC 5280 5.1.2.6: an empty SEQUENCE is not
 * allowed, the field is absent instead).
 */
export function buildTbsCrl(p: TbsCrlParams): Uint8Array {
  if (!(p.nextUpdate.getTime() > p.thisUpdate.getTime())) {
    throw new CaError('internal', `CRL nextUpdate ${p.nextUpdate.toISOString()} is not after thisUpdate ${p.thisUpdate.toISOString()}`);
  }
  if (p.authorityKeyId.length === 0) throw new CaError('internal', 'the CRL authority key identifier is empty');
  const fields: asn1js.BaseBlock[] = [
    new asn1js.Integer({ value: 1 }), // v2: required because extensions are present
    signatureAlgorithmIdentifier(p.sigAlg).toSchema(),
    parseDerExact(p.issuer, 'the CRL issuer name', 'internal') as asn1js.BaseBlock,
    crlTime(p.thisUpdate),
    crlTime(p.nextUpdate),
  ];
  if (p.entries.length > 0) fields.push(revokedCertificates(p.entries));
  fields.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [crlExtensions(p)] }));
  return encodeDer(new asn1js.Sequence({ value: fields }));
}

/** The signature AlgorithmIdentifier inside a TBSCertList (after the optional version). */
/**
 * CertificateList DER from a TBSCertList and the KeyStore's signature over it (ECDSA as DER
 * Ecdsa-Sig-Value, RSA raw). The TBS is embedded byte for byte, and its inner signature
 * algorithm must be the one named here (RFC 5280 5.1.1.2).
 */
export function assembleCrl(tbs: Uint8Array, sigAlg: SignAlg, signature: Uint8Array): Uint8Array {
  const fields = sequenceElements(tbs, 'the TBSCertList');
  const algId = signatureAlgorithmDer(sigAlg);
  const inner = fields[0]?.[0] === 0x02 ? fields[1] : fields[0]; // after the optional version INTEGER
  if (!inner || !bytesEqual(inner, algId)) throw new CaError('internal', `the TBSCertList was not built for signature algorithm ${sigAlg}`);
  if (signature.length === 0) throw new CaError('internal', 'the signature is empty');
  return tlv(0x30, tbs, algId, bitString(signature));
}

// ---------------------------------------------------------------------------------------
// Reading

function parseCrl(der: Uint8Array): pkijs.CertificateRevocationList {
  const node = parseDer(der, 'the CRL', 'malformed');
  return wrapAsn1('malformed', 'the input is not an X.509 CRL', () => new pkijs.CertificateRevocationList({ schema: node }));
}

export interface CrlSummary {
  /** DN text (encoding order, like describeCertificate). */
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  authorityKeyIdHex?: string;
  /** fullName URI of the issuingDistributionPoint, when present. */
  idpUrl?: string;
  entries: CrlEntry[];
}

function readEntry(rc: pkijs.RevokedCertificate): CrlEntry {
  const entry: CrlEntry = { serialHex: serialToHex(rc.userCertificate.valueBlock.valueHexView), revokedAt: rc.revocationDate.value };
  for (const ext of rc.crlEntryExtensions?.extensions ?? []) {
    if (ext.extnID !== CRL_OID.reasonCode) continue;
    const what = `the reasonCode of CRL entry ${entry.serialHex}`;
    const reason = readReasonNode(parseDer(ext.extnValue.valueBlock.valueHexView, what, 'malformed'), what);
    if (reason) entry.reason = reason;
  }
  return entry;
}

function readCrlExtensions(exts: readonly pkijs.Extension[], summary: CrlSummary): void {
  for (const ext of exts) {
    const raw = ext.extnValue.valueBlock.valueHexView;
    const what = `the CRL extension ${ext.extnID}`;
    switch (ext.extnID) {
      case CRL_OID.cRLNumber: {
        const node = parseDer(raw, what, 'malformed');
        if (!(node instanceof asn1js.Integer)) throw new CaError('malformed', `${what} (cRLNumber) is not an INTEGER`);
        summary.crlNumber = bigintFromInteger(node.valueBlock.valueHexView, what);
        break;
      }
      case OID.authorityKeyIdentifier: {
        const aki = new pkijs.AuthorityKeyIdentifier({ schema: parseDer(raw, what, 'malformed') });
        if (aki.keyIdentifier) summary.authorityKeyIdHex = toHex(aki.keyIdentifier.valueBlock.valueHexView);
        break;
      }
      case CRL_OID.issuingDistributionPoint: {
        const idp = new pkijs.IssuingDistributionPoint({ schema: parseDer(raw, what, 'malformed') });
        const uri = Array.isArray(idp.distributionPoint) ? idp.distributionPoint.find((n) => n.type === 6) : undefined;
        if (uri) summary.idpUrl = String(uri.value);
        break;
      }
    }
  }
}

/** Reads a DER CRL (issuer, validity, number and entries); errors are CaError('malformed'). */
export function describeCrl(der: Uint8Array): CrlSummary {
  const crl = parseCrl(der);
  return wrapAsn1('malformed', 'the CRL has a malformed field', () => {
    const summary: CrlSummary = {
      issuer: formatDn(attrsFromRdns(crl.issuer)),
      thisUpdate: crl.thisUpdate.value,
      entries: (crl.revokedCertificates ?? []).map(readEntry),
    };
    if (crl.nextUpdate) summary.nextUpdate = crl.nextUpdate.value;
    readCrlExtensions(crl.crlExtensions?.extensions ?? [], summary);
    return summary;
  });
}

/**
 * Whether the DER CRL carries a valid signature by the key `issuerSpki`. False also when
 * the CRL cannot be parsed, its algorithm is unsupported or its inner and outer
 * algorithms differ.
 */
export function verifyCrlSignature(der: Uint8Array, issuerSpki: Uint8Array): boolean {
  try {
    const crl = parseCrl(der);
    if (!crl.signature.isEqual(crl.signatureAlgorithm)) return false;
    if (crl.signatureValue.valueBlock.unusedBits !== 0) return false;
    const alg = readSignatureAlgorithm(crl.signatureAlgorithm, 'malformed');
    return verifySignature(issuerSpki, alg, crl.tbsView, crl.signatureValue.valueBlock.valueHexView);
  } catch {
    return false;
  }
}
