/**
 * OCSP (RFC 6960): reading requests, building the ResponseData to sign, assembling the
 * signed OCSPResponse, error responses, and reading responses back (for tests and checks).
 * Signing happens in the KeyStore (src/ca/ocsp.ts); this module only produces bytes.
 *
 * The OCSP ASN.1 module uses EXPLICIT tagging, except where RFC 6960 writes IMPLICIT
 * (the CertStatus alternatives): ResponderID byKey, nextUpdate, revocationReason and the
 * extension containers are explicitly tagged, good/revoked/unknown implicitly.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../core/errors.ts';
import type { SignAlg } from '../keys/types.ts';
import { readSignatureAlgorithm, signatureAlgorithmDer, verifySignature } from './algorithms.ts';
import { readReasonNode, reasonToEncode, type RevocationReason } from './crl.ts';
import {
  NULL,
  bytesEqual,
  bytesOf,
  encodeDer,
  oidDer,
  parseDer,
  toHex,
  wrapAsn1,
  bitString,
  derChildren,
  derElement,
  derOid,
  sequenceElements,
  timeDer,
  tlv,
  type DerElement,
} from './der.ts';
import { readExtensionList, type RawExtension } from './extensions.ts';
import { integerFromHex } from './integer.ts';
import { OID } from './oids.ts';
import { subjectPublicKeyBits } from './publickey.ts';
import { serialToHex } from './serial.ts';

const OCSP_OID = {
  basic: '1.3.6.1.5.5.7.48.1.1',
  nonce: '1.3.6.1.5.5.7.48.1.2',
} as const;

/**
 * Upper bound for the nonce extension value. RFC 8954 nonces are 1..32 octets (OpenSSL
 * wraps them in an OCTET STRING, adding 2); anything far beyond is not a nonce but an
 * attempt to have us sign arbitrary data, and is refused.
 */
const MAX_NONCE_OCTETS = 128;

// ---------------------------------------------------------------------------------------
// Requests

export interface OcspCertId {
  /** OID of the hash algorithm of issuerNameHash and issuerKeyHash. */
  hashAlgorithm: string;
  issuerNameHash: Uint8Array;
  issuerKeyHash: Uint8Array;
  serialHex: string;
}

export interface OcspRequest {
  certIds: OcspCertId[];
  /**
   * The nonce extension's extnValue contents exactly as the client sent them (OpenSSL sends
   * a DER OCTET STRING in there). Echoed verbatim, since clients compare it byte for byte.
   */
  nonce?: Uint8Array;
}

function malformed(why: string): never {
  throw new CaError('malformed', `malformed OCSP request: ${why}`, { rule: 'ocsp.request' });
}

// OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
// TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT
//   GeneralName OPTIONAL, requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
// Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
// CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//   issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }

const WHAT = 'the OCSP request';

/** The elements of `el`, which must be a SEQUENCE. */
function fieldsOf(el: DerElement | undefined, name: string): DerElement[] {
  if (el?.tag !== 0x30) malformed(`${name} is missing or not a SEQUENCE`);
  return derChildren(el, WHAT, 'malformed');
}

/** The one element of an EXPLICIT [n] wrapper (its tag already matched by the caller). */
function explicitInner(el: DerElement, name: string): DerElement {
  const inner = derChildren(el, WHAT, 'malformed');
  if (inner.length !== 1) malformed(`${name} holds ${inner.length} elements instead of one`);
  return inner[0]!;
}

function readExtensionsField(el: DerElement, name: string, noun: string): RawExtension[] {
  return readExtensionList(explicitInner(el, name), noun, 'malformed', (why) => malformed(`it ${why}`));
}

function readCertId(el: DerElement | undefined): OcspCertId {
  const [alg, nameHash, keyHash, serial, ...extra] = fieldsOf(el, 'a CertID');
  const algFields = fieldsOf(alg, "a CertID's hashAlgorithm");
  // Hash algorithms take NULL or absent parameters (RFC 5754 2); anything else names no hash we know.
  const [, params, ...moreAlg] = algFields;
  if (moreAlg.length || (params && (params.tag !== 0x05 || params.content.length)))
    malformed("a CertID's hashAlgorithm has parameters other than NULL");
  if (nameHash?.tag !== 0x04 || keyHash?.tag !== 0x04) malformed("a CertID's issuer hashes are not OCTET STRINGs");
  if (serial?.tag !== 0x02 || extra.length) malformed('a CertID does not end with its serialNumber INTEGER');
  const serialBytes = serial!.content;
  // Certificate serials are positive (RFC 5280 4.1.2.2); a negative one cannot name a
  // certificate of ours and could not be echoed in the CertID from its hex form either.
  if (serialBytes.length === 0 || serialBytes[0]! & 0x80) malformed('a CertID has a negative serial number');
  return {
    hashAlgorithm: derOid(algFields[0], "a CertID's hash algorithm", 'malformed'),
    issuerNameHash: nameHash!.content.slice(),
    issuerKeyHash: keyHash!.content.slice(),
    serialHex: serialToHex(serialBytes),
  };
}

