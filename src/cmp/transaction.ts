/**
 * The message exchange of a CMP transaction: every request is answered once, and that
 * answer is kept (cmp_transactions), so that
 *  - a retried HTTP request (same transactionID, same bytes) gets the very same answer
 *    and never causes a second certificate;
 *  - a new first message (ir, cr, kur, p10cr, rr, genm) with a transactionID in use is
 *    refused (transactionIdInUse), which also refuses a replayed earlier message;
 *  - a follow-up (certConf, pollReq, error) must come from the same client and carry the
 *    latest answer's senderNonce as recipNonce (badRecipientNonce otherwise).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import * as transactions from '../db/repos/cmp-transactions.ts';
import { ErrorMsgContent, InfoTypeAndValue, PKIHeader, PKIMessage, directoryName, type PKIBodyContent } from '../pki/cmp/index.ts';
import { asCaError, cmpError, failureOf, statusInfoOf } from './errors.ts';
import { protect, type CmpIdentity } from './identity.ts';
import type { CmpSigner } from './signer.ts';

export interface Answer {
  body: PKIBodyContent;
  /** The transaction ends with this answer. */
  close: boolean;
  generalInfo?: InfoTypeAndValue[];
  /** Certificates for extraCerts (the issued certificate's chain). */
  extraCerts?: Uint8Array[];
}

export interface Exchange {
  pool: Pool;
  log: Logger;
  signer: CmpSigner;
  msg: PKIMessage;
  der: Uint8Array;
  identity: CmpIdentity;
  alias: string;
}

/** A response header: same transaction, our fresh senderNonce, their senderNonce as recipNonce. */
function responseHeader(request: PKIMessage | undefined, signer: CmpSigner): PKIHeader {
  const h = request?.header;
  return new PKIHeader({
    pvno: h?.pvno === 3 ? 3 : 2,
    sender: directoryName(signer.subjectDer),
    recipient: h?.sender,
    messageTime: new Date(),
    transactionID: h?.transactionID,
    senderNonce: new Uint8Array(randomBytes(16)),
    recipNonce: h?.senderNonce,
  });
}

/** Builds and protects the response message for an answer. */
export async function buildResponse(
  request: PKIMessage | undefined,
  identity: CmpIdentity | undefined,
  signer: CmpSigner,
  answer: Answer,
): Promise<PKIMessage> {
  const header = responseHeader(request, signer);
  if (answer.generalInfo?.length) header.generalInfo = answer.generalInfo;
  const msg = new PKIMessage(header, answer.body);
  await protect(msg, identity, signer, answer.extraCerts ?? []);
  return msg;
}

/** An error message for a rejected request (RFC 9810 5.3.21), protected like the request where it could be verified. */
export function errorAnswer(e: unknown): Answer {
  const err = asCaError(e);
  return {
    body: { type: 'error', content: new ErrorMsgContent(statusInfoOf(err), undefined, err.rule ? [err.rule] : undefined) },
    close: true,
  };
}

function requestHash(der: Uint8Array): Buffer {
  return createHash('sha256').update(der).digest();
}

function logRejection(log: Logger, x: { txid: string; body: string; client?: string }, e: unknown): void {
  const err = asCaError(e);
  const fields = {
    cmp: x.body,
    transactionId: x.txid,
    client: x.client,
    failInfo: failureOf(err),
    kind: err.kind,
    rule: err.rule,
    msg: err.message,
  };
  if (err.kind === 'internal' || err.kind === 'config') log.error({ ...fields, err: e }, 'CMP request failed');
  else log.info(fields, 'CMP request rejected');
}

/** Answers `compute` once; store and return the stored answer (first answer wins). */
async function answerOnce(x: Exchange, hash: Buffer, compute: () => Promise<Answer>): Promise<Uint8Array> {
  const txid = x.msg.header.transactionID!;
  let answer: Answer;
  try {
    answer = await compute();
  } catch (e) {
    logRejection(x.log, { txid: Buffer.from(txid).toString('hex'), body: x.msg.body.type, client: x.identity.key }, e);
    // A service that did not answer: nothing is stored, the client may send the same request again.
    if (CaError.is(e, 'unavailable')) return (await buildResponse(x.msg, x.identity, x.signer, errorAnswer(e))).toDer();
    answer = errorAnswer(e);
  }
  const response = await buildResponse(x.msg, x.identity, x.signer, answer);
  const der = response.toDer();
  const stored = await transactions.answer(x.pool, txid, hash, { der, senderNonce: response.header.senderNonce!, close: answer.close });
  return stored ?? der;
}

/**
 * A transaction's first message. `requestId` names the issuance request (for certificate
 * requests). A retry of this very message gets the stored answer.
 */
export async function firstMessage(x: Exchange, opts: { requestId?: string }, compute: () => Promise<Answer>): Promise<Uint8Array> {
  const txid = x.msg.header.transactionID!;
  const hash = requestHash(x.der);
  const opened = await transactions.open(x.pool, {
    transactionId: txid,
    alias: x.alias,
    bodyType: x.msg.body.type,
    client: x.identity.key,
    protection: x.identity.type,
    requestId: opts.requestId,
    requestNonce: x.msg.header.senderNonce!,
    requestHash: hash,
  });
  if (!opened) {
    const row = await transactions.get(x.pool, txid);
    if (!row || !row.lastRequestHash.equals(hash)) {
      throw cmpError(
        'cmp.transactionIdInUse',
        `transactionID ${Buffer.from(txid).toString('hex')} is in use (a replayed or conflicting message); start a new transaction`,
        'conflict',
      );
    }
    if (row.lastResponse) return row.lastResponse;
    // The same request is being answered (or its answer was lost in a crash): answer again, idempotently.
  }
  return answerOnce(x, hash, compute);
}

/** certConf, pollReq or error: a reply to the transaction's latest answer. */
export async function followUp(x: Exchange, compute: (row: transactions.CmpTransactionRow) => Promise<Answer>): Promise<Uint8Array> {
  const txid = x.msg.header.transactionID!;
  const hash = requestHash(x.der);
  const row = await transactions.get(x.pool, txid);
  if (!row)
    throw cmpError(
      'cmp.request',
      `no transaction ${Buffer.from(txid).toString('hex')}: a ${x.msg.body.type} must follow a request of the same transaction`,
      'notFound',
    );
  if (row.client !== x.identity.key)
    throw cmpError('cmp.notAuthorized', 'the message comes from another client than the transaction', 'forbidden');
  if (row.lastRequestHash.equals(hash)) {
    if (row.lastResponse) return row.lastResponse;
    return answerOnce(x, hash, () => compute(row));
  }
  if (row.closed)
    throw cmpError('cmp.request', `transaction ${Buffer.from(txid).toString('hex')} is finished (a replayed or late message)`, 'conflict');
  const recip = x.msg.header.recipNonce;
  if (!row.lastSenderNonce || !recip || !row.lastSenderNonce.equals(Buffer.from(recip))) {
    throw cmpError(
      'cmp.recipNonce',
      'recipNonce is not the senderNonce of the last response of this transaction (a replayed or out-of-order message)',
    );
  }
  const advanced = await transactions.advance(x.pool, txid, row.lastSenderNonce, { nonce: x.msg.header.senderNonce!, hash });
  if (!advanced) {
    const now = await transactions.get(x.pool, txid);
    if (now?.lastRequestHash.equals(hash) && now.lastResponse) return now.lastResponse;
    throw cmpError('cmp.recipNonce', 'another message of this transaction was answered first (out of order)');
  }
  return answerOnce(x, hash, () => compute(row));
}
