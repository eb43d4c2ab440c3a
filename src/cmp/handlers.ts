/**
 * CMP requests (RFC 9810 5.3, profiled by RFC 9483): parse, check the header, authenticate,
 * then one handler per body type. Certificate requests (ir, cr, kur, p10cr) run as the
 * `cmp-<transactionID hex>` workflow; rr goes through the revocation workflow (both through
 * the registration authority, src/ra/cmp.ts); genm is answered from the CA's data; certConf
 * and pollReq follow up on a transaction.
 */
import { createHash } from 'node:crypto';
import type { CmpInput, CmpOutcome } from '../../workflows/api.ts';
import { checkRenewalNames } from '../authz/certificate-names.ts';
import { raMayRevoke } from '../authz/cmp-client.ts';
import { mayRenew } from '../authz/renewal.ts';
import { getProfile, type CmpAlias, type Config } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { CmpTransactionRow } from '../db/repos/cmp-transactions.ts';
import {
  CertConfirmContent,
  CertRepMessage,
  CertResponse,
  CertifiedKeyPair,
  INFO_TYPES,
  InfoTypeAndValue,
  NULL,
  PKIMessage,
  PKIStatus,
  PKIStatusInfo,
  PollRepContent,
  RevRepContent,
  CertReqMsg,
  certHash,
  certIssuerAndSerial,
  crlEntryReasonCode,
  fromDer,
  generalizedTime,
  nameAttrs,
  readCertReqMsg,
  sameSubject,
  type CertReqMessages,
  type CrmfRequest,
  type RevReqContent,
} from '../pki/cmp/index.ts';
import { formatDn, parseCsr, pemDecodeAll, reasonFromCode, serialToHex, type ParsedCsr } from '../pki/index.ts';
import type { CmpDeps } from './api.ts';
import { asCaError, cmpError, statusInfoOf } from './errors.ts';
import { guardAuthentication } from '../http/auth-limiter.ts';
import { authenticate, isRa, mayEnroll, type CmpIdentity } from './identity.ts';
import { generalMessage } from './genm.ts';
import { buildResponse, errorAnswer, firstMessage, followUp, type Answer, type Exchange } from './transaction.ts';

const CERT_REQUESTS = new Set(['ir', 'cr', 'kur', 'p10cr']);
const RESPONSE_TYPE = { ir: 'ip', cr: 'cp', kur: 'kup', p10cr: 'cp' } as const;

/** Answers one CMP request message (DER) with a DER PKIMessage; never throws for the client's mistakes. */
export async function handleCmpMessage(deps: CmpDeps, alias: CmpAlias, der: Uint8Array, remote?: string): Promise<Uint8Array> {
  let msg: PKIMessage | undefined;
  let identity: CmpIdentity | undefined;
  try {
    msg = PKIMessage.fromDer(der);
    checkHeader(msg);
    const m = msg;
    identity = await guardAuthentication(deps, 'cmp', { address: remote }, () => authenticate(deps, m, alias, remote));
    checkTime(deps.config, msg);
    const x: Exchange = { pool: deps.pool, log: deps.log, signer: deps.signer(), msg, der, identity, alias: alias.name };
    return await dispatch(deps, alias, x);
  } catch (e) {
    const err = asCaError(e);
    const txid = msg?.header.transactionID ? Buffer.from(msg.header.transactionID).toString('hex') : undefined;
    const fields = { cmp: msg?.body.type, transactionId: txid, client: identity?.key, kind: err.kind, rule: err.rule, msg: err.message };
    if (err.kind === 'internal' || err.kind === 'config') deps.log.error({ ...fields, err: e }, 'CMP request failed');
    else deps.log.info(fields, 'CMP request rejected');
    // Protected like the request where its protection was verified; else signed by the CMP signer.
    try {
      return (await buildResponse(msg, identity, deps.signer(), errorAnswer(err))).toDer();
    } catch (e2) {
      // Header fields too broken to echo (sender, nonces): answer without them.
      deps.log.warn({ err: errorMessage(e2) }, 'CMP error response without the request header fields');
      return (await buildResponse(undefined, undefined, deps.signer(), errorAnswer(err))).toDer();
    }
  }
}

