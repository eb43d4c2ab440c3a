/**
 * PKCS#10 certification requests (RFC 2986): parsing, self-signature verification, and
 * extraction of what the policy needs. Every failure is CaError('badCSR') with a message
 * that says what is wrong; no pkijs/asn1js exception escapes.
 */
import { createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.ts';
import type { SignAlg } from '../keys/types.ts';
import { readSignatureAlgorithm, signAlgInfo, signatureAlgorithmIdentifier, verifySignature, type HashName } from './algorithms.ts';
import { derChildren, derElementExact, derOid, encodeDer, parseDer, type DerElement } from './der.ts';
import { readExtensionList } from './extensions.ts';
import { derStringText, encodeName, parseDn, readName, type RdnAttr } from './names.ts';
import { OID } from './oids.ts';
import { toDer } from './pem.ts';
import { describeKeyKind, describePublicKey, type PublicKeyKind } from './publickey.ts';
import { decodeGeneralNames, emptySans, encodeGeneralNames, sanCount, type SanSet } from './san.ts';

export interface CsrExtension {
  oid: string;
  critical: boolean;
  /** DER of the extension value (the contents of extnValue). */
  valueDer: Uint8Array;
}

export interface ParsedCsr {
  der: Uint8Array;
  subject: RdnAttr[];
  /** DER SubjectPublicKeyInfo */
  spki: Uint8Array;
  key: PublicKeyKind;
  sans: SanSet;
  /** Extensions requested through the PKCS#9 extensionRequest attribute. */
  extensions: CsrExtension[];
  challengePassword?: string;
  /**
   * Requested SANs of kinds a SanSet cannot hold (otherName, directoryName, ...), described
   * for messages. The policy rejects requests that have any.
   */
  unsupportedSans?: string[];
}

const CSR_PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

function badCsr(why: string, rule = 'csr.syntax'): never {
  throw new CaError('badCSR', `the certification request ${why}`, { rule });
}

/**
 * Parses and verifies a certification request given as PEM ("CERTIFICATE REQUEST" or
 * "NEW CERTIFICATE REQUEST"), DER, or base64/base64url text.
 *
 * Read on its bytes (der.ts), not through asn1js and pkijs' schema, which cost more than
 * the rest of an issuance's checks together. The request must be DER, as RFC 2986, RFC 8555
 * and RFC 7030 say it is: definite, minimal lengths throughout (BER is refused with the
 * reason). Inside extension values, only what certflow reads is read.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = toDer(input, CSR_PEM_LABELS, 'badCSR');
  const what = 'the certification request';
  if (der.length === 0) badCsr('is empty');
  const csr = derElementExact(der, what, 'badCSR', 0x30);
  const [info, sigAlg, sigValue, ...extra] = derChildren(csr, what, 'badCSR');
  const fields = info?.tag === 0x30 ? derChildren(info, what, 'badCSR') : [];
  const [version, subject, spki, attributes, ...more] = fields;
  const shaped =
    sigAlg?.tag === 0x30 &&
    sigValue?.tag === 0x03 &&
    !extra.length &&
    version?.tag === 0x02 &&
    subject?.tag === 0x30 &&
    spki?.tag === 0x30 &&
    (attributes === undefined || attributes.tag === 0xa0) &&
    !more.length;
  if (!shaped) {
    // A common mistake is sending a certificate; say so instead of "not a PKCS#10".
    const isCertificate = sigAlg?.tag === 0x30 && sigValue?.tag === 0x03 && (fields[0]?.tag === 0xa0 || fields.length >= 6);
    badCsr(isCertificate ? 'is an X.509 certificate, not a PKCS#10 request' : 'is not a PKCS#10 certification request');
  }
  if (version!.content.length !== 1 || version!.content[0] !== 0) {
    const v = version!.content.length === 1 ? String((version!.content[0]! << 24) >> 24) : 'other than 0';
    badCsr(`has version ${v}; PKCS#10 defines only version 0 (v1)`);
  }
  // The algorithm first: "unsupported" is a more useful answer than "does not verify".
  const alg = readSignatureAlgorithm(sigAlg!.bytes, 'badCSR');
  const key = describePublicKey(spki!.bytes, 'badCSR');
  if (alg.keyFamily !== key.type) {
    badCsr(`is signed with ${alg.name}, which cannot be made with its ${describeKeyKind(key)} public key`, 'csr.signature');
  }
  if (sigValue!.content.length === 0 || sigValue!.content[0] !== 0) badCsr('has a signature BIT STRING with unused bits', 'csr.signature');
  if (!verifySignature(spki!.bytes, alg, info!.bytes, sigValue!.content.subarray(1))) {
    badCsr(`signature (${alg.name}) does not verify: the request was altered or not signed by the key it contains`, 'csr.signature');
  }
  const attrs = readAttributes(attributes ? derChildren(attributes, what, 'badCSR') : []);
  const parsed: ParsedCsr = {
    der,
    subject: readName(subject!, `${what}'s subject`, 'badCSR'),
    spki: spki!.bytes.slice(),
    key,
    sans: attrs.sans,
    extensions: attrs.extensions,
  };
  if (attrs.challengePassword !== undefined) parsed.challengePassword = attrs.challengePassword;
  if (attrs.unsupportedSans.length) parsed.unsupportedSans = attrs.unsupportedSans;
  return parsed;
}

export interface RequestedExtensions {
  extensions: CsrExtension[];
  sans: SanSet;
  /** Requested SANs of kinds a SanSet cannot hold, described (ParsedCsr.unsupportedSans). */
  unsupportedSans: string[];
}

