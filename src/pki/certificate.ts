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
import { readSignatureAlgorithm, signatureAlgorithmDer, verifySignature } from './algorithms.ts';
import {
  derElementExact,
  bytesEqual,
  bytesOf,
  derChildren,
  derElement,
  derOid,
  derTime,
  encodeDer,
  parseDer,
  toHex,
  wrapAsn1,
  bitString,
  sequenceElements,
  timeDer,
  tlv,
  type DerElement,
} from './der.ts';
import { buildExtensions, readExtensions, type CertExtensions, type RawExtension, type ReadExtensions } from './extensions.ts';
import { attrsFromRdns, formatDn, readName, type RdnAttr } from './names.ts';
import { describePublicKey, spkiParts, type PublicKeyKind } from './publickey.ts';
import type { SanSet } from './san.ts';
import type { NameConstraints } from './name-constraints.ts';
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

/** [0] EXPLICIT INTEGER 2: version v3. */
const VERSION_3 = new Uint8Array([0xa0, 0x03, 0x02, 0x01, 0x02]);
const EMPTY_NAME = new Uint8Array([0x30, 0x00]);

/**
 * DER TBSCertificate (v3). Dates are truncated to whole seconds. Assembled from DER pieces,
 * like assembleCertificate: the names and the key go in as the exact bytes given (each one
 * DER element, checked), the extensions from DER pieces too (extensions.ts). A pkijs
 * Certificate parsed both names and the key again to encode them, about a millisecond per
 * certificate.
 */
export function buildTbsCertificate(p: TbsParams): Uint8Array {
  assertValidSerial(p.serial);
  if (!(p.notAfter.getTime() > p.notBefore.getTime())) {
    throw new CaError('internal', `notAfter ${p.notAfter.toISOString()} is not after notBefore ${p.notBefore.toISOString()}`);
  }
  const element = (der: Uint8Array, what: string) => {
    try {
      return derElementExact(der, what, 'malformed', 0x30);
    } catch (e) {
      throw new CaError('malformed', `${what} is not valid DER (${(e as Error).message})`, { cause: e });
    }
  };
  element(p.issuer, 'the issuer name');
  element(p.subject, 'the subject name');
  spkiParts(element(p.spki, 'the subject public key'), 'the subject public key');
  const extensions = buildExtensions(p.extensions, bytesEqual(p.subject, EMPTY_NAME));
  return tlv(
    0x30,
    VERSION_3,
    tlv(0x02, p.serial),
    signatureAlgorithmDer(p.sigAlg),
    p.issuer,
    tlv(0x30, timeDer(p.notBefore), timeDer(p.notAfter)),
    p.subject,
    p.spki,
    tlv(0xa3, tlv(0x30, ...extensions)),
  );
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
  if (!inner || !bytesEqual(inner, algId))
    throw new CaError('internal', `the TBSCertificate was not built for signature algorithm ${sigAlg}`);
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
  /** nameConstraints of a CA certificate. */
  nameConstraints?: NameConstraints;
}

export function describeCertificate(der: Uint8Array): CertSummary {
  const cert = parseCertificate(der);
  return wrapAsn1('malformed', 'the certificate has a malformed field', () => {
    const ext = readExtensions(
      (cert.extensions ?? []).map((e) => ({ oid: e.extnID, critical: e.critical, value: bytesOf(e.extnValue.valueBlock.valueHexView) })),
    );
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
    if (ext.nameConstraints) summary.nameConstraints = ext.nameConstraints;
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

/**
 * Decodes a DER TBSCertificate for linting, on its bytes (der.ts): a pkijs Certificate
 * would cost several times the signature. Malformed input is CaError('internal') (we built it).
 */
export function inspectTbs(tbs: Uint8Array): TbsView {
  const what = 'the TBSCertificate';
  const fail = (why: string): never => {
    throw new CaError('internal', `${what} ${why}`);
  };
  const fields = derChildren(derElement(tbs, what, 'internal', 0x30), what, 'internal');
  let version = 0;
  if (fields[0]?.tag === 0xa0) {
    const v = derChildren(fields.shift()!, what, 'internal')[0];
    if (v?.tag !== 0x02 || v.content.length !== 1) fail('has a malformed version');
    version = v!.content[0]!;
  }
  const [serial, sigAlg, issuer, validity, subject, spki, ...rest] = fields;
  if (!spki) fail('lacks fields');
  if (serial!.tag !== 0x02) fail('has a serialNumber that is not an INTEGER');
  const times = derChildren(validity!, what, 'internal');
  if (times.length !== 2) fail('has a malformed validity');
  const [notBefore, notAfter] = times.map((t) => derTime(t, what, 'internal'));
  const exts = rest.find((e) => e.tag === 0xa3);
  const raw: RawExtension[] = (
    exts ? derChildren(derChildren(exts, what, 'internal')[0] ?? fail('has empty extensions'), what, 'internal') : []
  ).map((e) => {
    const [oid, second, third] = derChildren(e, what, 'internal');
    const critical = second?.tag === 0x01;
    const value = critical ? third : second;
    if (value?.tag !== 0x04) fail('has an extension without an OCTET STRING value');
    return { oid: derOid(oid, what, 'internal'), critical: critical && second!.content[0] !== 0, value: value!.content };
  });
  const extensions = raw.map((e) => ({ oid: e.oid, critical: e.critical }));
  const name = (n: DerElement) => readName(n, `${what}'s name`, 'internal');
  const spkiDer = spki!.bytes.slice();
  return {
    version,
    serialBytes: serial!.content.slice(),
    signatureOid: derOid(derChildren(sigAlg!, what, 'internal')[0], what, 'internal'),
    issuerDer: issuer!.bytes.slice(),
    issuer: name(issuer!),
    subjectDer: subject!.bytes.slice(),
    subject: name(subject!),
    notBefore: notBefore!.date,
    notAfter: notAfter!.date,
    notBeforeType: notBefore!.type,
    notAfterType: notAfter!.type,
    spki: spkiDer,
    key: describePublicKey(spkiDer, 'internal'),
    extensions,
    decoded: readExtensions(raw, 'internal'),
    has: (oid: string) => extensions.some((e) => e.oid === oid),
    critical: (oid: string) => extensions.find((e) => e.oid === oid)?.critical ?? false,
  };
}
