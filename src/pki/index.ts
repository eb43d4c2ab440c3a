/**
 * The PKI layer: the only place in certflow that imports pkijs/asn1js. Everything else
 * works with DER bytes, DN text and the plain types exported here.
 */
export { OID } from './oids.ts';
export { pemEncode, pemDecodeAll, toDer, type PemBlock } from './pem.ts';
export { parseDn, formatDn, encodeName, attrOid, attrShortName, type RdnAttr } from './names.ts';
export { parseCsr, buildCsr, CSR_PEM_LABELS, type ParsedCsr, type CsrExtension } from './csr.ts';
export { emptySans, sanCount, sanList, ipToText, ipFromText, normalizeIp, type SanSet } from './san.ts';
export { describePublicKey, describeKeyKind, keyIdentifier, type PublicKeyKind } from './publickey.ts';
export {
  buildTbsCertificate,
  assembleCertificate,
  describeCertificate,
  verifyCertificateSignature,
  tbsSerialHex,
  truncateToSecond,
  inspectTbs,
  type TbsView,
  type TbsParams,
  type CertExtensions,
  type CertSummary,
} from './certificate.ts';
export { randomSerial, serialToHex, assertValidSerial } from './serial.ts';
export { signAlgInfo, signAlgFitsKey, verifySignedWith, type SignAlgInfo, type HashName } from './algorithms.ts';
export {
  buildTbsCrl,
  assembleCrl,
  describeCrl,
  verifyCrlSignature,
  serialFromHex,
  reasonFromCode,
  reasonCode,
  REVOCATION_REASONS,
  type RevocationReason,
  type CrlEntry,
  type TbsCrlParams,
  type CrlSummary,
} from './crl.ts';
export {
  parseOcspRequest,
  ocspRequestFromGetPath,
  certIdMatches,
  ocspCertId,
  buildOcspResponseData,
  assembleOcspResponse,
  ocspErrorResponse,
  describeOcspResponse,
  verifyOcspResponseSignature,
  type OcspCertId,
  type OcspHashName,
  type OcspRequest,
  type OcspCertStatus,
  type OcspSingleResponse,
  type OcspResponseDataParams,
  type OcspErrorStatus,
  type OcspResponseStatus,
  type OcspSingleSummary,
  type OcspResponseSummary,
} from './ocsp.ts';
export { buildCertsOnly, parseCertsOnly, base64Body, decodeBase64Body } from './cms.ts';
export {
  buildCsrAttrs,
  csrAttrsForProfile,
  parseCsrAttrs,
  type CsrAttrItem,
  type ParsedCsrAttr,
  type CsrAttrsProfile,
} from './csrattrs.ts';
export { buildServerKeygenResponse, parseMultipart, type MimePart, type ServerKeygenResponse } from './multipart.ts';
export { parseAcmeChallengeCertificate, ACME_IDENTIFIER_OID, type AcmeChallengeCertificate } from './acme-identifier.ts';
export { checkOrderNames, type OrderIdentifier, type NamedSubject } from './order-names.ts';
