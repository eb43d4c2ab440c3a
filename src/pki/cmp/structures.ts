/**
 * CMP (RFC 9810) structures, one class per structure (PKI.js style): `fromSchema` reads a
 * parsed asn1js node, `toSchema` builds one. The CMP module uses EXPLICIT tags.
 * Certificates, names and algorithm identifiers are kept as DER bytes.
 */
import * as asn1js from 'asn1js';
import { CertId, CertReqMessages, CertTemplate, AttributeTypeAndValue } from '../crmf/structures.ts';
import {
  Cursor,
  bad,
  bitString,
  contextNumber,
  ctxExplicit,
  derOf,
  explicit,
  fromDer,
  generalizedTime,
  int,
  isContext,
  rawNode,
  nullNode,
  octets,
  oid,
  readBitString,
  readGeneralizedTime,
  readOctets,
  readOid,
  readSmallInt,
  readInteger,
  readTime,
  readUtf8,
  seq,
  sequence,
  sequenceOf,
  toDerBytes,
  utf8,
  type Node,
} from './asn1.ts';

/** PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String */
const PKIFreeText = {
  fromSchema(node: Node, what = 'PKIFreeText'): string[] {
    return sequenceOf(node, what, 1).map((n) => readUtf8(n, what));
  },
  toSchema(texts: string[]): asn1js.Sequence {
    return seq(texts.map((t) => utf8(t)));
  },
};

/** PKIStatus values (RFC 9810 5.2.3). */
export const PKIStatus = {
  accepted: 0,
  grantedWithMods: 1,
  rejection: 2,
  waiting: 3,
  revocationWarning: 4,
  revocationNotification: 5,
  keyUpdateWarning: 6,
} as const;

/** PKIFailureInfo bit numbers (RFC 9810 5.2.3). */
export const FAILURE_BITS = {
  badAlg: 0,
  badMessageCheck: 1,
  badRequest: 2,
  badTime: 3,
  badCertId: 4,
  badDataFormat: 5,
  wrongAuthority: 6,
  incorrectData: 7,
  missingTimeStamp: 8,
  badPOP: 9,
  certRevoked: 10,
  certConfirmed: 11,
  wrongIntegrity: 12,
  badRecipientNonce: 13,
  timeNotAvailable: 14,
  unacceptedPolicy: 15,
  unacceptedExtension: 16,
  addInfoNotAvailable: 17,
  badSenderNonce: 18,
  badCertTemplate: 19,
  signerNotTrusted: 20,
  transactionIdInUse: 21,
  unsupportedVersion: 22,
  notAuthorized: 23,
  systemUnavail: 24,
  systemFailure: 25,
  duplicateCertReq: 26,
} as const;
export type FailureInfo = keyof typeof FAILURE_BITS;

/** PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo OPTIONAL } */
export class PKIStatusInfo {
  constructor(
    public status: number,
    public statusString?: string[],
    public failInfo?: FailureInfo[],
  ) {}
  static fromSchema(node: Node, what = 'PKIStatusInfo'): PKIStatusInfo {
    const c = new Cursor(sequence(node, what), what);
    const status = readSmallInt(c.take(), `${what}.status`, 1000);
    const text = c.takeIf((n) => n instanceof asn1js.Sequence);
    const fail = c.takeIf((n) => n instanceof asn1js.BitString);
    c.end();
    return new PKIStatusInfo(
      status,
      text ? PKIFreeText.fromSchema(text, `${what}.statusString`) : undefined,
      fail ? decodeFailureBits(readBitString(fail, `${what}.failInfo`)) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [int(this.status)];
    if (this.statusString?.length) items.push(PKIFreeText.toSchema(this.statusString));
    if (this.failInfo?.length) items.push(encodeFailureBits(this.failInfo));
    return seq(items);
  }
}

function decodeFailureBits(b: { bytes: Uint8Array; unusedBits: number }): FailureInfo[] {
  const out: FailureInfo[] = [];
  for (const [name, bit] of Object.entries(FAILURE_BITS)) {
    const byte = b.bytes[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.push(name as FailureInfo);
  }
  return out;
}

/** A named BIT STRING in DER: trailing zero bits removed (X.690 11.2.2). */
function encodeFailureBits(names: FailureInfo[]): asn1js.BitString {
  const bits = names.map((n) => FAILURE_BITS[n]);
  const top = Math.max(...bits);
  const bytes = new Uint8Array((top >> 3) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return bitString(bytes, 7 - (top & 7));
}

/** InfoTypeAndValue ::= SEQUENCE { infoType OBJECT IDENTIFIER, infoValue ANY DEFINED BY infoType OPTIONAL } */
export class InfoTypeAndValue {
  constructor(
    public infoType: string,
    /** DER of the value; undefined when absent. */
    public infoValue?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'InfoTypeAndValue'): InfoTypeAndValue {
    const c = new Cursor(sequence(node, what), what);
    const type = readOid(c.take(), `${what}.infoType`);
    const value = c.takeIf(() => true);
    c.end();
    return new InfoTypeAndValue(type, value ? derOf(value) : undefined);
  }
  toSchema(): asn1js.Sequence {
    return seq(this.infoValue ? [oid(this.infoType), rawNode(this.infoValue)] : [oid(this.infoType)]);
  }
}

/**
 * PKIHeader ::= SEQUENCE { pvno INTEGER, sender GeneralName, recipient GeneralName,
 *   messageTime [0] GeneralizedTime OPTIONAL, protectionAlg [1] AlgorithmIdentifier OPTIONAL,
 *   senderKID [2] KeyIdentifier OPTIONAL, recipKID [3] KeyIdentifier OPTIONAL,
 *   transactionID [4] OCTET STRING OPTIONAL, senderNonce [5] OCTET STRING OPTIONAL,
 *   recipNonce [6] OCTET STRING OPTIONAL, freeText [7] PKIFreeText OPTIONAL,
 *   generalInfo [8] SEQUENCE SIZE (1..MAX) OF InfoTypeAndValue OPTIONAL }
 */
export class PKIHeader {
  pvno = 2;
  /** DER GeneralName. */
  sender: Uint8Array = NULL_DN;
  recipient: Uint8Array = NULL_DN;
  messageTime?: Date;
  protectionAlg?: Uint8Array;
  senderKID?: Uint8Array;
  recipKID?: Uint8Array;
  transactionID?: Uint8Array;
  senderNonce?: Uint8Array;
  recipNonce?: Uint8Array;
  freeText?: string[];
  generalInfo?: InfoTypeAndValue[];

  constructor(fields: Partial<PKIHeader> = {}) {
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) (this as Record<string, unknown>)[k] = v;
  }

  static fromSchema(node: Node, what = 'PKIHeader'): PKIHeader {
    const c = new Cursor(sequence(node, what), what);
    const h = new PKIHeader();
    h.pvno = readSmallInt(c.take(), `${what}.pvno`, 1000);
    h.sender = derOf(c.take());
    h.recipient = derOf(c.take());
    let last = -1;
    for (let n = c.peek(); n; n = c.peek()) {
      const tag = contextNumber(n);
      if (tag === undefined || tag > 8 || tag <= last) bad(what, 'has an unexpected, repeated or misordered field');
      last = tag;
      const inner = explicit(c.take(), tag, `${what}[${tag}]`);
      switch (tag) {
        case 0:
          h.messageTime = readGeneralizedTime(inner, `${what}.messageTime`);
          break;
        case 1:
          sequence(inner, `${what}.protectionAlg`);
          h.protectionAlg = derOf(inner);
          break;
        case 2:
          h.senderKID = readOctets(inner, `${what}.senderKID`);
          break;
        case 3:
          h.recipKID = readOctets(inner, `${what}.recipKID`);
          break;
        case 4:
          h.transactionID = readOctets(inner, `${what}.transactionID`);
          break;
        case 5:
          h.senderNonce = readOctets(inner, `${what}.senderNonce`);
          break;
        case 6:
          h.recipNonce = readOctets(inner, `${what}.recipNonce`);
          break;
        case 7:
          h.freeText = PKIFreeText.fromSchema(inner, `${what}.freeText`);
          break;
        case 8:
          h.generalInfo = sequenceOf(inner, `${what}.generalInfo`, 1).map((i) => InfoTypeAndValue.fromSchema(i, `${what}.generalInfo`));
          break;
      }
    }
    c.end();
    return h;
  }

  toSchema(): asn1js.Sequence {
    const items: Node[] = [int(this.pvno), rawNode(this.sender), rawNode(this.recipient)];
    if (this.messageTime) items.push(ctxExplicit(0, generalizedTime(this.messageTime)));
    if (this.protectionAlg) items.push(ctxExplicit(1, rawNode(this.protectionAlg)));
    if (this.senderKID) items.push(ctxExplicit(2, octets(this.senderKID)));
    if (this.recipKID) items.push(ctxExplicit(3, octets(this.recipKID)));
    if (this.transactionID) items.push(ctxExplicit(4, octets(this.transactionID)));
    if (this.senderNonce) items.push(ctxExplicit(5, octets(this.senderNonce)));
    if (this.recipNonce) items.push(ctxExplicit(6, octets(this.recipNonce)));
    if (this.freeText?.length) items.push(ctxExplicit(7, PKIFreeText.toSchema(this.freeText)));
    if (this.generalInfo?.length) items.push(ctxExplicit(8, seq(this.generalInfo.map((i) => i.toSchema()))));
    return seq(items);
  }
}

/** GeneralName directoryName [4] with an empty RDNSequence: the "NULL-DN" of RFC 9810. */
export const NULL_DN: Uint8Array = toDerBytes(ctxExplicit(4, seq([])));

/** CertOrEncCert ::= CHOICE { certificate [0] CMPCertificate, encryptedCert [1] EncryptedKey }; CertifiedKeyPair ::= SEQUENCE { certOrEncCert, privateKey [0] OPTIONAL, publicationInfo [1] OPTIONAL } */
export class CertifiedKeyPair {
  constructor(
    /** DER certificate (certOrEncCert = certificate). */
    public certificate?: Uint8Array,
    /** DER of certOrEncCert when it is not a plain certificate (encryptedCert), kept as received. */
    public certOrEncCert?: Uint8Array,
    public privateKey?: Uint8Array,
    public publicationInfo?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'CertifiedKeyPair'): CertifiedKeyPair {
    const c = new Cursor(sequence(node, what), what);
    const coe = c.take();
    const pk = c.takeContext(0);
    const pub = c.takeContext(1);
    c.end();
    const kp = new CertifiedKeyPair();
    if (isContext(coe, 0)) kp.certificate = derOf(explicit(coe, 0, `${what}.certificate`));
    else if (isContext(coe, 1)) kp.certOrEncCert = derOf(coe);
    else bad(what, 'certOrEncCert is neither certificate [0] nor encryptedCert [1]');
    if (pk) kp.privateKey = derOf(explicit(pk, 0, `${what}.privateKey`));
    if (pub) kp.publicationInfo = derOf(explicit(pub, 1, `${what}.publicationInfo`));
    return kp;
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [this.certificate ? ctxExplicit(0, rawNode(this.certificate)) : rawNode(this.certOrEncCert!)];
    if (this.privateKey) items.push(ctxExplicit(0, rawNode(this.privateKey)));
    if (this.publicationInfo) items.push(ctxExplicit(1, rawNode(this.publicationInfo)));
    return seq(items);
  }
}

/** CertResponse ::= SEQUENCE { certReqId INTEGER, status PKIStatusInfo, certifiedKeyPair CertifiedKeyPair OPTIONAL, rspInfo OCTET STRING OPTIONAL } */
export class CertResponse {
  constructor(
    public certReqId: number,
    public status: PKIStatusInfo,
    public certifiedKeyPair?: CertifiedKeyPair,
    public rspInfo?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'CertResponse'): CertResponse {
    const c = new Cursor(sequence(node, what), what);
    // certReqId may be -1 (RFC 9810 5.3.4, p10cr) : read as a signed number.
    const idValue = readInteger(c.take(), `${what}.certReqId`);
    if (idValue < -1n || idValue > 2n ** 31n) bad(what, 'certReqId is out of range');
    const status = PKIStatusInfo.fromSchema(c.take(), `${what}.status`);
    const kp = c.takeIf((n) => n instanceof asn1js.Sequence);
    const info = c.takeIf((n) => n instanceof asn1js.OctetString);
    c.end();
    return new CertResponse(
      Number(idValue),
      status,
      kp ? CertifiedKeyPair.fromSchema(kp, `${what}.certifiedKeyPair`) : undefined,
      info ? readOctets(info, `${what}.rspInfo`) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [int(this.certReqId), this.status.toSchema()];
    if (this.certifiedKeyPair) items.push(this.certifiedKeyPair.toSchema());
    if (this.rspInfo) items.push(octets(this.rspInfo));
    return seq(items);
  }
}

/** CertRepMessage ::= SEQUENCE { caPubs [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL, response SEQUENCE OF CertResponse } */
export class CertRepMessage {
  constructor(
    public response: CertResponse[],
    public caPubs?: Uint8Array[],
  ) {}
  static fromSchema(node: Node, what = 'CertRepMessage'): CertRepMessage {
    const c = new Cursor(sequence(node, what), what);
    const pubs = c.takeContext(1);
    const resp = c.take();
    c.end();
    return new CertRepMessage(
      sequenceOf(resp, `${what}.response`).map((n) => CertResponse.fromSchema(n, `${what}.response`)),
      pubs ? sequenceOf(explicit(pubs, 1, `${what}.caPubs`), `${what}.caPubs`, 1).map(derOf) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [];
    if (this.caPubs?.length) items.push(ctxExplicit(1, seq(this.caPubs.map((c) => rawNode(c)))));
    items.push(seq(this.response.map((r) => r.toSchema())));
    return seq(items);
  }
}

/** RevDetails ::= SEQUENCE { certDetails CertTemplate, crlEntryDetails Extensions OPTIONAL } */
export class RevDetails {
  constructor(
    public certDetails: CertTemplate,
    /** DER Extensions (reasonCode, invalidityDate, ...). */
    public crlEntryDetails?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'RevDetails'): RevDetails {
    const c = new Cursor(sequence(node, what), what);
    const details = CertTemplate.fromSchema(c.take(), `${what}.certDetails`);
    const ext = c.takeIf(() => true);
    c.end();
    if (ext) sequence(ext, `${what}.crlEntryDetails`);
    return new RevDetails(details, ext ? derOf(ext) : undefined);
  }
  toSchema(): asn1js.Sequence {
    return seq(this.crlEntryDetails ? [this.certDetails.toSchema(), rawNode(this.crlEntryDetails)] : [this.certDetails.toSchema()]);
  }
}

/** RevReqContent ::= SEQUENCE OF RevDetails */
export class RevReqContent {
  constructor(public details: RevDetails[]) {}
  static fromSchema(node: Node, what = 'RevReqContent'): RevReqContent {
    return new RevReqContent(sequenceOf(node, what, 1).map((n) => RevDetails.fromSchema(n, `${what}.RevDetails`)));
  }
  toSchema(): asn1js.Sequence {
    return seq(this.details.map((d) => d.toSchema()));
  }
}

/** RevRepContent ::= SEQUENCE { status SEQUENCE SIZE (1..MAX) OF PKIStatusInfo, revCerts [0] SEQUENCE OF CertId OPTIONAL, crls [1] SEQUENCE OF CertificateList OPTIONAL } */
export class RevRepContent {
  constructor(
    public status: PKIStatusInfo[],
    public revCerts?: CertId[],
    public crls?: Uint8Array[],
  ) {}
  static fromSchema(node: Node, what = 'RevRepContent'): RevRepContent {
    const c = new Cursor(sequence(node, what), what);
    const status = sequenceOf(c.take(), `${what}.status`, 1).map((n) => PKIStatusInfo.fromSchema(n, `${what}.status`));
    const rc = c.takeContext(0);
    const crls = c.takeContext(1);
    c.end();
    return new RevRepContent(
      status,
      rc
        ? sequenceOf(explicit(rc, 0, `${what}.revCerts`), `${what}.revCerts`, 1).map((n) => CertId.fromSchema(n, `${what}.revCerts`))
        : undefined,
      crls ? sequenceOf(explicit(crls, 1, `${what}.crls`), `${what}.crls`, 1).map(derOf) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [seq(this.status.map((s) => s.toSchema()))];
    if (this.revCerts?.length) items.push(ctxExplicit(0, seq(this.revCerts.map((r) => r.toSchema()))));
    if (this.crls?.length) items.push(ctxExplicit(1, seq(this.crls.map((c) => rawNode(c)))));
    return seq(items);
  }
}

/** CertStatus ::= SEQUENCE { certHash OCTET STRING, certReqId INTEGER, statusInfo PKIStatusInfo OPTIONAL, hashAlg [0] AlgorithmIdentifier OPTIONAL } */
export class CertStatus {
  constructor(
    public certHash: Uint8Array,
    public certReqId: number,
    public statusInfo?: PKIStatusInfo,
    public hashAlg?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'CertStatus'): CertStatus {
    const c = new Cursor(sequence(node, what), what);
    const hash = readOctets(c.take(), `${what}.certHash`);
    const idValue = readInteger(c.take(), `${what}.certReqId`);
    if (idValue < -1n || idValue > 2n ** 31n) bad(what, 'certReqId is out of range');
    const si = c.takeIf((n) => n instanceof asn1js.Sequence);
    const alg = c.takeContext(0);
    c.end();
    return new CertStatus(
      hash,
      Number(idValue),
      si ? PKIStatusInfo.fromSchema(si, `${what}.statusInfo`) : undefined,
      alg ? derOf(explicit(alg, 0, `${what}.hashAlg`)) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [octets(this.certHash), int(this.certReqId)];
    if (this.statusInfo) items.push(this.statusInfo.toSchema());
    if (this.hashAlg) items.push(ctxExplicit(0, rawNode(this.hashAlg)));
    return seq(items);
  }
}

/** CertConfirmContent ::= SEQUENCE OF CertStatus */
export class CertConfirmContent {
  constructor(public statuses: CertStatus[]) {}
  static fromSchema(node: Node, what = 'CertConfirmContent'): CertConfirmContent {
    return new CertConfirmContent(sequenceOf(node, what).map((n) => CertStatus.fromSchema(n, `${what}.CertStatus`)));
  }
  toSchema(): asn1js.Sequence {
    return seq(this.statuses.map((s) => s.toSchema()));
  }
}

/** PollReqContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER } */
export class PollReqContent {
  constructor(public certReqIds: number[]) {}
  static fromSchema(node: Node, what = 'PollReqContent'): PollReqContent {
    return new PollReqContent(
      sequenceOf(node, what, 1).map((n) => {
        const c = new Cursor(sequence(n, what), what);
        const id = readSmallInt(c.take(), `${what}.certReqId`);
        c.end();
        return id;
      }),
    );
  }
  toSchema(): asn1js.Sequence {
    return seq(this.certReqIds.map((id) => seq([int(id)])));
  }
}

/** PollRepContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER, checkAfter INTEGER, reason PKIFreeText OPTIONAL } */
export class PollRepContent {
  constructor(public entries: Array<{ certReqId: number; checkAfter: number; reason?: string[] }>) {}
  static fromSchema(node: Node, what = 'PollRepContent'): PollRepContent {
    return new PollRepContent(
      sequenceOf(node, what, 1).map((n) => {
        const c = new Cursor(sequence(n, what), what);
        const certReqId = readSmallInt(c.take(), `${what}.certReqId`);
        const checkAfter = readSmallInt(c.take(), `${what}.checkAfter`);
        const reason = c.takeIf(() => true);
        c.end();
        return reason ? { certReqId, checkAfter, reason: PKIFreeText.fromSchema(reason, `${what}.reason`) } : { certReqId, checkAfter };
      }),
    );
  }
  toSchema(): asn1js.Sequence {
    return seq(
      this.entries.map((e) =>
        seq(
          e.reason?.length ? [int(e.certReqId), int(e.checkAfter), PKIFreeText.toSchema(e.reason)] : [int(e.certReqId), int(e.checkAfter)],
        ),
      ),
    );
  }
}

/** ErrorMsgContent ::= SEQUENCE { pKIStatusInfo PKIStatusInfo, errorCode INTEGER OPTIONAL, errorDetails PKIFreeText OPTIONAL } */
export class ErrorMsgContent {
  constructor(
    public pKIStatusInfo: PKIStatusInfo,
    public errorCode?: number,
    public errorDetails?: string[],
  ) {}
  static fromSchema(node: Node, what = 'ErrorMsgContent'): ErrorMsgContent {
    const c = new Cursor(sequence(node, what), what);
    const si = PKIStatusInfo.fromSchema(c.take(), `${what}.pKIStatusInfo`);
    const code = c.takeIf((n) => n instanceof asn1js.Integer);
    const details = c.takeIf(() => true);
    c.end();
    return new ErrorMsgContent(
      si,
      code ? Number(readInteger(code, `${what}.errorCode`)) : undefined,
      details ? PKIFreeText.fromSchema(details, `${what}.errorDetails`) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [this.pKIStatusInfo.toSchema()];
    if (this.errorCode !== undefined) items.push(int(this.errorCode));
    if (this.errorDetails?.length) items.push(PKIFreeText.toSchema(this.errorDetails));
    return seq(items);
  }
}

/** GenMsgContent / GenRepContent ::= SEQUENCE OF InfoTypeAndValue */
const GenContent = {
  fromSchema(node: Node, what = 'GenMsgContent'): InfoTypeAndValue[] {
    return sequenceOf(node, what).map((n) => InfoTypeAndValue.fromSchema(n, `${what}.InfoTypeAndValue`));
  },
  toSchema(items: InfoTypeAndValue[]): asn1js.Sequence {
    return seq(items.map((i) => i.toSchema()));
  },
};

/** Body types by PKIBody tag number. */
export const BODY_TYPES = [
  'ir',
  'ip',
  'cr',
  'cp',
  'p10cr',
  'popdecc',
  'popdecr',
  'kur',
  'kup',
  'krr',
  'krp',
  'rr',
  'rp',
  'ccr',
  'ccp',
  'ckuann',
  'cann',
  'rann',
  'crlann',
  'pkiconf',
  'nested',
  'genm',
  'genp',
  'error',
  'certConf',
  'pollReq',
  'pollRep',
] as const;
export type BodyType = (typeof BODY_TYPES)[number];

export type PKIBodyContent =
  | { type: 'ir' | 'cr' | 'kur'; content: CertReqMessages }
  | { type: 'ip' | 'cp' | 'kup'; content: CertRepMessage }
  | { type: 'p10cr'; content: Uint8Array }
  | { type: 'rr'; content: RevReqContent }
  | { type: 'rp'; content: RevRepContent }
  | { type: 'pkiconf'; content: null }
  | { type: 'genm' | 'genp'; content: InfoTypeAndValue[] }
  | { type: 'error'; content: ErrorMsgContent }
  | { type: 'certConf'; content: CertConfirmContent }
  | { type: 'pollReq'; content: PollReqContent }
  | { type: 'pollRep'; content: PollRepContent }
  | {
      type: Exclude<
        BodyType,
        | 'ir'
        | 'cr'
        | 'kur'
        | 'ip'
        | 'cp'
        | 'kup'
        | 'p10cr'
        | 'rr'
        | 'rp'
        | 'pkiconf'
        | 'genm'
        | 'genp'
        | 'error'
        | 'certConf'
        | 'pollReq'
        | 'pollRep'
      >;
      content: Uint8Array;
    };

/** PKIBody ::= CHOICE { ir [0] CertReqMessages, ip [1] CertRepMessage, ... pollRep [26] PollRepContent } */
export const PKIBody = {
  fromSchema(node: Node, what = 'PKIBody'): PKIBodyContent {
    const tag = contextNumber(node);
    const type = tag === undefined ? undefined : BODY_TYPES[tag];
    if (tag === undefined || !type) return bad(what, 'is not one of the PKIBody choices [0]..[26]');
    const inner = explicit(node, tag, `${what}.${type}`);
    const w = `${what}.${type}`;
    switch (type) {
      case 'ir':
      case 'cr':
      case 'kur':
        return { type, content: CertReqMessages.fromSchema(inner, w) };
      case 'ip':
      case 'cp':
      case 'kup':
        return { type, content: CertRepMessage.fromSchema(inner, w) };
      case 'p10cr':
        sequence(inner, w);
        return { type, content: derOf(inner) };
      case 'rr':
        return { type, content: RevReqContent.fromSchema(inner, w) };
      case 'rp':
        return { type, content: RevRepContent.fromSchema(inner, w) };
      case 'pkiconf':
        if (!(inner instanceof asn1js.Null)) bad(w, 'must be NULL');
        return { type, content: null };
      case 'genm':
      case 'genp':
        return { type, content: GenContent.fromSchema(inner, w) };
      case 'error':
        return { type, content: ErrorMsgContent.fromSchema(inner, w) };
      case 'certConf':
        return { type, content: CertConfirmContent.fromSchema(inner, w) };
      case 'pollReq':
        return { type, content: PollReqContent.fromSchema(inner, w) };
      case 'pollRep':
        return { type, content: PollRepContent.fromSchema(inner, w) };
      default:
        return { type, content: derOf(inner) } as PKIBodyContent;
    }
  },
  toSchema(body: PKIBodyContent): asn1js.Constructed {
    const tag = BODY_TYPES.indexOf(body.type);
    let inner: Node;
    switch (body.type) {
      case 'pkiconf':
        inner = nullNode();
        break;
      case 'genm':
      case 'genp':
        inner = GenContent.toSchema(body.content);
        break;
      case 'p10cr':
        inner = rawNode(body.content);
        break;
      default:
        inner = body.content instanceof Uint8Array ? rawNode(body.content) : (body.content as { toSchema(): Node }).toSchema();
    }
    return ctxExplicit(tag, inner);
  },
};

/**
 * PKIMessage ::= SEQUENCE { header PKIHeader, body PKIBody, protection [0] PKIProtection OPTIONAL,
 *   extraCerts [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL }
 */
export class PKIMessage {
  constructor(
    public header: PKIHeader,
    public body: PKIBodyContent,
    /** The protection BIT STRING's bytes. */
    public protection?: Uint8Array,
    public extraCerts?: Uint8Array[],
    /** DER of header and body as received: ProtectedPart is built from these. */
    public raw?: { header: Uint8Array; body: Uint8Array },
  ) {}

  static fromBER(der: Uint8Array): PKIMessage {
    return PKIMessage.fromSchema(fromDer(der, 'the PKIMessage'));
  }

  static fromSchema(node: Node, what = 'PKIMessage'): PKIMessage {
    const c = new Cursor(sequence(node, what), what);
    const headerNode = c.take();
    const bodyNode = c.take();
    const prot = c.takeContext(0);
    const extra = c.takeContext(1);
    c.end();
    const header = PKIHeader.fromSchema(headerNode, `${what}.header`);
    const body = PKIBody.fromSchema(bodyNode, `${what}.body`);
    let protection: Uint8Array | undefined;
    if (prot) {
      const bits = readBitString(explicit(prot, 0, `${what}.protection`), `${what}.protection`);
      if (bits.unusedBits !== 0) bad(what, 'the protection BIT STRING has unused bits');
      protection = bits.bytes;
    }
    const extraCerts = extra
      ? sequenceOf(explicit(extra, 1, `${what}.extraCerts`), `${what}.extraCerts`, 1).map((n) => {
          sequence(n, `${what}.extraCerts`);
          return derOf(n);
        })
      : undefined;
    return new PKIMessage(header, body, protection, extraCerts, { header: derOf(headerNode), body: derOf(bodyNode) });
  }

  /** DER of ProtectedPart ::= SEQUENCE { header PKIHeader, body PKIBody } (received bytes when parsed). */
  protectedPart(): Uint8Array {
    const header = this.raw?.header ?? toDerBytes(this.header.toSchema());
    const body = this.raw?.body ?? toDerBytes(PKIBody.toSchema(this.body));
    // Concatenated as received: re-encoding through asn1js would normalize a tampered length
    // byte and let a modified message verify.
    const content = new Uint8Array(header.length + body.length);
    content.set(header, 0);
    content.set(body, header.length);
    return new Uint8Array([0x30, ...derLength(content.length), ...content]);
  }

  toSchema(): asn1js.Sequence {
    const items: Node[] = [
      this.raw ? rawNode(this.raw.header) : this.header.toSchema(),
      this.raw ? rawNode(this.raw.body) : PKIBody.toSchema(this.body),
    ];
    if (this.protection) items.push(ctxExplicit(0, bitString(this.protection)));
    if (this.extraCerts?.length) items.push(ctxExplicit(1, seq(this.extraCerts.map((c) => rawNode(c)))));
    return seq(items);
  }

  toBER(): Uint8Array {
    return toDerBytes(this.toSchema());
  }
}

/** A DER definite length. */
function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** PBMParameter ::= SEQUENCE { salt OCTET STRING, owf AlgorithmIdentifier, iterationCount INTEGER, mac AlgorithmIdentifier } */
export class PBMParameter {
  constructor(
    public salt: Uint8Array,
    public owf: string,
    public iterationCount: number,
    public mac: string,
  ) {}
  static fromSchema(node: Node, what = 'PBMParameter'): PBMParameter {
    const c = new Cursor(sequence(node, what), what);
    const salt = readOctets(c.take(), `${what}.salt`);
    const owf = algorithmOid(c.take(), `${what}.owf`);
    const iter = readSmallInt(c.take(), `${what}.iterationCount`);
    const mac = algorithmOid(c.take(), `${what}.mac`);
    c.end();
    return new PBMParameter(salt, owf, iter, mac);
  }
  toSchema(): asn1js.Sequence {
    return seq([octets(this.salt), seq([oid(this.owf)]), int(this.iterationCount), seq([oid(this.mac)])]);
  }
}

/** The OID of an AlgorithmIdentifier whose parameters are absent or NULL. */
function algorithmOid(node: Node, what: string): string {
  const c = new Cursor(sequence(node, what), what);
  const id = readOid(c.take(), `${what}.algorithm`);
  const params = c.takeIf(() => true);
  c.end();
  if (params && !(params instanceof asn1js.Null)) bad(what, `algorithm ${id} has unexpected parameters`);
  return id;
}

/**
 * PBKDF2-params (RFC 8018) inside PBMAC1-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier,
 * messageAuthScheme AlgorithmIdentifier }. Only PBKDF2 with a specified salt is read.
 */
export class Pbmac1Params {
  constructor(
    public salt: Uint8Array,
    public iterationCount: number,
    public keyLength: number | undefined,
    /** PRF OID (hmacWithSHA1 when absent). */
    public prf: string,
    /** The message authentication scheme OID (hmacWithSHA256, ...). */
    public messageAuthScheme: string,
  ) {}
  static fromSchema(node: Node, what = 'PBMAC1-params'): Pbmac1Params {
    const c = new Cursor(sequence(node, what), what);
    const kdf = new Cursor(sequence(c.take(), `${what}.keyDerivationFunc`), `${what}.keyDerivationFunc`);
    const kdfOid = readOid(kdf.take(), `${what}.keyDerivationFunc.algorithm`);
    if (kdfOid !== PBKDF2_OID) bad(what, `key derivation function ${kdfOid} is not PBKDF2`);
    const p = new Cursor(sequence(kdf.take(), 'PBKDF2-params'), 'PBKDF2-params');
    kdf.end();
    const salt = readOctets(p.take(), 'PBKDF2-params.salt (only "specified" is supported)');
    const iter = readSmallInt(p.take(), 'PBKDF2-params.iterationCount');
    const kl = p.takeIf((n) => n instanceof asn1js.Integer);
    const prf = p.takeIf(() => true);
    p.end();
    const mac = algorithmOid(c.take(), `${what}.messageAuthScheme`);
    c.end();
    return new Pbmac1Params(
      salt,
      iter,
      kl ? readSmallInt(kl, 'PBKDF2-params.keyLength', 1024) : undefined,
      prf ? algorithmOid(prf, 'PBKDF2-params.prf') : HMAC_SHA1_OID,
      mac,
    );
  }
  toSchema(): asn1js.Sequence {
    const pbkdf2: Node[] = [octets(this.salt), int(this.iterationCount)];
    if (this.keyLength !== undefined) pbkdf2.push(int(this.keyLength));
    pbkdf2.push(seq([oid(this.prf), nullNode()]));
    return seq([seq([oid(PBKDF2_OID), seq(pbkdf2)]), seq([oid(this.messageAuthScheme), nullNode()])]);
  }
}

const PBKDF2_OID = '1.2.840.113549.1.5.12';
const HMAC_SHA1_OID = '1.2.840.113549.2.7';

/** RootCaKeyUpdateContent ::= SEQUENCE { newWithNew CMPCertificate, newWithOld [0] CMPCertificate OPTIONAL, oldWithNew [1] CMPCertificate OPTIONAL } */
export class RootCaKeyUpdateContent {
  constructor(
    public newWithNew: Uint8Array,
    public newWithOld?: Uint8Array,
    public oldWithNew?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'RootCaKeyUpdateContent'): RootCaKeyUpdateContent {
    const c = new Cursor(sequence(node, what), what);
    const nn = derOf(c.take());
    const no = c.takeContext(0);
    const on = c.takeContext(1);
    c.end();
    return new RootCaKeyUpdateContent(nn, no ? derOf(explicit(no, 0, what)) : undefined, on ? derOf(explicit(on, 1, what)) : undefined);
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [rawNode(this.newWithNew)];
    if (this.newWithOld) items.push(ctxExplicit(0, rawNode(this.newWithOld)));
    if (this.oldWithNew) items.push(ctxExplicit(1, rawNode(this.oldWithNew)));
    return seq(items);
  }
}

/** CertReqTemplateContent ::= SEQUENCE { certTemplate CertTemplate, keySpec Controls OPTIONAL } */
export class CertReqTemplateContent {
  constructor(
    public certTemplate: CertTemplate,
    public keySpec?: AttributeTypeAndValue[],
  ) {}
  static fromSchema(node: Node, what = 'CertReqTemplateContent'): CertReqTemplateContent {
    const c = new Cursor(sequence(node, what), what);
    const t = CertTemplate.fromSchema(c.take(), `${what}.certTemplate`);
    const ks = c.takeIf(() => true);
    c.end();
    return new CertReqTemplateContent(
      t,
      ks ? sequenceOf(ks, `${what}.keySpec`, 1).map((n) => AttributeTypeAndValue.fromSchema(n, `${what}.keySpec`)) : undefined,
    );
  }
  toSchema(): asn1js.Sequence {
    return seq(
      this.keySpec?.length ? [this.certTemplate.toSchema(), seq(this.keySpec.map((k) => k.toSchema()))] : [this.certTemplate.toSchema()],
    );
  }
}

/**
 * CRLStatus ::= SEQUENCE { source CRLSource, thisUpdate Time OPTIONAL };
 * CRLSource ::= CHOICE { dpn [0] DistributionPointName, issuer [1] GeneralNames }
 */
export class CRLStatus {
  constructor(
    public source: { dpn?: Uint8Array; issuer?: Uint8Array },
    public thisUpdate?: Date,
  ) {}
  static fromSchema(node: Node, what = 'CRLStatus'): CRLStatus {
    const c = new Cursor(sequence(node, what), what);
    const src = c.take();
    const tu = c.takeIf(() => true);
    c.end();
    const source = isContext(src, 0)
      ? { dpn: derOf(explicit(src, 0, `${what}.source.dpn`)) }
      : isContext(src, 1)
        ? { issuer: derOf(explicit(src, 1, `${what}.source.issuer`)) }
        : bad(what, 'source is neither dpn [0] nor issuer [1]');
    return new CRLStatus(source, tu ? readTime(tu, `${what}.thisUpdate`) : undefined);
  }
  toSchema(): asn1js.Sequence {
    const src = this.source.dpn ? ctxExplicit(0, rawNode(this.source.dpn)) : ctxExplicit(1, rawNode(this.source.issuer!));
    return seq(this.thisUpdate ? [src, generalizedTime(this.thisUpdate)] : [src]);
  }
}