function checkHeader(msg: PKIMessage): void {
  const h = msg.header;
  if (h.pvno !== 2 && h.pvno !== 3) throw cmpError('cmp.version', `pvno ${h.pvno} is not supported (cmp2000 = 2, cmp2021 = 3)`);
  if (!h.transactionID || h.transactionID.length < 1 || h.transactionID.length > 64) {
    throw cmpError('cmp.request', 'the header must carry a transactionID of 1 to 64 bytes (RFC 9483 3.1)');
  }
  if (!h.senderNonce || h.senderNonce.length < 8 || h.senderNonce.length > 64) {
    throw cmpError('cmp.senderNonce', 'the header must carry a senderNonce of 8 to 64 bytes (16 recommended)');
  }
}

function checkTime(config: Config, msg: PKIMessage): void {
  const t = msg.header.messageTime;
  if (!t) return;
  const skew = Math.abs(t.getTime() - Date.now()) / 1000;
  if (skew > config.cmp.messageTimeToleranceSeconds) {
    throw cmpError(
      'cmp.time',
      `messageTime ${t.toISOString()} is ${Math.round(skew)} s off the server's clock (at most ${config.cmp.messageTimeToleranceSeconds} s)`,
    );
  }
}

async function dispatch(deps: CmpDeps, alias: CmpAlias, x: Exchange): Promise<Uint8Array> {
  const body = x.msg.body;
  const txHex = Buffer.from(x.msg.header.transactionID!).toString('hex');
  switch (body.type) {
    case 'ir':
    case 'cr':
    case 'kur':
    case 'p10cr': {
      const requestId = deps.ra.requestId(txHex);
      return firstMessage(x, { requestId }, () => enroll(deps, alias, x, requestId));
    }
    case 'rr':
      return firstMessage(x, {}, () => revoke(deps, x, body.content));
    case 'genm':
      return firstMessage(x, {}, async () => ({
        body: { type: 'genp', content: await generalMessage(deps, alias, body.content) },
        close: true,
      }));
    case 'certConf':
      return followUp(x, (row) => certConf(deps, x, row, body.content));
    case 'pollReq':
      return followUp(x, (row) => pollReq(deps, x, row));
    case 'error':
      return followUp(x, (row) => clientError(deps, x, row));
    default:
      throw cmpError('cmp.request', `a ${body.type} is not a request this CMP server answers`);
  }
}

// ---- certificate requests -----------------------------------------------------------

function implicitConfirmAsked(msg: PKIMessage): boolean {
  return Boolean(msg.header.generalInfo?.some((i) => i.infoType === INFO_TYPES.implicitConfirm));
}

function onlyRequest(content: CertReqMessages): CertReqMsg {
  if (content.messages.length !== 1)
    throw cmpError('cmp.request', `the request carries ${content.messages.length} CertReqMsg; RFC 9483 allows exactly one`);
  return content.messages[0]!;
}