interface CsrAttributes extends RequestedExtensions {
  challengePassword?: string;
}

/** The request's attributes (each SEQUENCE { type, SET OF value }): extensionRequest and challengePassword. */
function readAttributes(attributes: readonly DerElement[]): CsrAttributes {
  const what = 'the certification request';
  let out: CsrAttributes = { extensions: [], sans: emptySans(), unsupportedSans: [] };
  const seen = new Set<string>();
  for (const attr of attributes) {
    const [typeEl, valueSet, ...extra] = attr.tag === 0x30 ? derChildren(attr, what, 'badCSR') : [];
    if (valueSet?.tag !== 0x31 || extra.length) badCsr('has an attribute that is not a type and a SET of values');
    const type = derOid(typeEl, `${what}'s attribute type`, 'badCSR');
    if (seen.has(type)) badCsr(`has the attribute ${type} twice`);
    seen.add(type);
    const values = derChildren(valueSet!, what, 'badCSR');
    if (type === OID.extensionRequest) {
      if (values.length !== 1) badCsr(`has an extensionRequest attribute with ${values.length} values, expected 1`);
      out = { ...out, ...readRequestedExtensions(values[0]!, badCsr) };
    } else if (type === OID.challengePassword) {
      const text = values.length === 1 ? derStringText(values[0]!, `${what}'s challengePassword`, 'badCSR') : undefined;
      if (text === undefined) badCsr('has a challengePassword attribute that is not a single string');
      out.challengePassword = text;
    }
    // Other attributes (unstructuredName, ...) carry nothing we use.
  }
  return out;
}

/**
 * Extensions a request asks for (a CSR's extensionRequest, a CRMF template's extensions):
 * SEQUENCE OF Extension, each OID once, the requested SANs decoded. `bad` refuses, given
 * what is wrong ("requests the extension … twice").
 */
