/**
 * X.509 certificates: building the TBSCertificate, wrapping it with a signature, and reading
 * certificates back. Signing itself happens in the KeyStore; this module only produces the
 * exact bytes to sign and assembles the result.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError, type ErrorKind } from '../core/errors.ts';
import type { SignAlg } from '../keys/types.ts';
import { readSignatureAlgorithm, signatureAlgorithmDer, signatureAlgorithmIdentifier, verifySignature } from './algorithms.ts';
import { bytesEqual, bytesOf, encodeDer, parseDer, parseDerExact, toHex, wrapAsn1, bitString, sequenceElements, tlv } from './der.ts';
import { buildExtensions, readExtensions, type CertExtensions, type ReadExtensions } from './extensions.ts';
import { attrsFromRdns, formatDn, type RdnAttr } from './names.ts';
import { describePublicKey, type PublicKeyKind } from './publickey.ts';
import type { SanSet } from './san.ts';
import { assertValidSerial, serialToHex } from './serial.ts';

export type { CertExtensions } from './extensions.ts';

export interface TbsParams {
  serial: Uint8Array;
  /** DER Name, copied byte-exact from the issuer certificate's subject, or encodeName(subject) for self-signed. */
  issuer: Uint8Array;
  /** DER Name */
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo */
  spki: Uint8Array;
  sigAlg: SignAlg;
  extensions: CertExtensions;
}

/** Dates in certificates have whole seconds (RFC 5280 forbids fractional GeneralizedTime). */
export function truncateToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 (and before 1950). */
function certTime(d: Date): pkijs.Time {
  const year = d.getUTCFullYear();
  const type = year >= 1950 && year <= 2049 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime;
  return new pkijs.Time({ type, value: truncateToSecond(d) });
}

/** A Name that pkijs will re-emit from these exact bytes (no re-encoding of its attributes). */
function exactName(der: Uint8Array, what: string): pkijs.RelativeDistinguishedNames {
  parseDerExact(der, what, 'malformed');
  return new pkijs.RelativeDistinguishedNames({ valueBeforeDecode: der.slice().buffer });
}

const EMPTY_NAME = new Uint8Array([0x30, 0x00]);

/** DER TBSCertificate (v3). Dates are truncated to whole seconds. */
export function buildTbsCertificate(p: TbsParams): Uint8Array {
  assertValidSerial(p.serial);
  if (!(p.notAfter.getTime() > p.notBefore.getTime())) {
    throw new CaError('internal', `notAfter ${p.notAfter.toISOString()} is not after notBefore ${p.notBefore.toISOString()}`);
  }
  const spki = parseDerExact(p.spki, 'the subject public key', 'malformed');
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: new asn1js.Integer({ valueHex: p.serial }),
    signature: signatureAlgorithmIdentifier(p.sigAlg),
    issuer: exactName(p.issuer, 'the issuer name'),
    notBefore: certTime(p.notBefore),
    notAfter: certTime(p.notAfter),
    subject: exactName(p.subject, 'the subject name'),
    subjectPublicKeyInfo: wrapAsn1('malformed', 'the subject public key', () => new pkijs.PublicKeyInfo({ schema: spki })),
    extensions: buildExtensions(p.extensions, bytesEqual(p.subject, EMPTY_NAME)),
  });
  return encodeDer(cert.encodeTBS());
}

/** The elements of a TBSCertificate SEQUENCE, skipping the optional [0] version. */
function tbsFields(tbs: asn1js.AsnType): asn1js.BaseBlock[] {
  if (!(tbs instanceof asn1js.Sequence)) throw new CaError('malformed', 'the TBSCertificate is not a SEQUENCE');
  const fields = tbs.valueBlock.value;
  const first = fields[0];
  const hasVersion = first !== undefined && first.idBlock.tagClass === 3 && first.idBlock.tagNumber === 0;
  return hasVersion ? fields.slice(1) : fields;
}