/** A certificate request (ir, cr, kur, p10cr) of an authenticated client, through the RA (exported for the handler's unit tests). */
export async function enroll(deps: CmpDeps, alias: CmpAlias, x: Exchange, requestId: string): Promise<Answer> {
  const { msg, identity } = x;
  const bodyType = msg.body.type as 'ir' | 'cr' | 'kur' | 'p10cr';
  let csr: ParsedCsr;
  let certReqId = -1;
  let requestDer: Uint8Array;
  let replaces: string | undefined;
  const profile = identity.client?.profile ?? alias.profile;
  const caName = alias.caName;

  if (bodyType === 'p10cr') {
    requestDer = msg.body.content as Uint8Array;
    csr = parseCsr(requestDer);
    mayEnroll(identity, alias, csr);
  } else {
    const reqMsg = onlyRequest(msg.body.content as CertReqMessages);
    const req = readCertReqMsg(reqMsg, { allowRaVerified: isRa(identity) });
    csr = req.csr;
    certReqId = req.certReqId;
    requestDer = reqMsg.toDer();
    // kur: the alias's profile and CA apply, as for a new certificate (issue 22 item 1).
    if (bodyType === 'kur') replaces = keyUpdateTarget(identity, req, alias);
    else mayEnroll(identity, alias, csr);
  }
  getProfile(deps.config, profile);
  const implicitConfirm = implicitConfirmAsked(msg) && alias.implicitConfirm;
  const requireApproval = alias.requireApproval || Boolean(identity.client?.requireApproval);
  const input: CmpInput = {
    requestId,
    transactionId: Buffer.from(msg.header.transactionID!).toString('hex'),
    alias: alias.name,
    bodyType,
    request: Buffer.from(requestDer).toString('base64'),
    requestFormat: bodyType === 'p10cr' ? 'pkcs10' : 'crmf',
    requestHash: createHash('sha256').update(x.der).digest('hex'),
    profile,
    caName,
    requester: identity.key,
    replaces,
    revokeReplaced: alias.kurRevokesOld,
    requireApproval,
    implicitConfirm,
    confirmTimeout: `${alias.confirmWaitSeconds ?? deps.config.cmp.confirmWaitSeconds} seconds`,
    faultRetrySeconds: { initial: deps.config.issuance.faultRetryInitialSeconds, max: deps.config.issuance.faultRetryMaxSeconds },
  };
  deps.log.info(
    { transactionId: input.transactionId, body: bodyType, client: identity.key, subject: formatDn(csr.subject), profile },
    'CMP certificate request',
  );
  const outcome = await deps.ra.requestCertificate(input);
  return certAnswer(deps, x, RESPONSE_TYPE[bodyType], certReqId, outcome);
}

/**
 * kur (RFC 9483 4.1.3): signed with the certificate to be updated (one of this CA's, not a
 * registered client's), a new key, exactly the old certificate's subject and SANs, and only
 * for a certificate this alias updates (issued through CMP here or at an alias it lists in
 * kurAliases, or of a profile in kurProfiles). Returns the serial it replaces.
 */
function keyUpdateTarget(identity: CmpIdentity, req: CrmfRequest, alias: CmpAlias): string {
  if (identity.type !== 'signature' || !identity.issued) {
    throw cmpError('cmp.notAuthorized', 'a kur must be signed with the certificate it updates (issued by this CA)', 'forbidden');
  }
  const old = identity.issued;
  if (req.oldCertId && req.oldCertId.serialHex !== old.serial) {
    throw cmpError(
      'cmp.certId',
      `oldCertID names serial ${req.oldCertId.serialHex}, but the message is signed with certificate ${old.serial}`,
    );
  }
  if (Buffer.from(req.csr.spki).equals(Buffer.from(identity.summary.spki))) {
    throw cmpError('crmf.template', 'a key update must request a new public key, not the key of the certificate being updated', 'badCSR');
  }
  mayRenew(old, { protocol: 'cmp', name: alias.name, from: alias.kurAliases, profiles: alias.kurProfiles });
  checkRenewalNames(req.csr, identity.summary, 'a key update');
  return old.serial;
}

/** ip / cp / kup for an outcome: the certificate, "waiting", or a rejection. */
async function certAnswer(deps: CmpDeps, x: Exchange, type: 'ip' | 'cp' | 'kup', certReqId: number, outcome: CmpOutcome): Promise<Answer> {
  if (outcome.status === 'waiting') {
    const status = new PKIStatusInfo(PKIStatus.waiting, [outcome.reason]);
    return { body: { type, content: new CertRepMessage([new CertResponse(certReqId, status)]) }, close: false };
  }
  if (outcome.status === 'rejected') {
    const err = new CaError(outcome.kind as never, outcome.message, outcome.rule ? { rule: outcome.rule } : {});
    return { body: { type, content: new CertRepMessage([new CertResponse(certReqId, statusInfoOf(err))]) }, close: true };
  }
  const certDer = pemDecodeAll(outcome.certPem)[0]!.der;
  const chain = pemDecodeAll(outcome.chainPem).map((b) => b.der);
  const root = type === 'ip' && x.identity.type === 'mac' ? await deps.ra.rootOf(outcome.caName, outcome.caGeneration) : undefined;
  const response = new CertResponse(certReqId, new PKIStatusInfo(PKIStatus.accepted), new CertifiedKeyPair(certDer));
  const generalInfo = outcome.implicitConfirm
    ? [new InfoTypeAndValue(INFO_TYPES.implicitConfirm, NULL)]
    : [new InfoTypeAndValue(INFO_TYPES.confirmWaitTime, generalizedTime(new Date(Date.now() + deps.config.cmp.confirmWaitSeconds * 1000)))];
  return {
    body: { type, content: new CertRepMessage([response], root ? [root] : undefined) },
    close: outcome.implicitConfirm,
    generalInfo,
    extraCerts: chain,
  };
}

