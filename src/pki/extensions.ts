/**
 * X.509 v3 extensions certflow writes, and reading them back for describeCertificate.
 * Criticality follows RFC 5280: basicConstraints and keyUsage critical, SAN critical only
 * when the subject is empty, everything else non-critical.
 */
import { CaError, type ErrorKind } from '../core/errors.ts';
import { KEY_USAGES, type KeyUsageName } from '../config/profiles.ts';
import { derChildren, derElement, derOid, oidDer, tlv, type DerElement } from './der.ts';
import { integerFromBigint } from './integer.ts';
import { OID } from './oids.ts';
import { decodeNameConstraints, encodeNameConstraints, type NameConstraints } from './name-constraints.ts';
import { decodeGeneralNames, emptySans, encodeGeneralNames, sanCount, type SanSet } from './san.ts';

export interface CertExtensions {
  basicConstraints?: { ca: boolean; pathLen?: number };
  keyUsage?: KeyUsageName[];
  /** OIDs */
  extKeyUsage?: string[];
  sans?: SanSet;
  subjectKeyId: Uint8Array;
  authorityKeyId?: Uint8Array;
  crlUrls?: string[];
  ocspUrls?: string[];
  caIssuersUrls?: string[];
  /** certificatePolicies: policy OIDs without qualifiers. */
  policies?: string[];
  /** nameConstraints of a CA certificate (critical), typed strings (name-constraints.ts). */
  nameConstraints?: NameConstraints;
  /** freshestCRL (RFC 5280 4.2.1.15): where the delta CRLs are. */
  deltaCrlUrls?: string[];
}

const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

/** One Extension element: criticality written only when TRUE (DER omits a DEFAULT). */
function extension(extnID: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? tlv(0x30, oidDer(extnID), TRUE, tlv(0x04, value)) : tlv(0x30, oidDer(extnID), tlv(0x04, value));
}

const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));

/**
 * The extensions (each a DER Extension) in the order they appear in the certificate,
 * assembled from DER pieces (der.ts): pkijs' schemas cost about a millisecond per
 * certificate to encode them. test/unit/pki.test.ts compares them with pkijs' encoding.
 * @param subjectEmpty whether the certificate's subject is an empty Name (SAN becomes critical)
 */
