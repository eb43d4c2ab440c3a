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
import { encodeDer, parseDer, wrapAsn1 } from './der.ts';
import { attrsFromRdns, encodeName, parseDn, type RdnAttr } from './names.ts';
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
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = toDer(input, CSR_PEM_LABELS, 'badCSR');
  const node = parseDer(der, 'the certification request', 'badCSR');
  const csr = toCertificationRequest(node);
  return wrapAsn1('badCSR', 'the certification request is malformed', () => readVerifiedCsr(der, csr));
}

function toCertificationRequest(node: asn1js.AsnType): pkijs.CertificationRequest {
  try {
    return new pkijs.CertificationRequest({ schema: node });
  } catch {
    // A common mistake is sending a certificate; say so instead of "not a PKCS#10".
    let isCertificate = false;
    try {
      new pkijs.Certificate({ schema: node });
      isCertificate = true;
    } catch {
      /* neither */
    }
    return badCsr(isCertificate ? 'is an X.509 certificate, not a PKCS#10 request' : 'is not a PKCS#10 certification request');
  }
}

function readVerifiedCsr(der: Uint8Array, csr: pkijs.CertificationRequest): ParsedCsr {
  if (csr.version !== 0) badCsr(`has version ${csr.version}; PKCS#10 defines only version 0 (v1)`);
  // The algorithm first: "unsupported" is a more useful answer than "does not verify".
  const alg = readSignatureAlgorithm(csr.signatureAlgorithm, 'badCSR');
  const key = describePublicKey(csr.subjectPublicKeyInfo, 'badCSR');
  const spki = encodeDer(csr.subjectPublicKeyInfo.toSchema());
  if (alg.keyFamily !== key.type) {
    badCsr(`is signed with ${alg.name}, which cannot be made with its ${describeKeyKind(key)} public key`, 'csr.signature');
  }
  const sig = csr.signatureValue.valueBlock;
  if (sig.unusedBits !== 0) badCsr('has a signature BIT STRING with unused bits', 'csr.signature');
  if (!verifySignature(spki, alg, csr.tbsView, sig.valueHexView)) {
    badCsr(`signature (${alg.name}) does not verify: the request was altered or not signed by the key it contains`, 'csr.signature');
  }
  const attrs = readAttributes(csr.attributes ?? []);
  const parsed: ParsedCsr = {
    der,
    subject: attrsFromRdns(csr.subject),
    spki,
    key,
    sans: attrs.sans,
    extensions: attrs.extensions,
  };
  if (attrs.challengePassword !== undefined) parsed.challengePassword = attrs.challengePassword;
  if (attrs.unsupportedSans.length) parsed.unsupportedSans = attrs.unsupportedSans;
  return parsed;
}

interface CsrAttributes {
  extensions: CsrExtension[];
  sans: SanSet;
  unsupportedSans: string[];
  challengePassword?: string;
}

function readAttributes(attributes: readonly pkijs.Attribute[]): CsrAttributes {
  const out: CsrAttributes = { extensions: [], sans: emptySans(), unsupportedSans: [] };
  const seen = new Set<string>();
  for (const attr of attributes) {
    if (seen.has(attr.type)) badCsr(`has the attribute ${attr.type} twice`);
    seen.add(attr.type);
    if (attr.type === OID.extensionRequest) {
      if (attr.values.length !== 1) badCsr(`has an extensionRequest attribute with ${attr.values.length} values, expected 1`);
      out.extensions = readRequestedExtensions(attr.values[0]);
      const san = out.extensions.find((e) => e.oid === OID.subjectAltName);
      if (san) {
        const names = decodeGeneralNames(san.valueDer, parseDer(san.valueDer, 'the requested subjectAltName', 'badCSR'), 'badCSR');
        out.sans = names.sans;
        out.unsupportedSans = names.other;
      }
    } else if (attr.type === OID.challengePassword) {
      const value: unknown = attr.values[0];
      if (attr.values.length !== 1 || !(value instanceof asn1js.BaseStringBlock)) {
        badCsr('has a challengePassword attribute that is not a single string');
      }
      out.challengePassword = value.getValue();
    }
    // Other attributes (unstructuredName, ...) carry nothing we use.
  }
  return out;
}

function readRequestedExtensions(value: asn1js.AsnType): CsrExtension[] {
  // openssl writes an empty SEQUENCE when no extensions are requested; pkijs' schema wants >= 1.
  if (value instanceof asn1js.Sequence && value.valueBlock.value.length === 0) return [];
  let exts: pkijs.Extensions;
  try {
    exts = new pkijs.Extensions({ schema: value });
  } catch {
    return badCsr('has a malformed extensionRequest attribute');
  }
  const out: CsrExtension[] = [];
  for (const e of exts.extensions) {
    if (out.some((o) => o.oid === e.extnID)) badCsr(`requests the extension ${e.extnID} twice`);
    out.push({ oid: e.extnID, critical: e.critical, valueDer: e.extnValue.valueBlock.valueHexView.slice() });
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