// ---- certConf, pollReq, error -------------------------------------------------------

function pkiconf(): Answer {
  return { body: { type: 'pkiconf', content: null }, close: true };
}

async function transactionCertificate(deps: CmpDeps, row: CmpTransactionRow) {
  if (!row.requestId || !CERT_REQUESTS.has(row.bodyType))
    throw cmpError('cmp.request', `transaction ${row.transactionId.toString('hex')} is not a certificate request`);
  return deps.ra.transactionCertificate(row.requestId);
}

async function certConf(deps: CmpDeps, x: Exchange, row: CmpTransactionRow, content: CertConfirmContent): Promise<Answer> {
  const { request, cert } = await transactionCertificate(deps, row);
  if (!request || !cert?.certDer) throw cmpError('cmp.request', 'there is no certificate to confirm in this transaction yet');
  if (content.statuses.length !== 1)
    throw cmpError('cmp.request', `certConf carries ${content.statuses.length} CertStatus; exactly one certificate was issued`);
  const st = content.statuses[0]!;
  const expectedId = row.bodyType === 'p10cr' ? [-1, 0] : [certReqIdOf(request.csrDer)];
  if (!expectedId.includes(st.certReqId)) throw cmpError('cmp.certId', `certConf names certReqId ${st.certReqId}, not the request's`);
  const hashOk = Buffer.from(certHash(cert.certDer, st.hashAlg)).equals(Buffer.from(st.certHash));
  const rejected = st.statusInfo && st.statusInfo.status === PKIStatus.rejection;
  const decision = !hashOk
    ? { accepted: false, reason: 'certHash does not match the issued certificate' }
    : rejected
      ? { accepted: false, reason: [...(st.statusInfo!.statusString ?? []), ...(st.statusInfo!.failInfo ?? [])].join('; ') || 'rejected' }
      : { accepted: true };
  const updateId = `certconf-${Buffer.from(x.msg.header.senderNonce!).toString('hex')}`;
  await deps.ra.confirm(row.requestId!, cert.serial, decision, updateId);
  if (!hashOk) throw cmpError('cmp.certId', 'certHash does not match the issued certificate; it has been revoked');
  return pkiconf();
}

/** The certReqId of the stored CertReqMsg (0 in practice). */
function certReqIdOf(der: Buffer): number {
  return CertReqMsg.read(fromDer(der, 'the stored CertReqMsg')).certReq.certReqId;
}

async function pollReq(deps: CmpDeps, x: Exchange, row: CmpTransactionRow): Promise<Answer> {
  const { request, cert } = await transactionCertificate(deps, row);
  const content = x.msg.body.content as { certReqIds: number[] };
  const certReqId = content.certReqIds[0] ?? 0;
  const type = RESPONSE_TYPE[row.bodyType as keyof typeof RESPONSE_TYPE];
  const waiting = (reason: string): Answer => ({
    body: {
      type: 'pollRep',
      content: new PollRepContent([{ certReqId, checkAfter: deps.config.cmp.pollIntervalSeconds, reason: [reason] }]),
    },
    close: false,
  });
  if (!request || request.state === 'pending' || request.state === 'signing') return waiting('the certificate is being issued');
  if (request.state === 'awaiting-approval') return waiting('the request waits for approval by an operator');
  if (request.state === 'stalled') return waiting('the CA cannot sign right now and tries again');
  const outcome = await deps.ra.outcome(request.id);
  if (outcome.status === 'issued' && request.state === 'issued' && cert) {
    // Handed out now: the confirmation period starts again (the client may have polled for long).
    const refused = await deps.ra.delivered(request.id, `deliver-${Buffer.from(x.msg.header.senderNonce!).toString('hex')}`);
    if (refused) deps.log.warn({ requestId: request.id, err: refused }, 'CMP delivery update refused');
  }
  if (outcome.status === 'issued') outcome.implicitConfirm = request.state === 'confirmed';
  return certAnswer(deps, x, type, certReqId, outcome);
}

