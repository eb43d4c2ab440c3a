/**
 * A minimal CMP client (certflow's own): builds an ir/cr with a signature POP, protects
 * messages with MAC (PBM, PBMAC1) or a signature, certConf for a received certificate, and
 * reads the failure of a response. Used by the tests and `npm run bench:cmp` for what
 * `openssl cmp` cannot produce (PBMAC1, crafted and replayed messages, load).
 */
import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  CertConfirmContent,
  CertReqMessages,
  CertReqMsg,
  CertRequest,
  CertStatus,
  CertTemplate,
  InfoTypeAndValue,
  INFO_TYPES,
  NULL,
  NULL_DN,
  PKIHeader,
  PKIMessage,
  POPOSigningKey,
  ProofOfPossession,
  certHash,
  directoryName,
  protectWithMac,
  type MacChoice,
  type PKIBodyContent,
} from '../pki/cmp/index.ts';
import { encodeName, parseDn } from '../pki/index.ts';

/** An ir (one CertReqMsg, signature POP) for `key`, unprotected: protect it with macProtect / signProtect. */
export function buildIr(args: {
  key: KeyObject;
  subject: string;
  ref?: string;
  implicitConfirm?: boolean;
  messageTime?: Date;
  transactionID?: Uint8Array;
  body?: 'ir' | 'cr';
}): PKIMessage {
  const subjectDer = encodeName(parseDn(args.subject));
  const spki = new Uint8Array(createPublicKey(args.key).export({ type: 'spki', format: 'der' }));
  const certReq = new CertRequest(0, new CertTemplate({ subject: subjectDer, publicKey: spki }));
  const certReqDer = certReq.toDer();
  const signature = new Uint8Array(sign('sha256', certReqDer, { key: args.key, dsaEncoding: 'der' }));
  const ecdsaSha256 = new Uint8Array(Buffer.from('300a06082a8648ce3d040302', 'hex'));
  const popo = new ProofOfPossession('signature', new POPOSigningKey(ecdsaSha256, signature));
  const header = new PKIHeader({
    pvno: 2,
    sender: directoryName(subjectDer),
    recipient: NULL_DN,
    messageTime: args.messageTime ?? new Date(),
    senderKID: args.ref ? new TextEncoder().encode(args.ref) : undefined,
    transactionID: args.transactionID ?? new Uint8Array(randomBytes(16)),
    senderNonce: new Uint8Array(randomBytes(16)),
    generalInfo: args.implicitConfirm ? [new InfoTypeAndValue(INFO_TYPES.implicitConfirm, NULL)] : undefined,
  });
  const body: PKIBodyContent = { type: args.body ?? 'ir', content: new CertReqMessages([new CertReqMsg(certReq, popo)]) };
  return new PKIMessage(header, body);
}

export function macProtect(
  msg: PKIMessage,
  secret: string,
  choice: MacChoice = { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1', iterations: 500 },
): Uint8Array {
  protectWithMac(msg, new TextEncoder().encode(secret), choice);
  return msg.toDer();
}

/** The failure bits and texts of a response (error message or rejected certificate response). */
export function failure(der: Uint8Array): { type: string; failInfo: string[]; text: string } {
  const msg = PKIMessage.fromDer(der);
  const b = msg.body;
  const si =
    b.type === 'error'
      ? b.content.pKIStatusInfo
      : b.type === 'ip' || b.type === 'cp' || b.type === 'kup'
        ? b.content.response[0]?.status
        : b.type === 'rp'
          ? b.content.status[0]
          : undefined;
  return {
    type: b.type,
    failInfo: si?.failInfo ?? [],
    text: [...(si?.statusString ?? []), ...(b.type === 'error' ? (b.content.errorDetails ?? []) : [])].join(' | '),
  };
}

/** The certConf for `certDer`, answering `ip` (same transaction, recipNonce = its senderNonce). */
export function buildCertConf(request: PKIMessage, ip: PKIMessage, certDer: Uint8Array, certReqId = 0): PKIMessage {
  const h = new PKIHeader({
    ...request.header,
    senderNonce: new Uint8Array(randomBytes(16)),
    recipNonce: ip.header.senderNonce,
    messageTime: new Date(),
    protectionAlg: undefined,
    generalInfo: undefined,
  });
  return new PKIMessage(h, { type: 'certConf', content: new CertConfirmContent([new CertStatus(certHash(certDer), certReqId)]) });
}