export function buildExtensions(e: CertExtensions, subjectEmpty: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (e.basicConstraints) out.push(basicConstraints(e.basicConstraints));
  if (e.keyUsage?.length) out.push(extension(OID.keyUsage, true, encodeKeyUsage(e.keyUsage)));
  if (e.nameConstraints && (e.nameConstraints.permitted.length || e.nameConstraints.excluded.length)) {
    out.push(extension(OID.nameConstraints, true, encodeNameConstraints(e.nameConstraints)));
  }
  if (e.extKeyUsage?.length) out.push(extension(OID.extKeyUsage, false, tlv(0x30, ...e.extKeyUsage.map(oidDer))));
  out.push(extension(OID.subjectKeyIdentifier, false, tlv(0x04, e.subjectKeyId)));
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
  if (e.authorityKeyId) out.push(extension(OID.authorityKeyIdentifier, false, tlv(0x30, tlv(0x80, e.authorityKeyId))));
  const hasSans = e.sans !== undefined && sanCount(e.sans) > 0;
  if (subjectEmpty && !hasSans) {
    // RFC 5280 4.1.2.6: an empty subject is only allowed with a (critical) SAN.
    throw new CaError('policy', 'a certificate with an empty subject must have at least one subject alternative name', {
      rule: 'subject.empty',
    });
  }
  if (e.sans && hasSans) out.push(extension(OID.subjectAltName, subjectEmpty, encodeGeneralNames(e.sans)));
  if (e.crlUrls?.length) out.push(extension(OID.crlDistributionPoints, false, encodeCrlDistributionPoints(e.crlUrls)));
  if (e.deltaCrlUrls?.length) out.push(extension(OID.freshestCrl, false, encodeCrlDistributionPoints(e.deltaCrlUrls)));
  // AccessDescription ::= SEQUENCE { accessMethod OID, accessLocation GeneralName (a URI) }
  const aia = [
    ...(e.ocspUrls ?? []).map((u) => tlv(0x30, oidDer(OID.adOcsp), uriName(u))),
    ...(e.caIssuersUrls ?? []).map((u) => tlv(0x30, oidDer(OID.adCaIssuers), uriName(u))),
  ];
  if (aia.length) out.push(extension(OID.authorityInfoAccess, false, tlv(0x30, ...aia)));
  // PolicyInformation ::= SEQUENCE { policyIdentifier OID } (no qualifiers)
  if (e.policies?.length) out.push(extension(OID.certificatePolicies, false, tlv(0x30, ...e.policies.map((p) => tlv(0x30, oidDer(p))))));
  return out;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
function basicConstraints(bc: { ca: boolean; pathLen?: number }): Uint8Array {
  if (bc.pathLen === undefined) return extension(OID.basicConstraints, true, bc.ca ? tlv(0x30, TRUE) : tlv(0x30));
  if (!bc.ca || !Number.isInteger(bc.pathLen) || bc.pathLen < 0) {
    throw new CaError('internal', `basicConstraints pathLen ${bc.pathLen} is only valid as a non-negative integer on a CA certificate`);
  }
  return extension(OID.basicConstraints, true, tlv(0x30, TRUE, tlv(0x02, integerFromBigint(BigInt(bc.pathLen), 'pathLenConstraint'))));
}

/**
 * KeyUsage BIT STRING in DER: bit 0 (digitalSignature) is the most significant bit of the
 * first octet; trailing zero bits are removed and counted in the unused-bits octet
 * (X.690 11.2.2).
 */
export function encodeKeyUsage(usages: readonly KeyUsageName[]): Uint8Array {
  const bits = usages.map((u) => {
    const i = KEY_USAGES.indexOf(u);
    if (i < 0) throw new CaError('internal', `unknown key usage "${u}"`);
    return i;
  });
  if (bits.length === 0) throw new CaError('internal', 'keyUsage must name at least one usage');
  const highest = Math.max(...bits);
  const bytes = new Uint8Array((highest >> 3) + 1);
  for (const b of bits) bytes[b >> 3] |= 0x80 >> (b & 7);
  const unusedBits = bytes.length * 8 - (highest + 1);
  return tlv(0x03, Uint8Array.of(unusedBits), bytes);
}

function decodeKeyUsage(bytes: Uint8Array): KeyUsageName[] {
  return KEY_USAGES.filter((_u, i) => ((bytes[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0);
}

/** A uniformResourceIdentifier GeneralName: [6] IMPLICIT IA5String. */
function uriName(url: string): Uint8Array {
  return tlv(0x86, ascii(url));
}

/**
 * CRLDistributionPoints with one DistributionPoint holding all URLs as alternative
 * locations of the same CRL: SEQUENCE { SEQUENCE { [0] { [0] IMPLICIT GeneralNames } } }.
 */
export function encodeCrlDistributionPoints(urls: string[]): Uint8Array {
  return tlv(0x30, tlv(0x30, tlv(0xa0, tlv(0xa0, ...urls.map(uriName)))));
}

// ---------------------------------------------------------------------------------------
// Reading

export interface ReadExtensions {
  isCa: boolean;
  pathLen?: number;
  keyUsage: KeyUsageName[];
  extKeyUsage: string[];
  sans: SanSet;
  subjectKeyId?: Uint8Array;
  authorityKeyId?: Uint8Array;
  crlUrls: string[];
  ocspUrls: string[];
  caIssuersUrls: string[];
  policies: string[];
  nameConstraints?: NameConstraints;
  deltaCrlUrls: string[];
}

/** An extension as it appears in a certificate: its OID, criticality and the DER of extnValue's contents. */
export interface RawExtension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

/**
 * The elements of an Extensions SEQUENCE from a requester's bytes (a CSR's or CRMF
 * template's requested extensions, an OCSP request's): RFC 5280 4.1's Extension ::=
 * SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }, each OID at
 * most once, criticality a DER BOOLEAN. `bad` refuses, given what is wrong ("has a malformed
 * `noun`"); `kind` is the error kind of a broken framing inside.
 */
export function readExtensionList(exts: DerElement, noun: string, kind: ErrorKind, bad: (why: string) => never): RawExtension[] {
  if (exts.tag !== 0x30) bad(`has ${noun}s that are not a SEQUENCE`);
  const out: RawExtension[] = [];
  for (const ext of derChildren(exts, `the ${noun}s`, kind)) {
    const [oidEl, second, third, ...extra] = ext.tag === 0x30 ? derChildren(ext, `the ${noun}s`, kind) : [];
    const hasCritical = second?.tag === 0x01;
    const value = hasCritical ? third : second;
    if (value?.tag !== 0x04 || (hasCritical ? extra.length : third !== undefined)) bad(`has a malformed ${noun}`);
    if (hasCritical && (second!.content.length !== 1 || (second!.content[0] !== 0 && second!.content[0] !== 0xff))) {
      bad(`has a ${noun} whose critical flag is not a DER BOOLEAN`);
    }
    const oid = derOid(oidEl, `the ${noun}'s OID`, kind);
    if (out.some((o) => o.oid === oid)) bad(`has the ${noun} ${oid} twice`);
    out.push({ oid, critical: hasCritical && second!.content[0] === 0xff, value: value!.content });
  }
  return out;
}

/**
 * Interprets the extensions of a certificate we parsed (our own, an imported CA's or a
 * client's) or of a TBS about to be signed. Works on the DER bytes (der.ts): no asn1js
 * objects or pkijs schemas, which cost more than the signature on the issuance path.
 * Malformed values are CaError(kind) naming the extension.
 */
export function readExtensions(exts: readonly RawExtension[], kind: ErrorKind = 'malformed'): ReadExtensions {
  const r: ReadExtensions = {
    isCa: false,
    keyUsage: [],
    extKeyUsage: [],
    sans: emptySans(),
    crlUrls: [],
    ocspUrls: [],
    caIssuersUrls: [],
    policies: [],
    deltaCrlUrls: [],
  };
  for (const ext of exts) {
    const what = `the certificate's extension ${ext.oid}`;
    const value = (tag: number) => derElement(ext.value, what, kind, tag);
    const items = (tag = 0x30) => derChildren(value(tag), what, kind);
    const uri = (name: DerElement) => (name.tag === 0x86 ? Buffer.from(name.content).toString('latin1') : undefined);
    switch (ext.oid) {
      case OID.basicConstraints: {
        const fields = items();
        if (fields.length > 2) throw new CaError(kind, `${what} (basicConstraints) has ${fields.length} fields`);
        const [first] = fields;
        let [, second] = fields;
        if (first?.tag === 0x01) {
          if (first.content.length !== 1) throw new CaError(kind, `${what} (basicConstraints) has a malformed cA BOOLEAN`);
          r.isCa = first.content[0] !== 0;
        } else {
          second = first;
        }
        if (second) {
          if (second.tag !== 0x02 || second.content.length === 0 || second.content.length > 4 || second.content[0]! & 0x80) {
            throw new CaError(kind, `${what} (basicConstraints) has a malformed pathLenConstraint`);
          }
          r.pathLen = second.content.reduce((n, b) => n * 256 + b, 0);
        }
        break;
      }
      case OID.keyUsage: {
        const bits = value(0x03).content;
        if (bits.length === 0) throw new CaError(kind, `${what} (keyUsage) is an empty BIT STRING`);
        r.keyUsage = decodeKeyUsage(bits.subarray(1));
        break;
      }
      case OID.extKeyUsage:
        r.extKeyUsage = items().map((e) => derOid(e, what, kind));
        break;
      case OID.subjectAltName:
        r.sans = decodeGeneralNames(ext.value, kind).sans;
        break;
      case OID.subjectKeyIdentifier:
        r.subjectKeyId = value(0x04).content.slice();
        break;
      case OID.authorityKeyIdentifier: {
        const keyId = items().find((e) => e.tag === 0x80);
        if (keyId) r.authorityKeyId = keyId.content.slice();
        break;
      }
      case OID.crlDistributionPoints:
      case OID.freshestCrl:
        for (const dp of items()) {
          // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
          const dpName = derChildren(dp, what, kind).find((e) => e.tag === 0xa0);
          const fullName = dpName && derChildren(dpName, what, kind).find((e) => e.tag === 0xa0);
          const urls = fullName ? derChildren(fullName, what, kind).flatMap((n) => uri(n) ?? []) : [];
          (ext.oid === OID.freshestCrl ? r.deltaCrlUrls : r.crlUrls).push(...urls);
        }
        break;
      case OID.nameConstraints:
        r.nameConstraints = decodeNameConstraints(ext.value, kind);
        break;
      case OID.certificatePolicies:
        r.policies = items().map((p) => derOid(derChildren(p, what, kind)[0], what, kind));
        break;
      case OID.authorityInfoAccess:
        for (const ad of items()) {
          const [method, location] = derChildren(ad, what, kind);
          const url = location && uri(location);
          if (url === undefined) continue;
          const oid = derOid(method, what, kind);
          if (oid === OID.adOcsp) r.ocspUrls.push(url);
          if (oid === OID.adCaIssuers) r.caIssuersUrls.push(url);
        }
        break;
    }
  }
  return r;
}
