/**
 * The one place EST errors are mapped (RFC 7030 4.2.3 / 3.2.3): plain-text reasons with
 * the HTTP status a device can act on; never a 500 for a client mistake.
 */
import type { Middleware } from 'koa';
import { CaError, HTTP_STATUS_BY_KIND, type ErrorKind } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export const EST_REALM = 'Basic realm="certflow EST", charset="UTF-8"';

/** A CaError with an HTTP status other than its kind's default (415, 405, ...). */
export function estError(kind: ErrorKind, status: number, message: string): CaError {
  return new CaError(kind, message, { details: { httpStatus: status } });
}

export function estErrors(log: Logger): Middleware {
  return async function estErrorMapping(ctx, next) {
    try {
      await next();
    } catch (e) {
      const err = e instanceof CaError ? e : new CaError('internal', 'internal error', { cause: e });
      const status = (err.details?.httpStatus as number | undefined) ?? HTTP_STATUS_BY_KIND[err.kind];
      ctx.status = status;
      if (status === 401) ctx.set('WWW-Authenticate', EST_REALM);
      if (status === 503) ctx.set('Retry-After', '10');
      const fields = { est: ctx.path, status, kind: err.kind, rule: err.rule, msg: err.message };
      if (status >= 500) log.error({ ...fields, err: e }, 'EST request failed');
      else log.info(fields, 'EST request refused');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${status >= 500 && err.kind === 'internal' ? 'internal error' : err.message}\n`;
    }
  };
}