function readNonce(exts: readonly RawExtension[]): Uint8Array | undefined {
  const ext = exts.find((e) => e.oid === OCSP_OID.nonce);
  if (!ext) return undefined;
  const value = ext.value;
  if (value.length === 0) malformed('the nonce is empty');
  if (value.length > MAX_NONCE_OCTETS) malformed(`the nonce is ${value.length} octets long (at most ${MAX_NONCE_OCTETS} are accepted)`);
  return value.slice();
}

/**
 * Parses a DER OCSPRequest on its bytes (der.ts), as every client sends it: RFC 6960's
 * structure, DER framing (definite lengths; BER's indefinite lengths and constructed strings
 * are refused). Any problem (not DER, trailing bytes, wrong structure, empty request list)
 * is CaError('malformed'), which the responder answers with malformedRequest. A request
 * signature and a requestor name, when present, are read only as far as their framing:
 * the responder requires neither.
 */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  if (der.length === 0) malformed('it is empty');
  const [tbs, signature, ...extra] = fieldsOf(derElement(der, WHAT, 'malformed'), 'the OCSPRequest');
  if (extra.length || (signature && signature.tag !== 0xa0))
    malformed('the OCSPRequest has fields after tbsRequest other than a [0] signature');
  if (signature) fieldsOf(explicitInner(signature, 'the optionalSignature'), 'the Signature');
  const fields = fieldsOf(tbs, 'the tbsRequest');
  let at = 0;
  if (fields[at]?.tag === 0xa0) {
    const version = explicitInner(fields[at++]!, 'the version');
    if (version.tag !== 0x02 || version.content.length !== 1) malformed('the version is not a small INTEGER');
    if (version.content[0] !== 0) malformed(`version ${version.content[0]! + 1} (only v1 exists)`);
  }
  if (fields[at]?.tag === 0xa1) explicitInner(fields[at++]!, 'the requestorName');
  const requests = fieldsOf(fields[at++], 'the requestList');
  if (requests.length === 0) malformed('the request list is empty');
  const certIds = requests.map((r) => {
    const [certId, singleExtensions, ...rest] = fieldsOf(r, 'a Request');
    if (rest.length || (singleExtensions && singleExtensions.tag !== 0xa0))
      malformed('a Request has fields after its CertID other than [0] extensions');
    if (singleExtensions) readExtensionsField(singleExtensions, 'the singleRequestExtensions', 'single request extension');
    return readCertId(certId);
  });
  const extensions = fields[at]?.tag === 0xa2 ? readExtensionsField(fields[at++]!, 'the requestExtensions', 'request extension') : [];
  if (at !== fields.length) malformed('the tbsRequest has fields out of order or unknown');
  const request: OcspRequest = { certIds };
  const nonce = readNonce(extensions);
  if (nonce) request.nonce = nonce;
  return request;
}

/**
 * The DER request of an OCSP GET (RFC 6960 A.1: the URL path ends with the url-encoded
 * base64 of the DER). `path` is what follows the responder's base URL, with or without a
 * leading "/". '+', '/' and '=' may come percent-encoded or not; a space is read as '+',
 * because some clients and proxies apply form decoding, which turns '+' into ' '.
 */
export function ocspRequestFromGetPath(path: string): Uint8Array {
  // A DER OCSPRequest starts with 0x30, base64 "M": a leading '/' is never part of it.
  let text = path.replace(/^\/+/, '');
  try {
    text = decodeURIComponent(text);
  } catch {
    malformed('the GET path is not valid percent-encoding');
  }
  text = text.replace(/ /g, '+');
  // Buffer's base64 decoder skips invalid characters silently; check the alphabet first.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) malformed('the GET path is not base64');
  const der = new Uint8Array(Buffer.from(text, 'base64'));
  if (der.length === 0) malformed('the GET path is empty');
  return der;
}

