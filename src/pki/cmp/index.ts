/**
 * CMP (RFC 9810) and CRMF (RFC 4211) for the front end: the structures, protection, and
 * the DER helpers the CMP front end needs.
 */
import { createHash } from 'node:crypto';
import { CaError } from '../../core/errors.ts';
import { readSignatureAlgorithm } from '../algorithms.ts';
import { derElement, sequenceElements, tlv } from '../der.ts';
import { signedFromInteger } from '../integer.ts';
import { OID } from '../oids.ts';
import {
  Cursor,
  NULL,
  ctxExplicit,
  utf8,
  rawNode,
  oid,
  readOctets,
  readOid,
  seq,
  sequenceOf,
  fromDer,
  derOf,
  integerContent,
} from './asn1.ts';
export { NULL, fromDer, generalizedTime, int } from './asn1.ts';
import { AttributeTypeAndValue } from '../crmf/structures.ts';

export * from './structures.ts';
export * from './protection.ts';
export {
  CertReqMessages,
  CertReqMsg,
  CertRequest,
  CertTemplate,
  AttributeTypeAndValue,
  POPOSigningKey,
  ProofOfPossession,
} from '../crmf/structures.ts';
export { readCertReqMsg, parseCrmfRequest, nameAttrs, sameSubject, type CrmfRequest } from '../crmf/request.ts';

/** id-it-* InfoTypeAndValue types (RFC 9810 5.3.19, RFC 9483 4.3). */
export const INFO_TYPES = {
  caProtEncCert: '1.3.6.1.5.5.7.4.1',
  signKeyPairTypes: '1.3.6.1.5.5.7.4.2',
  encKeyPairTypes: '1.3.6.1.5.5.7.4.3',
  preferredSymmAlg: '1.3.6.1.5.5.7.4.4',
  caKeyUpdateInfo: '1.3.6.1.5.5.7.4.5',
  currentCRL: '1.3.6.1.5.5.7.4.6',
  unsupportedOIDs: '1.3.6.1.5.5.7.4.7',
  keyPairParamReq: '1.3.6.1.5.5.7.4.10',
  keyPairParamRep: '1.3.6.1.5.5.7.4.11',
  revPassphrase: '1.3.6.1.5.5.7.4.12',
  implicitConfirm: '1.3.6.1.5.5.7.4.13',
  confirmWaitTime: '1.3.6.1.5.5.7.4.14',
  origPKIMessage: '1.3.6.1.5.5.7.4.15',
  suppLangTags: '1.3.6.1.5.5.7.4.16',
  caCerts: '1.3.6.1.5.5.7.4.17',
  rootCaKeyUpdate: '1.3.6.1.5.5.7.4.18',
  certReqTemplate: '1.3.6.1.5.5.7.4.19',
  rootCaCert: '1.3.6.1.5.5.7.4.20',
  certProfile: '1.3.6.1.5.5.7.4.21',
  crlStatusList: '1.3.6.1.5.5.7.4.22',
  crls: '1.3.6.1.5.5.7.4.23',
} as const;

/** id-regCtrl-algId and id-regCtrl-rsaKeyLen (RFC 9483 4.3.3) for certReqTemplate keySpec. */
export const REG_CTRL = { algId: '1.3.6.1.5.5.7.5.1.11', rsaKeyLen: '1.3.6.1.5.5.7.5.1.12' } as const;

/**
 * The certHash a certConf carries for `certDer` (RFC 9810 5.3.18): by the hash of the
 * certificate's signature algorithm, or by `hashAlg` (CMPv3) when given.
 */
export function certHash(certDer: Uint8Array, hashAlgDer?: Uint8Array): Uint8Array {
  let hash: string;
  if (hashAlgDer) {
    const id = readOid(sequenceOf(fromDer(hashAlgDer, 'hashAlg'), 'hashAlg', 1)[0], 'hashAlg.algorithm');
    const byOid: Record<string, string> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512', [OID.sha1]: 'sha1' };
    hash = byOid[id] ?? badHashAlg(id);
  } else {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    const [, sigAlg] = sequenceOf(fromDer(certDer, 'the certificate'), 'the certificate', 3);
    const alg = readSignatureAlgorithm(sigAlg!.bytes, 'malformed');
    // EdDSA has no separate hash: RFC 9481 says SHA-512 for Ed25519 (and SHAKE256 for Ed448).
    hash = alg.hash ?? 'sha512';
  }
  return new Uint8Array(createHash(hash).update(certDer).digest());
}

