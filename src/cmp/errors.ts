/**
 * The one place CMP errors are mapped: a CaError (kind, rule) becomes a PKIStatusInfo with
 * the PKIFailureInfo bit a client can act on (RFC 9810 5.2.3, RFC 9483 3.6.4), and the
 * transport mistakes the HTTP status of RFC 9811 (405, 413, 415, 404). Everything the CMP
 * layer rejects is an HTTP 200 carrying a CMP error or a negative response: never a 500.
 */
import type { Middleware } from 'koa';
import { CaError, type ErrorKind } from '../core/errors.ts';
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

const FAILURE_BY_KIND: Record<ErrorKind, FailureInfo> = {
  badCSR: 'badCertTemplate',
  badKey: 'badCertTemplate',
  policy: 'badCertTemplate',
  malformed: 'badDataFormat',
  notFound: 'badRequest',
  conflict: 'badRequest',
  unauthorized: 'notAuthorized',
  forbidden: 'notAuthorized',
  unavailable: 'systemUnavail',
  config: 'systemFailure',
  internal: 'systemFailure',
};

export function failureOf(e: CaError): FailureInfo {
  return (e.rule && FAILURE_BY_RULE[e.rule]) || FAILURE_BY_KIND[e.kind];
}

/** A CMP-layer rejection: kind + the rule that names the failure bit. */
export function cmpError(rule: keyof typeof FAILURE_BY_RULE | string, message: string, kind: ErrorKind = 'malformed'): CaError {
  return new CaError(kind, message, { rule });
}

/** PKIStatusInfo (rejection) for an error; internal details are not sent. */
export function statusInfoOf(e: unknown): PKIStatusInfo {
  const err = asCaError(e);
  const text = err.kind === 'internal' ? 'internal error' : err.kind === 'config' ? 'the CA is misconfigured; ask its operator' : err.message;
  return new PKIStatusInfo(PKIStatus.rejection, [text], [failureOf(err)]);
}

export function asCaError(e: unknown): CaError {
  return e instanceof CaError ? e : new CaError('internal', 'internal error', { cause: e });
}

/** An HTTP-level refusal (wrong method, content type, size, unknown alias). */
export function httpError(status: 405 | 413 | 415 | 404, message: string): CaError {
  return new CaError(status === 404 ? 'notFound' : 'malformed', message, { details: { httpStatus: status } });
}

/** Maps the transport errors to their status with a plain-text reason. */
export function cmpHttpErrors(log: Logger): Middleware {
  return async function cmpHttpErrorMapping(ctx, next) {
    try {
      await next();
    } catch (e) {
      const err = asCaError(e);
      const status = (err.details?.httpStatus as number | undefined) ?? (err.kind === 'unavailable' ? 503 : 500);
      if (status >= 500) log.error({ err: e, path: ctx.path }, 'CMP request failed');
      else log.info({ path: ctx.path, status, msg: err.message }, 'CMP request refused');
      ctx.status = status;
      if (status === 405) ctx.set('Allow', 'POST');
      if (status === 503) ctx.set('Retry-After', '10');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${status >= 500 ? 'internal error' : err.message}\n`;
    }
  };
}