export function readRequestedExtensions(exts: DerElement, bad: (why: string) => never): RequestedExtensions {
  const out: RequestedExtensions = { extensions: [], sans: emptySans(), unsupportedSans: [] };
  // openssl writes an empty SEQUENCE when no extensions are requested.
  for (const { oid, critical, value } of readExtensionList(exts, 'requested extension', 'badCSR', bad)) {
    const valueDer = value.slice();
    out.extensions.push({ oid, critical, valueDer });
    if (oid === OID.subjectAltName) {
      const names = decodeGeneralNames(valueDer, 'badCSR');
      out.sans = names.sans;
      out.unsupportedSans = names.other;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Building (for certflow's own keys, e.g. the HTTPS listener's certificate)

/** The signature algorithm certflow uses for a request signed with `key`. */
function csrSignature(key: KeyObject): { hash: HashName | null; algId: pkijs.AlgorithmIdentifier } {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg: SignAlg = curve === 'secp384r1' ? 'ecdsa-sha384' : curve === 'secp521r1' ? 'ecdsa-sha512' : 'ecdsa-sha256';
      return { hash: signAlgInfo(alg).hash, algId: signatureAlgorithmIdentifier(alg) };
    }
    case 'rsa':
      return { hash: 'sha256', algId: signatureAlgorithmIdentifier('rsa-pkcs1-sha256') };
    case 'ed25519':
      return { hash: null, algId: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ed25519 }) };
    case 'ed448':
      return { hash: null, algId: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ed448 }) };
    default:
      throw new CaError('badKey', `cannot build a certification request with a ${key.asymmetricKeyType} key`, { rule: 'key.type' });
  }
}

/**
 * A signed PKCS#10 request (DER) for `privateKey`, with the subject (DN text in encoding
 * order, or attributes) and the SANs as a requested subjectAltName extension.
 */
export function buildCsr(args: { subject: string | RdnAttr[]; sans?: SanSet; privateKey: KeyObject }): Uint8Array {
  const { privateKey } = args;
  if (privateKey.type !== 'private') throw new CaError('internal', 'buildCsr needs a private key');
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const subject = encodeName(typeof args.subject === 'string' ? parseDn(args.subject) : args.subject);
  const attributes: asn1js.Sequence[] = [];
  if (args.sans && sanCount(args.sans) > 0) {
    const san = new pkijs.Extension({
      extnID: OID.subjectAltName,
      critical: false,
      extnValue: encodeGeneralNames(args.sans).slice().buffer,
    });
    const extensions = new asn1js.Sequence({ value: [san.toSchema()] });
    attributes.push(new pkijs.Attribute({ type: OID.extensionRequest, values: [extensions] }).toSchema());
  }
  // CertificationRequestInfo by hand: pkijs' CertificationRequest.encodeTBS is protected.
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      parseDer(subject, 'the subject', 'internal'),
      parseDer(spki, 'the public key', 'internal'),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: attributes }),
    ],
  });
  const tbs = encodeDer(info);
  const { hash, algId } = csrSignature(privateKey);
  const signature = new Uint8Array(nodeSign(hash, tbs, { key: privateKey, dsaEncoding: 'der' }));
  const csr = new asn1js.Sequence({
    value: [parseDer(tbs, 'the request info', 'internal'), algId.toSchema(), new asn1js.BitString({ valueHex: signature })],
  });
  return encodeDer(csr);
}

/**
 * The CertificationRequestInfo (DER, what gets signed) of a request for a CA key held in a
 * key store: subject and public key, no attributes. Sign it with the store and finish the
 * request with assembleCsr.
 */
export function csrInfo(subject: string | RdnAttr[], spki: Uint8Array): Uint8Array {
  const name = encodeName(typeof subject === 'string' ? parseDn(subject) : subject);
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      parseDer(name, 'the subject', 'internal'),
      parseDer(spki, 'the public key', 'internal'),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [] }),
    ],
  });
  return encodeDer(info);
}

/** The PKCS#10 request from its info and the key store's signature over it (see csrInfo). */
export function assembleCsr(info: Uint8Array, sigAlg: SignAlg, signature: Uint8Array): Uint8Array {
  const csr = new asn1js.Sequence({
    value: [
      parseDer(info, 'the request info', 'internal'),
      signatureAlgorithmIdentifier(sigAlg).toSchema(),
      new asn1js.BitString({ valueHex: signature }),
    ],
  });
  return encodeDer(csr);
}
