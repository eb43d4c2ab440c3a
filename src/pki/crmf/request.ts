/**
 * What a CRMF certificate request (RFC 4211, as profiled by RFC 9483 4.1) asks for, in the
 * shape the issuer's policy reads (ParsedCsr), with its proof of possession checked.
 * Errors are CaErrors whose rule names the CMP failure: crmf.template -> badCertTemplate,
 * crmf.pop -> badPOP.
 */
import { CaError } from '../../core/errors.ts';
import { readSignatureAlgorithm, verifySignature } from '../algorithms.ts';
import { readRequestedExtensions, type ParsedCsr, type RequestedExtensions } from '../csr.ts';
import { derElement } from '../der.ts';
import { readName, type RdnAttr } from '../names.ts';
import { describePublicKey } from '../publickey.ts';
import { emptySans } from '../san.ts';
import { serialToHex } from '../serial.ts';
import { fromDer } from '../cmp/asn1.ts';
import { CertId, CertReqMsg, type CertTemplate } from './structures.ts';

/** id-regCtrl-oldCertID (RFC 4211 6.5): the certificate a kur replaces. */
const OLD_CERT_ID_OID = '1.3.6.1.5.5.7.5.1.5';

function badTemplate(why: string): never {
  throw new CaError('badCSR', `the certificate template ${why}`, { rule: 'crmf.template' });
}

function badPop(why: string): never {
  throw new CaError('badCSR', `the proof of possession ${why}`, { rule: 'crmf.pop' });
}

/** A Name (DER RDNSequence) as attributes. */
export function nameAttrs(der: Uint8Array, what: string): RdnAttr[] {
  try {
    return readName(derElement(der, what, 'badCSR'), what, 'badCSR');
  } catch (e) {
    return badTemplate(`has a malformed ${what}: ${(e as Error).message}`);
  }
}

export interface CrmfRequest {
  certReqId: number;
  /** The request in the issuer's terms: subject, public key, SANs, extensions. */
  csr: ParsedCsr;
  pop: 'signature' | 'raVerified';
  /** kur: the oldCertID control (issuer DER GeneralName, serial hex). */
  oldCertId?: { issuer: Uint8Array; serialHex: string };
  template: CertTemplate;
}

/** Extensions of a template, checked like a CSR's extensionRequest. */
function templateExtensions(der: Uint8Array | undefined): RequestedExtensions {
  if (!der) return { extensions: [], sans: emptySans(), unsupportedSans: [] };
  return readRequestedExtensions(derElement(der, 'the template extensions', 'badCSR'), badTemplate);
}

/**
 * Reads one CertReqMsg: the template must carry a public key (no central key generation)
 * and a subject, and may not set what only the CA decides (serial, signing algorithm,
 * unique ids). A signature POP must verify; raVerified is reported for the caller to
 * authorize; other POP types are refused.
 */
export function readCertReqMsg(msg: CertReqMsg, opts: { allowRaVerified: boolean }): CrmfRequest {
  const t = msg.certReq.certTemplate;
  if (!t.publicKey) badTemplate('has no public key (central key generation is not offered)');
  if (t.serialNumber || t.signingAlg || t.issuerUID || t.subjectUID) {
    badTemplate('sets serialNumber, signingAlg or a unique identifier, which the CA decides');
  }
  if (t.version !== undefined && t.version !== 2) badTemplate(`asks for certificate version ${t.version + 1}; only v3 is issued`);
  if (!t.subject) badTemplate('has no subject');
  const subject = nameAttrs(t.subject, 'subject');
  const key = describePublicKey(t.publicKey, 'badKey');
  const ext = templateExtensions(t.extensions);
  const pop = checkPop(msg, t.publicKey, opts);

  let oldCertId: CrmfRequest['oldCertId'];
  for (const c of msg.certReq.controls ?? []) {
    if (c.type === OLD_CERT_ID_OID) {
      const id = CertId.read(fromDer(c.value, 'oldCertID'), 'oldCertID');
      oldCertId = { issuer: id.issuer, serialHex: serialToHex(id.serialNumber) };
    }
  }
  const csr: ParsedCsr = {
    der: msg.certReqDer ?? msg.certReq.toDer(),
    subject,
    spki: t.publicKey,
    key,
    sans: ext.sans,
    extensions: ext.extensions,
  };
  if (ext.unsupportedSans.length) csr.unsupportedSans = ext.unsupportedSans;
  return { certReqId: msg.certReq.certReqId, csr, pop, oldCertId, template: t };
}

function checkPop(msg: CertReqMsg, spki: Uint8Array, opts: { allowRaVerified: boolean }): 'signature' | 'raVerified' {
  const popo = msg.popo;
  if (!popo) badPop('is missing');
  if (popo.type === 'raVerified') {
    if (!opts.allowRaVerified) badPop('is raVerified, which only a registration authority allowed to use it may send');
    return 'raVerified';
  }
  if (popo.type !== 'signature') badPop(`is ${popo.type}, which is not supported (only signature POP)`);
  const sig = popo.signature!;
  if (sig.poposkInput) badPop('uses poposkInput, which RFC 9483 does not allow (the template must carry subject and key)');
  let alg;
  try {
    alg = readSignatureAlgorithm(sig.algorithmIdentifier, 'badCSR');
  } catch (e) {
    return badPop(`algorithm is not accepted: ${(e as Error).message}`);
  }
  const data = msg.certReqDer ?? msg.certReq.toDer();
  if (!verifySignature(spki, alg, data, sig.signature)) badPop(`signature (${alg.name}) does not verify with the requested public key`);
  return 'signature';
}

/**
 * The signing activity's reader of a CMP request stored as a DER CertReqMsg: the same
 * checks as the front end (raVerified was authorized there).
 */
export function parseCrmfRequest(der: Uint8Array): ParsedCsr {
  const msg = CertReqMsg.read(fromDer(der, 'the CertReqMsg'));
  return readCertReqMsg(msg, { allowRaVerified: true }).csr;
}

/** Whether a template's subject (if any) equals `subjectDer` exactly, as attributes. */
export function sameSubject(a: RdnAttr[], b: RdnAttr[]): boolean {
  return a.length === b.length && a.every((x, i) => x.type === b[i]!.type && x.value === b[i]!.value);
}