/** The client aborts the transaction with an error message (RFC 9483 3.6.4): a waiting certificate is rejected. */
async function clientError(deps: CmpDeps, x: Exchange, row: CmpTransactionRow): Promise<Answer> {
  const content = x.msg.body.content as { pKIStatusInfo: PKIStatusInfo };
  if (row.requestId && CERT_REQUESTS.has(row.bodyType)) {
    const { request, cert } = await deps.ra.transactionCertificate(row.requestId);
    if (request?.state === 'issued') {
      const reason = `the client sent an error: ${[...(content.pKIStatusInfo.statusString ?? []), ...(content.pKIStatusInfo.failInfo ?? [])].join('; ')}`;
      const updateId = `error-${Buffer.from(x.msg.header.senderNonce!).toString('hex')}`;
      await deps.ra
        .confirm(row.requestId, cert?.serial ?? '', { accepted: false, reason }, updateId)
        .catch((e) => deps.log.warn({ requestId: row.requestId, err: errorMessage(e) }, 'CMP abort not taken'));
    }
  }
  return pkiconf();
}

// ---- revocation ---------------------------------------------------------------------

async function revoke(deps: CmpDeps, x: Exchange, content: RevReqContent): Promise<Answer> {
  if (content.details.length !== 1)
    throw cmpError('cmp.request', `the rr carries ${content.details.length} RevDetails; RFC 9483 allows exactly one`);
  const d = content.details[0]!;
  const t = d.certDetails;
  if (!t.serialNumber || !t.issuer) throw cmpError('cmp.certId', 'certDetails must name the certificate by issuer and serialNumber');
  const serial = serialToHex(t.serialNumber);
  const cert = await deps.ra.certificate(serial);
  if (!cert?.certDer) throw cmpError('cmp.certId', `no certificate with serial ${serial} was issued by this CA`, 'notFound');
  if (!sameSubject(nameAttrs(t.issuer, 'the issuer'), nameAttrs(certIssuerAndSerial(cert.certDer).issuer, 'the certificate issuer'))) {
    throw cmpError('cmp.certId', `certificate ${serial} was not issued by the named issuer`, 'notFound');
  }
  // Its own certificate (the rr signed with it), one the same client requested, or — for an
  // RA — one issued through its aliases (issue 22 item 2).
  const id = x.identity;
  const own = id.type === 'signature' && id.issued?.serial === serial;
  if (!own && cert.requester !== id.key) raMayRevoke(id.client, cert);
  if (cert.status === 'revoked') {
    return rp(new PKIStatusInfo(PKIStatus.rejection, [`certificate ${serial} is already revoked`], ['certRevoked']));
  }
  const code = crlEntryReasonCode(d.crlEntryDetails);
  const reason = code === undefined ? 'unspecified' : reasonFromCode(code);
  if (!reason || reason === 'removeFromCRL' || reason === 'certificateHold') {
    throw cmpError(
      'cmp.request',
      `revocation reason code ${code} is not accepted (RFC 5280 reasons except certificateHold and removeFromCRL)`,
    );
  }
  await deps.ra.revoke({ serial, action: 'revoke', reason, requester: `cmp:${id.key}`, protocol: 'cmp' });
  return rp(new PKIStatusInfo(PKIStatus.accepted));
}

function rp(status: PKIStatusInfo): Answer {
  return { body: { type: 'rp', content: new RevRepContent([status]) }, close: true };
}
