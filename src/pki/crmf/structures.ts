/**
 * CRMF (RFC 4211) structures, one class per structure (PKI.js style): `fromSchema` reads
 * a parsed asn1js node, `toSchema` builds one. The module uses IMPLICIT tags, except
 * where the tagged type is a CHOICE (Name, Time, POPOPrivKey), which is tagged explicitly.
 */
import type * as asn1js from 'asn1js';
import {
  Cursor,
  bad,
  bitString,
  contextNumber,
  ctxExplicit,
  ctxImplicitConstructed,
  ctxImplicitPrimitive,
  derOf,
  explicit,
  implicitPrimitive,
  implicitSequence,
  int,
  intBytes,
  integerFromBytes,
  nodeOf,
  rawNode,
  oid,
  readBitString,
  readIntegerBytes,
  readOid,
  readSmallInt,
  readTime,
  generalizedTime,
  seq,
  sequence,
  sequenceItems,
  sequenceOf,
  universalSequenceDer,
  type Node,
} from '../cmp/asn1.ts';

/** AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY DEFINED BY type } */
export class AttributeTypeAndValue {
  constructor(
    public type: string,
    /** DER of the value. */
    public value: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'AttributeTypeAndValue'): AttributeTypeAndValue {
    const c = new Cursor(sequence(node, what), what);
    const type = readOid(c.take(), `${what}.type`);
    const value = derOf(c.take());
    c.end();
    return new AttributeTypeAndValue(type, value);
  }
  toSchema(): asn1js.Sequence {
    return seq([oid(this.type), rawNode(this.value)]);
  }
}

/** OptionalValidity ::= SEQUENCE { notBefore [0] Time OPTIONAL, notAfter [1] Time OPTIONAL } (implicitly tagged [4] in CertTemplate) */
export class OptionalValidity {
  constructor(
    public notBefore?: Date,
    public notAfter?: Date,
  ) {}
  static fromItems(items: Node[], what = 'OptionalValidity'): OptionalValidity {
    const c = new Cursor(items, what);
    const nb = c.takeContext(0);
    const na = c.takeContext(1);
    c.end();
    return new OptionalValidity(
      nb ? readTime(explicit(nb, 0, `${what}.notBefore`), `${what}.notBefore`) : undefined,
      na ? readTime(explicit(na, 1, `${what}.notAfter`), `${what}.notAfter`) : undefined,
    );
  }
  items(): Node[] {
    const out: Node[] = [];
    if (this.notBefore) out.push(ctxExplicit(0, generalizedTime(this.notBefore)));
    if (this.notAfter) out.push(ctxExplicit(1, generalizedTime(this.notAfter)));
    return out;
  }
}

/**
 * CertTemplate ::= SEQUENCE { version [0] Version OPTIONAL, serialNumber [1] INTEGER OPTIONAL,
 *   signingAlg [2] AlgorithmIdentifier OPTIONAL, issuer [3] Name OPTIONAL,
 *   validity [4] OptionalValidity OPTIONAL, subject [5] Name OPTIONAL,
 *   publicKey [6] SubjectPublicKeyInfo OPTIONAL, issuerUID [7] UniqueIdentifier OPTIONAL,
 *   subjectUID [8] UniqueIdentifier OPTIONAL, extensions [9] Extensions OPTIONAL }
 * DER values are kept for Name, AlgorithmIdentifier, SubjectPublicKeyInfo and Extensions.
 */
export class CertTemplate {
  version?: number;
  /** Content octets of the INTEGER. */
  serialNumber?: Uint8Array;
  signingAlg?: Uint8Array;
  issuer?: Uint8Array;
  validity?: OptionalValidity;
  subject?: Uint8Array;
  publicKey?: Uint8Array;
  issuerUID?: Uint8Array;
  subjectUID?: Uint8Array;
  extensions?: Uint8Array;

  constructor(fields: Partial<CertTemplate> = {}) {
    Object.assign(this, fields);
  }

  static fromSchema(node: Node, what = 'CertTemplate'): CertTemplate {
    return CertTemplate.fromItems(sequence(node, what), what);
  }

