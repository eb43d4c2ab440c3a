/**
 * CRMF (RFC 4211) structures, one class per structure: `read` takes a DER element (asn1.ts),
 * `toDer` writes one. The module uses IMPLICIT tags, except where the tagged type is a
 * CHOICE (Name, Time, POPOPrivKey), which is tagged explicitly.
 */
import { integerFromSigned, signedFromInteger } from '../integer.ts';
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
  implicitAsSequence,
  integerContent,
  implicitFromSequence,
  implicitPrimitive,
  implicitSequence,
  int,
  intBytes,
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
  sequenceOf,
  type Node,
} from '../cmp/asn1.ts';

/** AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY DEFINED BY type } */
export class AttributeTypeAndValue {
  constructor(
    public type: string,
    /** DER of the value. */
    public value: Uint8Array,
  ) {}
  static read(node: Node, what = 'AttributeTypeAndValue'): AttributeTypeAndValue {
    const c = new Cursor(sequence(node, what), what);
    const type = readOid(c.take(), `${what}.type`);
    const value = derOf(c.take());
    c.end();
    return new AttributeTypeAndValue(type, value);
  }
  toDer(): Uint8Array {
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
  items(): Uint8Array[] {
    const out: Uint8Array[] = [];
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

  static read(node: Node, what = 'CertTemplate'): CertTemplate {
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
          t.version = Number(signedFromInteger(integerContent(implicitPrimitive(item, 0, `${what}.version`), `${what}.version`)));
          break;
        case 1:
          t.serialNumber = implicitPrimitive(item, 1, `${what}.serialNumber`);
          break;
        case 2:
          t.signingAlg = implicitAsSequence(item, 2, `${what}.signingAlg`);
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
          t.publicKey = implicitAsSequence(item, 6, `${what}.publicKey`);
          break;
        case 7:
          t.issuerUID = implicitPrimitive(item, 7, f);
          break;
        case 8:
          t.subjectUID = implicitPrimitive(item, 8, f);
          break;
        case 9:
          t.extensions = implicitAsSequence(item, 9, `${what}.extensions`);
          break;
      }
    }
    return t;
  }

  items(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.version !== undefined) out.push(ctxImplicitPrimitive(0, integerFromSigned(BigInt(this.version))));
    if (this.serialNumber) out.push(ctxImplicitPrimitive(1, this.serialNumber));
    if (this.signingAlg) out.push(implicitFromSequence(2, this.signingAlg, 'signingAlg'));
    if (this.issuer) out.push(ctxExplicit(3, rawNode(this.issuer)));
    if (this.validity) out.push(ctxImplicitConstructed(4, this.validity.items()));
    if (this.subject) out.push(ctxExplicit(5, rawNode(this.subject)));
    if (this.publicKey) out.push(implicitFromSequence(6, this.publicKey, 'publicKey'));
    if (this.issuerUID) out.push(ctxImplicitPrimitive(7, this.issuerUID));
    if (this.subjectUID) out.push(ctxImplicitPrimitive(8, this.subjectUID));
    if (this.extensions) out.push(implicitFromSequence(9, this.extensions, 'extensions'));
    return out;
  }

  toDer(): Uint8Array {
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
  static read(node: Node, what = 'CertId'): CertId {
    const c = new Cursor(sequence(node, what), what);
    const issuer = derOf(c.take());
    const serial = readIntegerBytes(c.take(), `${what}.serialNumber`);
    c.end();
    return new CertId(issuer, serial);
  }
  toDer(): Uint8Array {
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
  static read(node: Node, what = 'CertRequest'): CertRequest {
    const c = new Cursor(sequence(node, what), what);
    const id = readSmallInt(c.take(), `${what}.certReqId`);
    const template = CertTemplate.read(c.take(), `${what}.certTemplate`);
    const controlsNode = c.takeIf(() => true);
    c.end();
    const controls = controlsNode
      ? sequenceOf(controlsNode, `${what}.controls`, 1).map((n) => AttributeTypeAndValue.read(n, `${what}.controls`))
      : undefined;
    return new CertRequest(id, template, controls);
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [int(this.certReqId), this.certTemplate.toDer()];
    if (this.controls) items.push(seq(this.controls.map((c) => c.toDer())));
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
    const algNode = c.take();
    sequence(algNode, `${what}.algorithmIdentifier`);
    const alg = derOf(algNode);
    const sig = readBitString(c.take(), `${what}.signature`);
    c.end();
    if (sig.unusedBits !== 0) bad(what, 'the signature BIT STRING has unused bits');
    return new POPOSigningKey(alg, sig.bytes, input ? derOf(input) : undefined);
  }
  items(): Uint8Array[] {
    const out: Uint8Array[] = [];
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
  static read(node: Node, what = 'ProofOfPossession'): ProofOfPossession {
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
  toDer(): Uint8Array {
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
  static read(node: Node, what = 'CertReqMsg'): CertReqMsg {
    const c = new Cursor(sequence(node, what), what);
    const reqNode = c.take();
    const certReq = CertRequest.read(reqNode, `${what}.certReq`);
    const popNode = c.takeIf((n) => contextNumber(n) !== undefined);
    const regNode = c.takeIf(() => true);
    c.end();
    const popo = popNode ? ProofOfPossession.read(popNode, `${what}.popo`) : undefined;
    const regInfo = regNode
      ? sequenceOf(regNode, `${what}.regInfo`, 1).map((n) => AttributeTypeAndValue.read(n, `${what}.regInfo`))
      : undefined;
    return new CertReqMsg(certReq, popo, regInfo, derOf(reqNode));
  }
  toDer(): Uint8Array {
    const items: Uint8Array[] = [this.certReqDer ? rawNode(this.certReqDer) : this.certReq.toDer()];
    if (this.popo) items.push(this.popo.toDer());
    if (this.regInfo) items.push(seq(this.regInfo.map((r) => r.toDer())));
    return seq(items);
  }
}

/** CertReqMessages ::= SEQUENCE SIZE (1..MAX) OF CertReqMsg */
export class CertReqMessages {
  constructor(public messages: CertReqMsg[]) {}
  static read(node: Node, what = 'CertReqMessages'): CertReqMessages {
    return new CertReqMessages(sequenceOf(node, what, 1).map((n) => CertReqMsg.read(n, `${what}.CertReqMsg`)));
  }
  toDer(): Uint8Array {
    return seq(this.messages.map((m) => m.toDer()));
  }
}