export type OcspHashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** CertID hash algorithms we can compute, by OID. */
const CERT_ID_HASHES = new Map<string, OcspHashName>([
  [OID.sha1, 'sha1'],
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);
const CERT_ID_HASH_OIDS = new Map([...CERT_ID_HASHES].map(([oid, name]) => [name, oid]));

interface IssuerKey {
  /** DER Name of the issuer certificate's subject. */
  subjectDer: Uint8Array;
  /** DER SubjectPublicKeyInfo of the issuer certificate. */
  spki: Uint8Array;
}

/**
 * issuerNameHash and issuerKeyHash of a CertID (RFC 6960 4.1.1): the hash of the issuer's
 * DER subject Name, and of its subjectPublicKey BIT STRING contents (without tag, length
 * and unused-bits octet).
 */
/** Per issuer object (CA summaries are memoized, so one per CA) and hash. */
const issuerHashCache = new WeakMap<IssuerKey, Map<OcspHashName, { nameHash: Uint8Array; keyHash: Uint8Array }>>();

function issuerHashes(issuer: IssuerKey, hash: OcspHashName): { nameHash: Uint8Array; keyHash: Uint8Array } {
  let byHash = issuerHashCache.get(issuer);
  if (!byHash) issuerHashCache.set(issuer, (byHash = new Map()));
  let hashes = byHash.get(hash);
  if (!hashes) {
    const keyBits = subjectPublicKeyBits(issuer.spki, 'internal');
    const digest = (data: Uint8Array) => new Uint8Array(createHash(hash).update(data).digest());
    hashes = { nameHash: digest(issuer.subjectDer), keyHash: digest(keyBits) };
    byHash.set(hash, hashes);
  }
  return hashes;
}

/**
 * Whether `certId` names a certificate issued by `issuer` (its name and key hashes match).
 * False for hash algorithms other than SHA-1/256/384/512.
 */
export function certIdMatches(certId: OcspCertId, issuer: IssuerKey): boolean {
  const hash = CERT_ID_HASHES.get(certId.hashAlgorithm);
  if (!hash) return false;
  const { nameHash, keyHash } = issuerHashes(issuer, hash);
  return bytesEqual(nameHash, certId.issuerNameHash) && bytesEqual(keyHash, certId.issuerKeyHash);
}

/**
 * The CertID a client computes for certificate `serialHex` issued by `issuer` with `hash`,
 * e.g. to sign responses ahead of requests (RFC 5019 style).
 */
export function ocspCertId(issuer: IssuerKey, serialHex: string, hash: OcspHashName): OcspCertId {
  const hashAlgorithm = CERT_ID_HASH_OIDS.get(hash);
  if (!hashAlgorithm) throw new CaError('internal', `unsupported OCSP CertID hash "${hash}"`);
  const { nameHash, keyHash } = issuerHashes(issuer, hash);
  // Normalised like parsed request serials, so stored and requested CertIDs compare equal.
  const serial = serialToHex(integerFromHex(serialHex, 'OCSP CertID serial number'));
  return { hashAlgorithm, issuerNameHash: nameHash, issuerKeyHash: keyHash, serialHex: serial };
}

// ---------------------------------------------------------------------------------------
// Responses

export type OcspCertStatus = { status: 'good' } | { status: 'revoked'; revokedAt: Date; reason?: RevocationReason } | { status: 'unknown' };

export interface OcspSingleResponse {
  certId: OcspCertId;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface OcspResponseDataParams {
  /** SHA-1 of the responder's subjectPublicKey (ResponderID byKey, RFC 6960 4.2.2.3). */
  responderKeyId: Uint8Array;
  producedAt: Date;
  responses: OcspSingleResponse[];
  /** The request's nonce extension value, echoed verbatim. */
  nonce?: Uint8Array;
}

/** GeneralizedTime with whole seconds (RFC 5280 4.1.2.5.2, which OCSP times follow). */
function ocspTime(d: Date): Uint8Array {
  return timeDer(d, 'generalized');
}

/** The CertID of a request, re-encoded; hash AlgorithmIdentifier with NULL parameters as OpenSSL writes it. */
function certIdDer(id: OcspCertId): Uint8Array {
  return tlv(
    0x30,
    tlv(0x30, oidDer(id.hashAlgorithm), NULL),
    tlv(0x04, id.issuerNameHash),
    tlv(0x04, id.issuerKeyHash),
    tlv(0x02, integerFromHex(id.serialHex, 'OCSP CertID serial number')),
  );
}

/** CertStatus: good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL. */
function certStatusDer(s: OcspCertStatus, serialHex: string): Uint8Array {
  switch (s.status) {
    case 'good':
      return Uint8Array.of(0x80, 0x00);
    case 'unknown':
      return Uint8Array.of(0x82, 0x00);
    case 'revoked': {
      // Same rule as CRL entries: "unspecified" is expressed by leaving the reason out.
      const code = reasonToEncode(s.reason, serialHex);
      // revocationReason [0] EXPLICIT CRLReason (an ENUMERATED of one octet: codes 0-10).
      return tlv(0xa1, ocspTime(s.revokedAt), ...(code === undefined ? [] : [tlv(0xa0, tlv(0x0a, Uint8Array.of(code)))]));
    }
  }
}

function singleResponseDer(r: OcspSingleResponse): Uint8Array {
  if (!(r.nextUpdate.getTime() > r.thisUpdate.getTime())) {
    throw new CaError('internal', `OCSP nextUpdate ${r.nextUpdate.toISOString()} is not after thisUpdate ${r.thisUpdate.toISOString()}`);
  }
  return tlv(
    0x30,
    certIdDer(r.certId),
    certStatusDer(r.status, r.certId.serialHex),
    ocspTime(r.thisUpdate),
    tlv(0xa0, ocspTime(r.nextUpdate)),
  );
}

/**
 * DER ResponseData: version v1 (DEFAULT, so not written), responderID byKey, producedAt,
 * one SingleResponse per entry, and the nonce extension when the request had one.
 * Assembled from DER pieces (der.ts), like a TBSCertificate.
 */
export function buildOcspResponseData(p: OcspResponseDataParams): Uint8Array {
  if (p.responderKeyId.length !== 20)
    throw new CaError('internal', `the OCSP responder key id is ${p.responderKeyId.length} octets, a SHA-1 hash has 20`);
  if (p.responses.length === 0) throw new CaError('internal', 'an OCSP response needs at least one SingleResponse');
  const fields = [tlv(0xa2, tlv(0x04, p.responderKeyId)), ocspTime(p.producedAt), tlv(0x30, ...p.responses.map(singleResponseDer))];
  // responseExtensions [1] EXPLICIT Extensions: the nonce, not critical.
  if (p.nonce !== undefined) fields.push(tlv(0xa1, tlv(0x30, tlv(0x30, oidDer(OCSP_OID.nonce), tlv(0x04, p.nonce)))));
  return tlv(0x30, ...fields);
}

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';
export type OcspResponseStatus = 'successful' | OcspErrorStatus;

/** OCSPResponseStatus codes (RFC 6960 4.2.1); 4 is unused. */
const RESPONSE_STATUS_CODES: Record<OcspResponseStatus, number> = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
};

/**
 * A successful OCSPResponse: ResponseBytes of type id-pkix-ocsp-basic holding the
 * BasicOCSPResponse (ResponseData byte for byte, signature algorithm, signature in the
 * KeyStore's form, and `certs` when given and non-empty).
 */
export function assembleOcspResponse(responseData: Uint8Array, sigAlg: SignAlg, signature: Uint8Array, certs?: Uint8Array[]): Uint8Array {
  sequenceElements(responseData, 'the OCSP ResponseData');
  if (signature.length === 0) throw new CaError('internal', 'the signature is empty');
  const basic: Uint8Array[] = [responseData, signatureAlgorithmDer(sigAlg), bitString(signature)];
  if (certs?.length) {
    certs.forEach((c, i) => sequenceElements(c, `certificate ${i + 1} of the OCSP response`));
    basic.push(tlv(0xa0, tlv(0x30, ...certs)));
  }
  const responseBytes = tlv(0x30, oidDer(OCSP_OID.basic), tlv(0x04, tlv(0x30, ...basic)));
  return tlv(0x30, tlv(0x0a, Uint8Array.of(RESPONSE_STATUS_CODES.successful)), tlv(0xa0, responseBytes));
}

/** An unsigned OCSPResponse carrying only an error status (RFC 6960 2.3). */
export function ocspErrorResponse(status: OcspErrorStatus): Uint8Array {
  const code = RESPONSE_STATUS_CODES[status];
  if (code === undefined || code === 0) throw new CaError('internal', `"${status}" is not an OCSP error status`);
  return encodeDer(new asn1js.Sequence({ value: [new asn1js.Enumerated({ value: code })] }));
}

// ---------------------------------------------------------------------------------------
// Reading responses

const STATUS_BY_CODE = new Map(Object.entries(RESPONSE_STATUS_CODES).map(([name, code]) => [code, name as OcspResponseStatus]));

export interface OcspSingleSummary {
  serialHex: string;
  status: 'good' | 'revoked' | 'unknown';
  revokedAt?: Date;
  reason?: RevocationReason;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export interface OcspResponseSummary {
  status: OcspResponseStatus;
  /** The rest is only present for successful responses. */
  producedAt?: Date;
  responderKeyIdHex?: string;
  nonce?: Uint8Array;
  responses: OcspSingleSummary[];
}

function parseOcspResponse(der: Uint8Array): { status: OcspResponseStatus; basic?: pkijs.BasicOCSPResponse } {
  const node = parseDer(der, 'the OCSP response', 'malformed');
  const resp = wrapAsn1('malformed', 'the input is not an OCSP response', () => new pkijs.OCSPResponse({ schema: node }));
  const status = STATUS_BY_CODE.get(resp.responseStatus.valueBlock.valueDec);
  if (!status) throw new CaError('malformed', `unknown OCSP response status ${resp.responseStatus.valueBlock.valueDec}`);
  if (status !== 'successful') return { status };
  if (!resp.responseBytes) throw new CaError('malformed', 'a successful OCSP response has no responseBytes');
  if (resp.responseBytes.responseType !== OCSP_OID.basic)
    throw new CaError('malformed', `unsupported OCSP response type ${resp.responseBytes.responseType}`);
  const inner = parseDer(resp.responseBytes.response.valueBlock.valueHexView, 'the BasicOCSPResponse', 'malformed');
  return {
    status,
    basic: wrapAsn1('malformed', 'the response is not a BasicOCSPResponse', () => new pkijs.BasicOCSPResponse({ schema: inner })),
  };
}

function readCertStatus(node: asn1js.BaseBlock, summary: OcspSingleSummary): void {
  const tag = node.idBlock.tagNumber;
  if (node.idBlock.tagClass !== 3 || tag > 2) throw new CaError('malformed', 'an OCSP SingleResponse has an invalid certStatus');
  summary.status = tag === 0 ? 'good' : tag === 2 ? 'unknown' : 'revoked';
  if (tag !== 1) return;
  if (!(node instanceof asn1js.Constructed)) throw new CaError('malformed', 'RevokedInfo is not a constructed value');
  const [time, reason] = node.valueBlock.value;
  if (!(time instanceof asn1js.GeneralizedTime)) throw new CaError('malformed', 'RevokedInfo has no revocationTime');
  summary.revokedAt = time.toDate();
  if (reason instanceof asn1js.Constructed && reason.valueBlock.value[0]) {
    const r = readReasonNode(reason.valueBlock.value[0], 'the revocationReason');
    if (r) summary.reason = r;
  }
}

function readSingleResponse(r: pkijs.SingleResponse): OcspSingleSummary {
  const summary: OcspSingleSummary = {
    serialHex: serialToHex(r.certID.serialNumber.valueBlock.valueHexView),
    status: 'unknown',
    thisUpdate: r.thisUpdate,
  };
  readCertStatus(r.certStatus as asn1js.BaseBlock, summary);
  if (r.nextUpdate) summary.nextUpdate = r.nextUpdate;
  return summary;
}

/** Reads a DER OCSPResponse (status, and for successful ones the single responses). */
export function describeOcspResponse(der: Uint8Array): OcspResponseSummary {
  const { status, basic } = parseOcspResponse(der);
  if (!basic) return { status, responses: [] };
  return wrapAsn1('malformed', 'the OCSP response has a malformed field', () => {
    const data = basic.tbsResponseData;
    const summary: OcspResponseSummary = { status, producedAt: data.producedAt, responses: data.responses.map(readSingleResponse) };
    if (data.responderID instanceof asn1js.OctetString) summary.responderKeyIdHex = toHex(data.responderID.valueBlock.valueHexView);
    const nonce = data.responseExtensions?.find((e) => e.extnID === OCSP_OID.nonce);
    if (nonce) summary.nonce = bytesOf(nonce.extnValue.valueBlock.valueHexView).slice();
    return summary;
  });
}

/**
 * Whether a successful DER OCSPResponse carries a valid signature by the key `spki` over its
 * ResponseData. False for error responses, unparseable input and unsupported algorithms.
 */
export function verifyOcspResponseSignature(der: Uint8Array, spki: Uint8Array): boolean {
  try {
    const { basic } = parseOcspResponse(der);
    if (!basic || basic.signature.valueBlock.unusedBits !== 0) return false;
    const alg = readSignatureAlgorithm(basic.signatureAlgorithm, 'malformed');
    return verifySignature(spki, alg, basic.tbsResponseData.tbsView, basic.signature.valueBlock.valueHexView);
  } catch {
    return false;
  }
}
