/**
 * CMP (RFC 9810) and CRMF (RFC 4211) for the front end: the structures, protection, and
 * the few helpers that need pkijs/asn1js (which only src/pki imports).
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../../core/errors.ts';
import { readSignatureAlgorithm } from '../algorithms.ts';
import { parseCertificate } from '../certificate.ts';
import { encodeDer } from '../der.ts';
import { OID } from '../oids.ts';
import {
  ctxExplicit,
  ctxImplicitConstructed,
  utf8,
  int,
  rawNode,
  oid,
  seq,
  sequenceOf,
  toDerBytes,
  fromDer,
  derOf,
  generalizedTime,
  nullNode,
} from './asn1.ts';
export { fromDer } from './asn1.ts';
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
    const id = new pkijs.AlgorithmIdentifier({ schema: fromDer(hashAlgDer, 'hashAlg') }).algorithmId;
    const byOid: Record<string, string> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512', [OID.sha1]: 'sha1' };
    hash = byOid[id] ?? badHashAlg(id);
  } else {
    const cert = parseCertificate(certDer);
    const alg = readSignatureAlgorithm(cert.signatureAlgorithm, 'malformed');
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
  const cert = parseCertificate(certDer);
  return { issuer: encodeDer(cert.issuer.toSchema()), serial: cert.serialNumber.valueBlock.valueHexView.slice() };
}

/** GeneralName directoryName [4] of a DER Name. */
export function directoryName(nameDer: Uint8Array): Uint8Array {
  return toDerBytes(ctxExplicit(4, rawNode(nameDer)));
}

/** DER SEQUENCE OF CMPCertificate (the value of caCerts, crls). */
export function derSequence(items: Uint8Array[]): Uint8Array {
  return toDerBytes(seq(items.map((i) => rawNode(i))));
}

/** The elements of a DER SEQUENCE OF. */
export function derSequenceItems(der: Uint8Array, what: string): Uint8Array[] {
  return sequenceOf(fromDer(der, what), what).map(derOf);
}

/** SEQUENCE OF OBJECT IDENTIFIER (unsupportedOIDs). */
export function oidSequence(oids: string[]): Uint8Array {
  return toDerBytes(seq(oids.map((o) => oid(o))));
}

/** A DER GeneralizedTime (confirmWaitTime). */
export function generalizedTimeDer(d: Date): Uint8Array {
  return toDerBytes(generalizedTime(d));
}

/** A DER AlgorithmIdentifier with the OID and optional parameters. */
export function algorithmIdentifier(algorithm: string, params?: 'null' | string): Uint8Array {
  const items = [oid(algorithm)];
  if (params === 'null') items.push(nullNode() as never);
  else if (params) items.push(oid(params));
  return toDerBytes(seq(items));
}

/** A DER INTEGER. */
export function integerDer(v: number): Uint8Array {
  return toDerBytes(int(v));
}

/** A DER SEQUENCE OF UTF8String. */
export function utf8Sequence(texts: string[]): Uint8Array {
  return toDerBytes(seq(texts.map((t) => utf8(t))));
}

/** AttributeTypeAndValue for a keySpec entry. */
export function keySpec(type: string, valueDer: Uint8Array): AttributeTypeAndValue {
  return new AttributeTypeAndValue(type, valueDer);
}

/** The reasonCode (RFC 5280 5.3.1) of an rr's crlEntryDetails, if present. */
export function crlEntryReasonCode(extensionsDer: Uint8Array | undefined): number | undefined {
  if (!extensionsDer) return undefined;
  let exts: pkijs.Extensions;
  try {
    exts = new pkijs.Extensions({ schema: fromDer(extensionsDer, 'crlEntryDetails') });
  } catch (e) {
    if (CaError.is(e)) throw e;
    throw new CaError('malformed', 'crlEntryDetails are not Extensions', { rule: 'cmp.asn1' });
  }
  const reason = exts.extensions.find((e) => e.extnID === '2.5.29.21');
  if (!reason) return undefined;
  const node = fromDer(reason.extnValue.valueBlock.valueHexView, 'reasonCode');
  const v = (node as { valueBlock?: { valueDec?: number } }).valueBlock?.valueDec;
  if (typeof v !== 'number') throw new CaError('malformed', 'reasonCode is not an ENUMERATED', { rule: 'cmp.asn1' });
  return v;
}

/** DER of a structure (a CertReqMsg keeps the received bytes of its certReq). */
export function structureDer(m: { toSchema(): asn1js.AsnType }): Uint8Array {
  return toDerBytes(m.toSchema());
}

/** DistributionPointName fullName [0] with one URI (a CRLSource dpn). */
export function distributionPointName(url: string): Uint8Array {
  const uri = new pkijs.GeneralName({ type: 6, value: url });
  return toDerBytes(ctxImplicitConstructed(0, [uri.toSchema() as never]));
}