/** Serial number (hex) of a DER TBSCertificate, e.g. to record it before signing. */
export function tbsSerialHex(tbs: Uint8Array): string {
  const serial = tbsFields(parseDer(tbs, 'the TBSCertificate', 'malformed'))[0];
  if (!(serial instanceof asn1js.Integer)) throw new CaError('malformed', 'the TBSCertificate has no serial number');
  return serialToHex(serial.valueBlock.valueHexView);
}

/**
 * Certificate DER from a TBSCertificate and the KeyStore's signature over it (ECDSA as DER
 * Ecdsa-Sig-Value, RSA raw). The TBS is embedded byte for byte, and its inner signature
 * algorithm must be the one named here (RFC 5280 4.1.1.2).
 */
export function assembleCertificate(tbs: Uint8Array, sigAlg: SignAlg, signature: Uint8Array): Uint8Array {
  const fields = sequenceElements(tbs, 'the TBSCertificate');
  const algId = signatureAlgorithmDer(sigAlg);
  const inner = fields[0]?.[0] === 0xa0 ? fields[2] : fields[1]; // after the optional [0] version and the serial
  if (!inner || !bytesEqual(inner, algId)) throw new CaError('internal', `the TBSCertificate was not built for signature algorithm ${sigAlg}`);
  if (signature.length === 0) throw new CaError('internal', 'the signature is empty');
  return tlv(0x30, tbs, algId, bitString(signature));
}

// ---------------------------------------------------------------------------------------
// Reading

/** Strictly parses a DER certificate (no trailing data); errors are CaError(kind). */
export function parseCertificate(der: Uint8Array, kind: ErrorKind = 'malformed'): pkijs.Certificate {
  const node = parseDer(der, 'the certificate', kind);
  return wrapAsn1(kind, 'the input is not an X.509 certificate', () => new pkijs.Certificate({ schema: node }));
}

export interface CertSummary {
  serialHex: string;
  subject: string;
  issuer: string;
  /** DER Name of the subject, byte-exact (the issuer field of certificates this one signs). */
  subjectDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  sans: SanSet;
  isCa: boolean;
  /** pathLenConstraint of a CA certificate, when present. */
  pathLen?: number;
  keyUsage: string[];
  /** OIDs */
  extKeyUsage: string[];
  subjectKeyIdHex?: string;
  authorityKeyIdHex?: string;
  /** DER SubjectPublicKeyInfo */
  spki: Uint8Array;
  /** Lower-case hex SHA-256 of the DER certificate, no separators. */
  fingerprintSha256: string;
  crlUrls: string[];
  ocspUrls: string[];
  caIssuersUrls: string[];
}

export function describeCertificate(der: Uint8Array): CertSummary {
  const cert = parseCertificate(der);
  return wrapAsn1('malformed', 'the certificate has a malformed field', () => {
    const ext = readExtensions(cert.extensions ?? []);
    const summary: CertSummary = {
      serialHex: serialToHex(cert.serialNumber.valueBlock.valueHexView),
      subject: formatDn(attrsFromRdns(cert.subject)),
      issuer: formatDn(attrsFromRdns(cert.issuer)),
      subjectDer: bytesOf(cert.subject.valueBeforeDecode).slice(),
      notBefore: cert.notBefore.value,
      notAfter: cert.notAfter.value,
      sans: ext.sans,
      isCa: ext.isCa,
      keyUsage: ext.keyUsage,
      extKeyUsage: ext.extKeyUsage,
      spki: encodeDer(cert.subjectPublicKeyInfo.toSchema()),
      fingerprintSha256: createHash('sha256').update(der).digest('hex'),
      crlUrls: ext.crlUrls,
      ocspUrls: ext.ocspUrls,
      caIssuersUrls: ext.caIssuersUrls,
    };
    if (ext.pathLen !== undefined) summary.pathLen = ext.pathLen;
    if (ext.subjectKeyId) summary.subjectKeyIdHex = toHex(ext.subjectKeyId);
    if (ext.authorityKeyId) summary.authorityKeyIdHex = toHex(ext.authorityKeyId);
    return summary;
  });
}

/**
 * Whether `cert` (DER) carries a valid signature by the key `issuerSpki`. False also when
 * the certificate's algorithm is unsupported or its inner and outer algorithms differ.
 */