function badHashAlg(id: string): never {
  throw new CaError('malformed', `certConf hashAlg ${id} is not supported`, { rule: 'cmp.protection.alg' });
}

/** The serial (content octets) and issuer (DER Name) of a certificate. */
export function certIssuerAndSerial(certDer: Uint8Array): { issuer: Uint8Array; serial: Uint8Array } {
  // TBSCertificate ::= SEQUENCE { [0] version, serialNumber, signature, issuer, ... }
  const [tbs] = sequenceElements(certDer, 'the certificate');
  const fields = sequenceElements(tbs!, 'the TBSCertificate');
  const [serial, , issuer] = fields[0]![0] === 0xa0 ? fields.slice(1) : fields;
  return { issuer: issuer!.slice(), serial: derElement(serial!, 'the serial number', 'internal', 0x02).content.slice() };
}

/** GeneralName directoryName [4] of a DER Name. */
export function directoryName(nameDer: Uint8Array): Uint8Array {
  return ctxExplicit(4, rawNode(nameDer));
}

/** DER SEQUENCE OF CMPCertificate (the value of caCerts, crls). */
export function derSequence(items: Uint8Array[]): Uint8Array {
  return seq(items.map((i) => rawNode(i)));
}

/** The elements of a DER SEQUENCE OF. */
export function derSequenceItems(der: Uint8Array, what: string): Uint8Array[] {
  return sequenceOf(fromDer(der, what), what).map(derOf);
}

/** SEQUENCE OF OBJECT IDENTIFIER (unsupportedOIDs). */
export function oidSequence(oids: string[]): Uint8Array {
  return seq(oids.map((o) => oid(o)));
}

/** A DER AlgorithmIdentifier with the OID and optional parameters. */
export function algorithmIdentifier(algorithm: string, params?: 'null' | string): Uint8Array {
  const items = [oid(algorithm)];
  if (params === 'null') items.push(NULL);
  else if (params) items.push(oid(params));
  return seq(items);
}

/** A DER SEQUENCE OF UTF8String. */
export function utf8Sequence(texts: string[]): Uint8Array {
  return seq(texts.map((t) => utf8(t)));
}

/** AttributeTypeAndValue for a keySpec entry. */
export function keySpec(type: string, valueDer: Uint8Array): AttributeTypeAndValue {
  return new AttributeTypeAndValue(type, valueDer);
}

/** The reasonCode (RFC 5280 5.3.1) of an rr's crlEntryDetails, if present. */
export function crlEntryReasonCode(extensionsDer: Uint8Array | undefined): number | undefined {
  if (!extensionsDer) return undefined;
  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
  for (const ext of sequenceOf(fromDer(extensionsDer, 'crlEntryDetails'), 'crlEntryDetails', 1)) {
    const c = new Cursor(sequenceOf(ext, 'crlEntryDetails.Extension', 2), 'crlEntryDetails.Extension');
    if (readOid(c.take(), 'crlEntryDetails.extnID') !== '2.5.29.21') continue;
    c.takeIf((n) => n.tag === 0x01);
    const value = fromDer(readOctets(c.take(), 'reasonCode'), 'reasonCode');
    c.end();
    // CRLReason ::= ENUMERATED; which reasons are accepted is the caller's policy.
    if (value.tag !== 0x0a) throw new CaError('malformed', 'reasonCode is not an ENUMERATED', { rule: 'cmp.asn1' });
    const code = signedFromInteger(integerContent(value.content, 'reasonCode'));
    return Number(code);
  }
  return undefined;
}

/** DistributionPointName fullName [0] with one URI (a CRLSource dpn). */
export function distributionPointName(url: string): Uint8Array {
  return tlv(0xa0, tlv(0x86, new Uint8Array(Buffer.from(url, 'latin1'))));
}