  /** Reads the fields (the elements of the SEQUENCE, or of an implicitly tagged one). */
  static fromItems(items: Node[], what = 'CertTemplate'): CertTemplate {
    const t = new CertTemplate();
    let last = -1;
    for (const item of items) {
      const n = contextNumber(item);
      if (n === undefined || n > 9) bad(what, 'has an element that is not one of its tagged fields [0]..[9]');
      if (n <= last) bad(what, `has field [${n}] out of order or twice`);
      last = n;
      const f = `${what}[${n}]`;
      switch (n) {
        case 0:
          t.version = Number(integerFromBytes(implicitPrimitive(item, 0, `${what}.version`)));
          break;
        case 1:
          t.serialNumber = implicitPrimitive(item, 1, `${what}.serialNumber`);
          break;
        case 2:
          t.signingAlg = universalSequenceDer(implicitSequence(item, 2, `${what}.signingAlg`));
          break;
        case 3:
          t.issuer = derOf(explicit(item, 3, `${what}.issuer`));
          break;
        case 4:
          t.validity = OptionalValidity.fromItems(implicitSequence(item, 4, `${what}.validity`), `${what}.validity`);
          break;
        case 5:
          t.subject = derOf(explicit(item, 5, `${what}.subject`));
          break;
        case 6:
          t.publicKey = universalSequenceDer(implicitSequence(item, 6, `${what}.publicKey`));
          break;
        case 7:
          t.issuerUID = implicitPrimitive(item, 7, f);
          break;
        case 8:
          t.subjectUID = implicitPrimitive(item, 8, f);
          break;
        case 9:
          t.extensions = universalSequenceDer(implicitSequence(item, 9, `${what}.extensions`));
          break;
      }
    }
    return t;
  }

  items(): Node[] {
    const out: Node[] = [];
    if (this.version !== undefined) out.push(ctxImplicitPrimitive(0, int(this.version).valueBlock.valueHexView));
    if (this.serialNumber) out.push(ctxImplicitPrimitive(1, this.serialNumber));
    if (this.signingAlg) out.push(ctxImplicitConstructed(2, sequenceItems(this.signingAlg, 'signingAlg')));
    if (this.issuer) out.push(ctxExplicit(3, rawNode(this.issuer)));
    if (this.validity) out.push(ctxImplicitConstructed(4, this.validity.items()));
    if (this.subject) out.push(ctxExplicit(5, rawNode(this.subject)));
    if (this.publicKey) out.push(ctxImplicitConstructed(6, sequenceItems(this.publicKey, 'publicKey')));
    if (this.issuerUID) out.push(ctxImplicitPrimitive(7, this.issuerUID));
    if (this.subjectUID) out.push(ctxImplicitPrimitive(8, this.subjectUID));
    if (this.extensions) out.push(ctxImplicitConstructed(9, sequenceItems(this.extensions, 'extensions')));
    return out;
  }

  toSchema(): asn1js.Sequence {
    return seq(this.items());
  }
}

/** CertId ::= SEQUENCE { issuer GeneralName, serialNumber INTEGER } */
export class CertId {
  constructor(
    /** DER of the GeneralName. */
    public issuer: Uint8Array,
    /** Content octets of the serial INTEGER. */
    public serialNumber: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'CertId'): CertId {
    const c = new Cursor(sequence(node, what), what);
    const issuer = derOf(c.take());
    const serial = readIntegerBytes(c.take(), `${what}.serialNumber`);
    c.end();
    return new CertId(issuer, serial);
  }
  toSchema(): asn1js.Sequence {
    return seq([rawNode(this.issuer), intBytes(this.serialNumber)]);
  }
}

/** CertRequest ::= SEQUENCE { certReqId INTEGER, certTemplate CertTemplate, controls Controls OPTIONAL } */
export class CertRequest {
  constructor(
    public certReqId: number,
    public certTemplate: CertTemplate,
    public controls?: AttributeTypeAndValue[],
  ) {}
  static fromSchema(node: Node, what = 'CertRequest'): CertRequest {
    const c = new Cursor(sequence(node, what), what);
    const id = readSmallInt(c.take(), `${what}.certReqId`);
    const template = CertTemplate.fromSchema(c.take(), `${what}.certTemplate`);
    const controlsNode = c.takeIf(() => true);
    c.end();
    const controls = controlsNode
      ? sequenceOf(controlsNode, `${what}.controls`, 1).map((n) => AttributeTypeAndValue.fromSchema(n, `${what}.controls`))
      : undefined;
    return new CertRequest(id, template, controls);
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [int(this.certReqId), this.certTemplate.toSchema()];
    if (this.controls) items.push(seq(this.controls.map((c) => c.toSchema())));
    return seq(items);
  }
}

/**
 * POPOSigningKey ::= SEQUENCE { poposkInput [0] POPOSigningKeyInput OPTIONAL,
 *   algorithmIdentifier AlgorithmIdentifier, signature BIT STRING }
 */