export function verifyCertificateSignature(cert: Uint8Array, issuerSpki: Uint8Array): boolean {
  let parsed: pkijs.Certificate;
  try {
    parsed = parseCertificate(cert);
  } catch {
    return false;
  }
  if (!parsed.signature.isEqual(parsed.signatureAlgorithm)) return false;
  if (parsed.signatureValue.valueBlock.unusedBits !== 0) return false;
  try {
    const alg = readSignatureAlgorithm(parsed.signatureAlgorithm, 'malformed');
    return verifySignature(issuerSpki, alg, parsed.tbsView, parsed.signatureValue.valueBlock.valueHexView);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Inspecting a TBSCertificate (pre-issuance linting, src/ca/lint.ts)

/** What the pre-issuance linter looks at: the TBSCertificate's fields and extensions, decoded. */
export interface TbsView {
  /** 0 = v1, 2 = v3. */
  version: number;
  /** The serialNumber INTEGER's content octets, as encoded (sign bit included). */
  serialBytes: Uint8Array;
  signatureOid: string;
  issuerDer: Uint8Array;
  issuer: RdnAttr[];
  subjectDer: Uint8Array;
  subject: RdnAttr[];
  notBefore: Date;
  notAfter: Date;
  notBeforeType: 'UTCTime' | 'GeneralizedTime';
  notAfterType: 'UTCTime' | 'GeneralizedTime';
  spki: Uint8Array;
  key: PublicKeyKind;
  /** Every extension in order, with its criticality. */
  extensions: Array<{ oid: string; critical: boolean }>;
  /** The extensions' values (see readExtensions); SAN names of other types in `otherSans`. */
  decoded: ReadExtensions;
  /** Whether the extension is present, by OID. */
  has(oid: string): boolean;
  critical(oid: string): boolean;
}

/** Decodes a DER TBSCertificate for linting; malformed input is CaError('internal') (we built it). */
export function inspectTbs(tbs: Uint8Array): TbsView {
  // pkijs parses TBSCertificates only inside a Certificate: wrap it (bytes, not asn1js
  // objects) with its own signature algorithm and an empty signature.
  const fields = sequenceElements(tbs, 'the TBSCertificate');
  const first = fields[0]?.[0] === 0xa0 ? 1 : 0; // after the optional [0] version
  const algId = fields[first + 1];
  const spkiDer = fields[first + 5];
  if (!algId || !spkiDer) throw new CaError('internal', 'the TBSCertificate lacks fields');
  const cert = parseCertificate(tlv(0x30, tbs, algId, bitString(Uint8Array.of(0))), 'internal');
  return wrapAsn1('internal', 'the TBSCertificate has a malformed field', () => {
    const exts = cert.extensions ?? [];
    const extensions = exts.map((e) => ({ oid: e.extnID, critical: e.critical }));
    const timeType = (t: pkijs.Time) => (t.type === pkijs.TimeType.UTCTime ? 'UTCTime' : 'GeneralizedTime') as TbsView['notBeforeType'];
    const spki = spkiDer.slice();
    return {
      version: cert.version,
      serialBytes: bytesOf(cert.serialNumber.valueBlock.valueHexView).slice(),
      signatureOid: cert.signature.algorithmId,
      issuerDer: bytesOf(cert.issuer.valueBeforeDecode).slice(),
      issuer: attrsFromRdns(cert.issuer),
      subjectDer: bytesOf(cert.subject.valueBeforeDecode).slice(),
      subject: attrsFromRdns(cert.subject),
      notBefore: cert.notBefore.value,
      notAfter: cert.notAfter.value,
      notBeforeType: timeType(cert.notBefore),
      notAfterType: timeType(cert.notAfter),
      spki,
      key: describePublicKey(spki, 'internal'),
      extensions,
      decoded: readExtensions(exts),
      has: (oid: string) => extensions.some((e) => e.oid === oid),
      critical: (oid: string) => extensions.find((e) => e.oid === oid)?.critical ?? false,
    };
  });
}
