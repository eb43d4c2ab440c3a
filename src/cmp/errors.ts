/**
 * The one place CMP errors are mapped: a CaError (kind, rule) becomes a PKIStatusInfo with
 * the PKIFailureInfo bit a client can act on (RFC 9810 5.2.3, RFC 9483 3.6.4), and the
 * transport mistakes the HTTP status of RFC 9811 (405, 413, 415, 404). Everything the CMP
 * layer rejects is an HTTP 200 carrying a CMP error or a negative response: never a 500.
 */
import type { Middleware } from 'koa';
import { CaError, ERROR_CONTRACT, publicMessage, toCaError, type ErrorKind } from '../core/errors.ts';
import { protocolErrors, renderPlainText } from '../http/errors.ts';
import type { Logger } from '../core/logger.ts';
import { PKIStatus, PKIStatusInfo, type FailureInfo } from '../pki/cmp/index.ts';

/** Rules thrown by the CMP layer and the pki layer, with their failure bit. */
const FAILURE_BY_RULE: Record<string, FailureInfo> = {
  'cmp.asn1': 'badDataFormat',
  'cmp.protection': 'badMessageCheck',
  'cmp.protection.alg': 'badAlg',
  'cmp.protection.kind': 'wrongIntegrity',
  'cmp.version': 'unsupportedVersion',
  'cmp.time': 'badTime',
  'cmp.senderNonce': 'badSenderNonce',
  'cmp.recipNonce': 'badRecipientNonce',
  'cmp.transactionIdInUse': 'transactionIdInUse',
  'cmp.notAuthorized': 'notAuthorized',
  'cmp.signer': 'signerNotTrusted',
  // src/authz/client-certificate.ts: the signer certificate does not authenticate.
  'clientCert.unknown': 'signerNotTrusted',
  'clientCert.status': 'signerNotTrusted',
  'clientCert.validity': 'signerNotTrusted',
  'clientCert.eku': 'signerNotTrusted',
  'cmp.request': 'badRequest',
  'cmp.certId': 'badCertId',
  'cmp.certConfirmed': 'certConfirmed',
  'cmp.certRevoked': 'certRevoked',
  'cmp.duplicate': 'duplicateCertReq',
  'crmf.template': 'badCertTemplate',
  'crmf.pop': 'badPOP',
  'csr.signature': 'badPOP',
  'csr.syntax': 'badDataFormat',
  'signature.algorithm': 'badAlg',
};

/** Without a rule: the error contract's CMP column (src/core/errors.ts). */
export function failureOf(e: CaError): FailureInfo {
  const byKind: FailureInfo = ERROR_CONTRACT[e.kind].cmp;
  return (e.rule && FAILURE_BY_RULE[e.rule]) || byKind;
}

/** A CMP-layer rejection: kind + the rule that names the failure bit. */
export function cmpError(rule: keyof typeof FAILURE_BY_RULE | string, message: string, kind: ErrorKind = 'malformed'): CaError {
  return new CaError(kind, message, { rule });
}

/** PKIStatusInfo (rejection) for an error; internal details are not sent. */
export function statusInfoOf(e: unknown): PKIStatusInfo {
  const err = asCaError(e);
  return new PKIStatusInfo(PKIStatus.rejection, [publicMessage(err)], [failureOf(err)]);
}

/** Any error as a CaError of the contract: a database or Temporal that does not answer is 'unavailable' (systemUnavail). */
export const asCaError = toCaError;

/** An HTTP-level refusal (wrong method, content type, size, unknown alias). */
export function httpError(status: 405 | 413 | 415 | 404, message: string): CaError {
  return new CaError(status === 404 ? 'notFound' : 'malformed', message, { details: { httpStatus: status } });
}

/** Maps the transport errors to their status with a plain-text reason (503 + Retry-After for server faults). */
export function cmpHttpErrors(log: Logger): Middleware {
  return protocolErrors(
    {
      protocol: 'CMP',
      render(ctx, err, status, message) {
        if (status === 405) ctx.set('Allow', 'POST');
        renderPlainText(ctx, err, status, message);
      },
    },
    log,
  );
}