export class POPOSigningKey {
  constructor(
    public algorithmIdentifier: Uint8Array,
    public signature: Uint8Array,
    /** DER of the implicitly tagged [0] POPOSigningKeyInput, kept as received. */
    public poposkInput?: Uint8Array,
  ) {}
  static fromItems(items: Node[], what = 'POPOSigningKey'): POPOSigningKey {
    const c = new Cursor(items, what);
    const input = c.takeContext(0);
    const alg = derOf(c.take());
    sequence(nodeOf(alg), `${what}.algorithmIdentifier`);
    const sig = readBitString(c.take(), `${what}.signature`);
    c.end();
    if (sig.unusedBits !== 0) bad(what, 'the signature BIT STRING has unused bits');
    return new POPOSigningKey(alg, sig.bytes, input ? derOf(input) : undefined);
  }
  items(): Node[] {
    const out: Node[] = [];
    if (this.poposkInput) out.push(rawNode(this.poposkInput));
    out.push(rawNode(this.algorithmIdentifier), bitString(this.signature));
    return out;
  }
}

export type PopType = 'raVerified' | 'signature' | 'keyEncipherment' | 'keyAgreement';

/**
 * ProofOfPossession ::= CHOICE { raVerified [0] NULL, signature [1] POPOSigningKey,
 *   keyEncipherment [2] POPOPrivKey, keyAgreement [3] POPOPrivKey }
 */
export class ProofOfPossession {
  constructor(
    public type: PopType,
    public signature?: POPOSigningKey,
    /** DER of the POPOPrivKey for keyEncipherment / keyAgreement, kept as received. */
    public privKey?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'ProofOfPossession'): ProofOfPossession {
    switch (contextNumber(node)) {
      case 0:
        if (implicitPrimitive(node, 0, `${what}.raVerified`).length !== 0) bad(what, 'raVerified must be NULL');
        return new ProofOfPossession('raVerified');
      case 1:
        return new ProofOfPossession(
          'signature',
          POPOSigningKey.fromItems(implicitSequence(node, 1, `${what}.signature`), `${what}.signature`),
        );
      case 2:
        return new ProofOfPossession('keyEncipherment', undefined, derOf(explicit(node, 2, `${what}.keyEncipherment`)));
      case 3:
        return new ProofOfPossession('keyAgreement', undefined, derOf(explicit(node, 3, `${what}.keyAgreement`)));
      default:
        return bad(what, 'is not one of raVerified [0], signature [1], keyEncipherment [2], keyAgreement [3]');
    }
  }
  toSchema(): Node {
    switch (this.type) {
      case 'raVerified':
        return ctxImplicitPrimitive(0, new Uint8Array(0));
      case 'signature':
        return ctxImplicitConstructed(1, this.signature!.items());
      case 'keyEncipherment':
        return ctxExplicit(2, rawNode(this.privKey!));
      case 'keyAgreement':
        return ctxExplicit(3, rawNode(this.privKey!));
    }
  }
}

/** CertReqMsg ::= SEQUENCE { certReq CertRequest, popo ProofOfPossession OPTIONAL, regInfo SEQUENCE SIZE(1..MAX) OF AttributeTypeAndValue OPTIONAL } */
export class CertReqMsg {
  constructor(
    public certReq: CertRequest,
    public popo?: ProofOfPossession,
    public regInfo?: AttributeTypeAndValue[],
    /** DER of certReq as received: what a POP signature covers. */
    public certReqDer?: Uint8Array,
  ) {}
  static fromSchema(node: Node, what = 'CertReqMsg'): CertReqMsg {
    const c = new Cursor(sequence(node, what), what);
    const reqNode = c.take();
    const certReq = CertRequest.fromSchema(reqNode, `${what}.certReq`);
    const popNode = c.takeIf((n) => contextNumber(n) !== undefined);
    const regNode = c.takeIf(() => true);
    c.end();
    const popo = popNode ? ProofOfPossession.fromSchema(popNode, `${what}.popo`) : undefined;
    const regInfo = regNode
      ? sequenceOf(regNode, `${what}.regInfo`, 1).map((n) => AttributeTypeAndValue.fromSchema(n, `${what}.regInfo`))
      : undefined;
    return new CertReqMsg(certReq, popo, regInfo, derOf(reqNode));
  }
  toSchema(): asn1js.Sequence {
    const items: Node[] = [this.certReqDer ? rawNode(this.certReqDer) : this.certReq.toSchema()];
    if (this.popo) items.push(this.popo.toSchema());
    if (this.regInfo) items.push(seq(this.regInfo.map((r) => r.toSchema())));
    return seq(items);
  }
}

/** CertReqMessages ::= SEQUENCE SIZE (1..MAX) OF CertReqMsg */
export class CertReqMessages {
  constructor(public messages: CertReqMsg[]) {}
  static fromSchema(node: Node, what = 'CertReqMessages'): CertReqMessages {
    return new CertReqMessages(sequenceOf(node, what, 1).map((n) => CertReqMsg.fromSchema(n, `${what}.CertReqMsg`)));
  }
  toSchema(): asn1js.Sequence {
    return seq(this.messages.map((m) => m.toSchema()));
  }
}
