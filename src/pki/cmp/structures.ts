/**
 * CMP (RFC 9810) structures, one class per structure: `read` takes a DER element (asn1.ts),
 * `toDer` writes one. The CMP module uses EXPLICIT tags.
 * Certificates, names and algorithm identifiers are kept as DER bytes.
 */
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
  NULL,
  TAG,
  octets,
  oid,
  readBitString,
  readNull,
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
  utf8,
  type Node,
} from './asn1.ts';
import { tlv } from '../der.ts';

/** PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String */
const PKIFreeText = {
  read(node: Node, what = 'PKIFreeText'): string[] {
    return sequenceOf(node, what, 1).map((n) => readUtf8(n, what));
  },
  toDer(texts: string[]): Uint8Array {
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
  static read(node: Node, what = 'PKIStatusInfo'): PKIStatusInfo {
    const c = new Cursor(sequence(node, what), what);
    const status = readSmallInt(c.take(), `${what}.status`, 1000);
    const text = c.takeTag(TAG.SEQUENCE);
    const fail = c.takeTag(TAG.BIT_STRING);
    c.end();
    return new PKIStatusInfo(
      status,
      text ? PKIFreeText.read(text, `${what}.statusString`) : undefined,
      fail ? decodeFailureBits(readBitString(fail, `${what}.failInfo`), `${what}.failInfo`) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [int(this.status)];
    if (this.statusString?.length) items.push(PKIFreeText.toDer(this.statusString));
    if (this.failInfo) items.push(encodeFailureBits(this.failInfo));
    return seq(items);
  }
}

const FAILURE_NAMES = Object.keys(FAILURE_BITS) as FailureInfo[];

/** A DER PKIFailureInfo: trailing zero bits removed (X.690 11.2.2), only the bits RFC 9810 names. */
function decodeFailureBits(b: { bytes: Uint8Array; unusedBits: number }, what: string): FailureInfo[] {
  const last = b.bytes[b.bytes.length - 1];
  if (last !== undefined && !(last & (1 << b.unusedBits))) bad(what, 'is not DER (a named BIT STRING ends with its last set bit)');
  const out: FailureInfo[] = [];
  for (let bit = 0; bit < b.bytes.length * 8 - b.unusedBits; bit++) {
    if (!(b.bytes[bit >> 3]! & (0x80 >> (bit & 7)))) continue;
    out.push(FAILURE_NAMES[bit] ?? bad(what, `has bit ${bit} set, which RFC 9810 does not name`));
  }
  return out;
}

/** A named BIT STRING in DER: trailing zero bits removed (X.690 11.2.2). */
function encodeFailureBits(names: FailureInfo[]): Uint8Array {
  if (names.length === 0) return bitString(new Uint8Array(0));
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
  static read(node: Node, what = 'InfoTypeAndValue'): InfoTypeAndValue {
    const c = new Cursor(sequence(node, what), what);
    const type = readOid(c.take(), `${what}.infoType`);
    const value = c.takeIf(() => true);
    c.end();
    return new InfoTypeAndValue(type, value ? derOf(value) : undefined);
  }
  toDer(): Uint8Array {
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

  static read(node: Node, what = 'PKIHeader'): PKIHeader {
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
          h.freeText = PKIFreeText.read(inner, `${what}.freeText`);
          break;
        case 8:
          h.generalInfo = sequenceOf(inner, `${what}.generalInfo`, 1).map((i) => InfoTypeAndValue.read(i, `${what}.generalInfo`));
          break;
      }
    }
    c.end();
    return h;
  }

  toDer(): Uint8Array {
    const items: Uint8Array[] = [int(this.pvno), rawNode(this.sender), rawNode(this.recipient)];
    if (this.messageTime) items.push(ctxExplicit(0, generalizedTime(this.messageTime)));
    if (this.protectionAlg) items.push(ctxExplicit(1, rawNode(this.protectionAlg)));
    if (this.senderKID) items.push(ctxExplicit(2, octets(this.senderKID)));
    if (this.recipKID) items.push(ctxExplicit(3, octets(this.recipKID)));
    if (this.transactionID) items.push(ctxExplicit(4, octets(this.transactionID)));
    if (this.senderNonce) items.push(ctxExplicit(5, octets(this.senderNonce)));
    if (this.recipNonce) items.push(ctxExplicit(6, octets(this.recipNonce)));
    if (this.freeText?.length) items.push(ctxExplicit(7, PKIFreeText.toDer(this.freeText)));
    if (this.generalInfo?.length) items.push(ctxExplicit(8, seq(this.generalInfo.map((i) => i.toDer()))));
    return seq(items);
  }
}

/** GeneralName directoryName [4] with an empty RDNSequence: the "NULL-DN" of RFC 9810. */
export const NULL_DN: Uint8Array = ctxExplicit(4, seq([]));

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
  static read(node: Node, what = 'CertifiedKeyPair'): CertifiedKeyPair {
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
  toDer(): Uint8Array {
    const items: Uint8Array[] = [this.certificate ? ctxExplicit(0, rawNode(this.certificate)) : rawNode(this.certOrEncCert!)];
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
  static read(node: Node, what = 'CertResponse'): CertResponse {
    const c = new Cursor(sequence(node, what), what);
    // certReqId may be -1 (RFC 9810 5.3.4, p10cr) : read as a signed number.
    const idValue = readInteger(c.take(), `${what}.certReqId`);
    if (idValue < -1n || idValue > 2n ** 31n) bad(what, 'certReqId is out of range');
    const status = PKIStatusInfo.read(c.take(), `${what}.status`);
    const kp = c.takeTag(TAG.SEQUENCE);
    const info = c.takeTag(TAG.OCTET_STRING);
    c.end();
    return new CertResponse(
      Number(idValue),
      status,
      kp ? CertifiedKeyPair.read(kp, `${what}.certifiedKeyPair`) : undefined,
      info ? readOctets(info, `${what}.rspInfo`) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [int(this.certReqId), this.status.toDer()];
    if (this.certifiedKeyPair) items.push(this.certifiedKeyPair.toDer());
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
  static read(node: Node, what = 'CertRepMessage'): CertRepMessage {
    const c = new Cursor(sequence(node, what), what);
    const pubs = c.takeContext(1);
    const resp = c.take();
    c.end();
    return new CertRepMessage(
      sequenceOf(resp, `${what}.response`).map((n) => CertResponse.read(n, `${what}.response`)),
      pubs ? sequenceOf(explicit(pubs, 1, `${what}.caPubs`), `${what}.caPubs`, 1).map(derOf) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [];
    if (this.caPubs?.length) items.push(ctxExplicit(1, seq(this.caPubs.map((c) => rawNode(c)))));
    items.push(seq(this.response.map((r) => r.toDer())));
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
  static read(node: Node, what = 'RevDetails'): RevDetails {
    const c = new Cursor(sequence(node, what), what);
    const details = CertTemplate.read(c.take(), `${what}.certDetails`);
    const ext = c.takeIf(() => true);
    c.end();
    if (ext) sequence(ext, `${what}.crlEntryDetails`);
    return new RevDetails(details, ext ? derOf(ext) : undefined);
  }
  toDer(): Uint8Array {
    return seq(this.crlEntryDetails ? [this.certDetails.toDer(), rawNode(this.crlEntryDetails)] : [this.certDetails.toDer()]);
  }
}

/** RevReqContent ::= SEQUENCE OF RevDetails */
export class RevReqContent {
  constructor(public details: RevDetails[]) {}
  static read(node: Node, what = 'RevReqContent'): RevReqContent {
    return new RevReqContent(sequenceOf(node, what, 1).map((n) => RevDetails.read(n, `${what}.RevDetails`)));
  }
  toDer(): Uint8Array {
    return seq(this.details.map((d) => d.toDer()));
  }
}

/** RevRepContent ::= SEQUENCE { status SEQUENCE SIZE (1..MAX) OF PKIStatusInfo, revCerts [0] SEQUENCE OF CertId OPTIONAL, crls [1] SEQUENCE OF CertificateList OPTIONAL } */
export class RevRepContent {
  constructor(
    public status: PKIStatusInfo[],
    public revCerts?: CertId[],
    public crls?: Uint8Array[],
  ) {}
  static read(node: Node, what = 'RevRepContent'): RevRepContent {
    const c = new Cursor(sequence(node, what), what);
    const status = sequenceOf(c.take(), `${what}.status`, 1).map((n) => PKIStatusInfo.read(n, `${what}.status`));
    const rc = c.takeContext(0);
    const crls = c.takeContext(1);
    c.end();
    return new RevRepContent(
      status,
      rc
        ? sequenceOf(explicit(rc, 0, `${what}.revCerts`), `${what}.revCerts`, 1).map((n) => CertId.read(n, `${what}.revCerts`))
        : undefined,
      crls ? sequenceOf(explicit(crls, 1, `${what}.crls`), `${what}.crls`, 1).map(derOf) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [seq(this.status.map((s) => s.toDer()))];
    if (this.revCerts?.length) items.push(ctxExplicit(0, seq(this.revCerts.map((r) => r.toDer()))));
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
  static read(node: Node, what = 'CertStatus'): CertStatus {
    const c = new Cursor(sequence(node, what), what);
    const hash = readOctets(c.take(), `${what}.certHash`);
    const idValue = readInteger(c.take(), `${what}.certReqId`);
    if (idValue < -1n || idValue > 2n ** 31n) bad(what, 'certReqId is out of range');
    const si = c.takeTag(TAG.SEQUENCE);
    const alg = c.takeContext(0);
    c.end();
    return new CertStatus(
      hash,
      Number(idValue),
      si ? PKIStatusInfo.read(si, `${what}.statusInfo`) : undefined,
      alg ? derOf(explicit(alg, 0, `${what}.hashAlg`)) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [octets(this.certHash), int(this.certReqId)];
    if (this.statusInfo) items.push(this.statusInfo.toDer());
    if (this.hashAlg) items.push(ctxExplicit(0, rawNode(this.hashAlg)));
    return seq(items);
  }
}

/** CertConfirmContent ::= SEQUENCE OF CertStatus */
export class CertConfirmContent {
  constructor(public statuses: CertStatus[]) {}
  static read(node: Node, what = 'CertConfirmContent'): CertConfirmContent {
    return new CertConfirmContent(sequenceOf(node, what).map((n) => CertStatus.read(n, `${what}.CertStatus`)));
  }
  toDer(): Uint8Array {
    return seq(this.statuses.map((s) => s.toDer()));
  }
}

/** PollReqContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER } */
export class PollReqContent {
  constructor(public certReqIds: number[]) {}
  static read(node: Node, what = 'PollReqContent'): PollReqContent {
    return new PollReqContent(
      sequenceOf(node, what, 1).map((n) => {
        const c = new Cursor(sequence(n, what), what);
        const id = readSmallInt(c.take(), `${what}.certReqId`);
        c.end();
        return id;
      }),
    );
  }
  toDer(): Uint8Array {
    return seq(this.certReqIds.map((id) => seq([int(id)])));
  }
}

/** PollRepContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER, checkAfter INTEGER, reason PKIFreeText OPTIONAL } */
export class PollRepContent {
  constructor(public entries: Array<{ certReqId: number; checkAfter: number; reason?: string[] }>) {}
  static read(node: Node, what = 'PollRepContent'): PollRepContent {
    return new PollRepContent(
      sequenceOf(node, what, 1).map((n) => {
        const c = new Cursor(sequence(n, what), what);
        const certReqId = readSmallInt(c.take(), `${what}.certReqId`);
        const checkAfter = readSmallInt(c.take(), `${what}.checkAfter`);
        const reason = c.takeIf(() => true);
        c.end();
        return reason ? { certReqId, checkAfter, reason: PKIFreeText.read(reason, `${what}.reason`) } : { certReqId, checkAfter };
      }),
    );
  }
  toDer(): Uint8Array {
    return seq(
      this.entries.map((e) =>
        seq(e.reason?.length ? [int(e.certReqId), int(e.checkAfter), PKIFreeText.toDer(e.reason)] : [int(e.certReqId), int(e.checkAfter)]),
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
  static read(node: Node, what = 'ErrorMsgContent'): ErrorMsgContent {
    const c = new Cursor(sequence(node, what), what);
    const si = PKIStatusInfo.read(c.take(), `${what}.pKIStatusInfo`);
    const code = c.takeTag(TAG.INTEGER);
    const details = c.takeIf(() => true);
    c.end();
    return new ErrorMsgContent(
      si,
      code ? Number(readInteger(code, `${what}.errorCode`)) : undefined,
      details ? PKIFreeText.read(details, `${what}.errorDetails`) : undefined,
    );
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [this.pKIStatusInfo.toDer()];
    if (this.errorCode !== undefined) items.push(int(this.errorCode));
    if (this.errorDetails?.length) items.push(PKIFreeText.toDer(this.errorDetails));
    return seq(items);
  }
}

/** GenMsgContent / GenRepContent ::= SEQUENCE OF InfoTypeAndValue */
const GenContent = {
  read(node: Node, what = 'GenMsgContent'): InfoTypeAndValue[] {
    return sequenceOf(node, what).map((n) => InfoTypeAndValue.read(n, `${what}.InfoTypeAndValue`));
  },
  toDer(items: InfoTypeAndValue[]): Uint8Array {
    return seq(items.map((i) => i.toDer()));
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
  read(node: Node, what = 'PKIBody'): PKIBodyContent {
    const tag = contextNumber(node);
    const type = tag === undefined ? undefined : BODY_TYPES[tag];
    if (tag === undefined || !type) return bad(what, 'is not one of the PKIBody choices [0]..[26]');
    const inner = explicit(node, tag, `${what}.${type}`);
    const w = `${what}.${type}`;
    switch (type) {
      case 'ir':
      case 'cr':
      case 'kur':
        return { type, content: CertReqMessages.read(inner, w) };
      case 'ip':
      case 'cp':
      case 'kup':
        return { type, content: CertRepMessage.read(inner, w) };
      case 'p10cr':
        sequence(inner, w);
        return { type, content: derOf(inner) };
      case 'rr':
        return { type, content: RevReqContent.read(inner, w) };
      case 'rp':
        return { type, content: RevRepContent.read(inner, w) };
      case 'pkiconf':
        readNull(inner, w);
        return { type, content: null };
      case 'genm':
      case 'genp':
        return { type, content: GenContent.read(inner, w) };
      case 'error':
        return { type, content: ErrorMsgContent.read(inner, w) };
      case 'certConf':
        return { type, content: CertConfirmContent.read(inner, w) };
      case 'pollReq':
        return { type, content: PollReqContent.read(inner, w) };
      case 'pollRep':
        return { type, content: PollRepContent.read(inner, w) };
      default:
        return { type, content: derOf(inner) } as PKIBodyContent;
    }
  },
  toDer(body: PKIBodyContent): Uint8Array {
    const tag = BODY_TYPES.indexOf(body.type);
    let inner: Uint8Array;
    switch (body.type) {
      case 'pkiconf':
        inner = NULL;
        break;
      case 'genm':
      case 'genp':
        inner = GenContent.toDer(body.content);
        break;
      case 'p10cr':
        inner = rawNode(body.content);
        break;
      default:
        inner = body.content instanceof Uint8Array ? rawNode(body.content) : (body.content as { toDer(): Uint8Array }).toDer();
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

  /** Reads a DER PKIMessage. */
  static fromDer(der: Uint8Array): PKIMessage {
    return PKIMessage.read(fromDer(der, 'the PKIMessage'));
  }

  static read(node: Node, what = 'PKIMessage'): PKIMessage {
    const c = new Cursor(sequence(node, what), what);
    const headerNode = c.take();
    const bodyNode = c.take();
    const prot = c.takeContext(0);
    const extra = c.takeContext(1);
    c.end();
    const header = PKIHeader.read(headerNode, `${what}.header`);
    const body = PKIBody.read(bodyNode, `${what}.body`);
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
    const header = this.raw?.header ?? this.header.toDer();
    const body = this.raw?.body ?? PKIBody.toDer(this.body);
    // Concatenated as received: re-encoding would normalize a tampered length byte and let a
    // modified message verify.
    return tlv(TAG.SEQUENCE, header, body);
  }

  toDer(): Uint8Array {
    const items: Uint8Array[] = [
      this.raw ? rawNode(this.raw.header) : this.header.toDer(),
      this.raw ? rawNode(this.raw.body) : PKIBody.toDer(this.body),
    ];
    if (this.protection) items.push(ctxExplicit(0, bitString(this.protection)));
    if (this.extraCerts?.length) items.push(ctxExplicit(1, seq(this.extraCerts.map((c) => rawNode(c)))));
    return seq(items);
  }
}

/** PBMParameter ::= SEQUENCE { salt OCTET STRING, owf AlgorithmIdentifier, iterationCount INTEGER, mac AlgorithmIdentifier } */
export class PBMParameter {
  constructor(
    public salt: Uint8Array,
    public owf: string,
    public iterationCount: number,
    public mac: string,
  ) {}
  static read(node: Node, what = 'PBMParameter'): PBMParameter {
    const c = new Cursor(sequence(node, what), what);
    const salt = readOctets(c.take(), `${what}.salt`);
    const owf = algorithmOid(c.take(), `${what}.owf`);
    const iter = readSmallInt(c.take(), `${what}.iterationCount`);
    const mac = algorithmOid(c.take(), `${what}.mac`);
    c.end();
    return new PBMParameter(salt, owf, iter, mac);
  }
  toDer(): Uint8Array {
    return seq([octets(this.salt), seq([oid(this.owf)]), int(this.iterationCount), seq([oid(this.mac)])]);
  }
}

/** The OID of an AlgorithmIdentifier whose parameters are absent or NULL. */
function algorithmOid(node: Node, what: string): string {
  const c = new Cursor(sequence(node, what), what);
  const id = readOid(c.take(), `${what}.algorithm`);
  const params = c.takeIf(() => true);
  c.end();
  if (params && (params.tag !== TAG.NULL || params.content.length > 0)) bad(what, `algorithm ${id} has unexpected parameters`);
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
  static read(node: Node, what = 'PBMAC1-params'): Pbmac1Params {
    const c = new Cursor(sequence(node, what), what);
    const kdf = new Cursor(sequence(c.take(), `${what}.keyDerivationFunc`), `${what}.keyDerivationFunc`);
    const kdfOid = readOid(kdf.take(), `${what}.keyDerivationFunc.algorithm`);
    if (kdfOid !== PBKDF2_OID) bad(what, `key derivation function ${kdfOid} is not PBKDF2`);
    const p = new Cursor(sequence(kdf.take(), 'PBKDF2-params'), 'PBKDF2-params');
    kdf.end();
    const salt = readOctets(p.take(), 'PBKDF2-params.salt (only "specified" is supported)');
    const iter = readSmallInt(p.take(), 'PBKDF2-params.iterationCount');
    const kl = p.takeTag(TAG.INTEGER);
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
  toDer(): Uint8Array {
    const pbkdf2: Uint8Array[] = [octets(this.salt), int(this.iterationCount)];
    if (this.keyLength !== undefined) pbkdf2.push(int(this.keyLength));
    pbkdf2.push(seq([oid(this.prf), NULL]));
    return seq([seq([oid(PBKDF2_OID), seq(pbkdf2)]), seq([oid(this.messageAuthScheme), NULL])]);
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
  static read(node: Node, what = 'RootCaKeyUpdateContent'): RootCaKeyUpdateContent {
    const c = new Cursor(sequence(node, what), what);
    const nn = derOf(c.take());
    const no = c.takeContext(0);
    const on = c.takeContext(1);
    c.end();
    return new RootCaKeyUpdateContent(nn, no ? derOf(explicit(no, 0, what)) : undefined, on ? derOf(explicit(on, 1, what)) : undefined);
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [rawNode(this.newWithNew)];
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
  static read(node: Node, what = 'CertReqTemplateContent'): CertReqTemplateContent {
    const c = new Cursor(sequence(node, what), what);
    const t = CertTemplate.read(c.take(), `${what}.certTemplate`);
    const ks = c.takeIf(() => true);
    c.end();
    return new CertReqTemplateContent(
      t,
      ks ? sequenceOf(ks, `${what}.keySpec`, 1).map((n) => AttributeTypeAndValue.read(n, `${what}.keySpec`)) : undefined,
    );
  }
  toDer(): Uint8Array {
    return seq(this.keySpec?.length ? [this.certTemplate.toDer(), seq(this.keySpec.map((k) => k.toDer()))] : [this.certTemplate.toDer()]);
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
  static read(node: Node, what = 'CRLStatus'): CRLStatus {
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
  toDer(): Uint8Array {
    const src = this.source.dpn ? ctxExplicit(0, rawNode(this.source.dpn)) : ctxExplicit(1, rawNode(this.source.issuer!));
    return seq(this.thisUpdate ? [src, generalizedTime(this.thisUpdate)] : [src]);
  }
}
