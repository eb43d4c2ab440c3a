/**
 * The PKI layer: the only place in certflow that imports pkijs/asn1js. Everything else
 * works with DER bytes, DN text and the plain types exported here.
 */
export { OID } from './oids.ts';
export { pemEncode, pemDecodeAll, toDer } from './pem.ts';
export { parseDn, formatDn, encodeName, attrShortName, type RdnAttr } from './names.ts';
export { parseCsr, buildCsr, csrInfo, assembleCsr, type ParsedCsr } from './csr.ts';
export { emptySans, sanCount, sanList, ipToText, ipFromText, normalizeIp, type SanSet } from './san.ts';
export { truncateToSecond } from './der.ts';
export { describePublicKey, describeKeyKind, keyIdentifier, type PublicKeyKind } from './publickey.ts';
export {
  buildTbsCertificate,
  assembleCertificate,
  describeCertificate,
  verifyCertificateSignature,
  tbsSerialHex,
  inspectTbs,
  type TbsView,
  type TbsParams,
  type CertSummary,
} from './certificate.ts';
export {
  parseNameConstraint,
  encodeNameConstraints,
  decodeNameConstraints,
  nameConstraintViolation,
  type NameConstraints,
} from './name-constraints.ts';
export { randomSerial, serialToHex, assertValidSerial } from './serial.ts';
export { signAlgFitsKey, verifySignedWith } from './algorithms.ts';
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
  type OcspCertStatus,
  type OcspSingleResponse,
  type OcspErrorStatus,
} from './ocsp.ts';
export { buildCertsOnly, parseCertsOnly, base64Body, decodeBase64Body } from './cms.ts';
export { buildCsrAttrs, csrAttrsForProfile, parseCsrAttrs } from './csrattrs.ts';
export { buildServerKeygenResponse, parseMultipart } from './multipart.ts';
export { parseAcmeChallengeCertificate, type AcmeChallengeCertificate } from './acme-identifier.ts';
export { checkOrderNames, type NamedSubject } from './order-names.ts';
