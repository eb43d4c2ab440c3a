/**
 * The one place EST errors are mapped (RFC 7030 4.2.3 / 3.2.3): plain-text reasons with
 * the HTTP status a device can act on (the error contract of src/core/errors.ts): never a
 * 500 for a client mistake, 503 with Retry-After when the CA's database, Temporal or
 * signing cannot serve now.
 */
import type { Middleware } from 'koa';
import { CaError, type ErrorKind } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { protocolErrors, renderPlainText } from '../http/errors.ts';

const EST_REALM = 'Basic realm="certflow EST", charset="UTF-8"';

/** A CaError with an HTTP status other than its kind's default (415, 405, ...). */
export function estError(kind: ErrorKind, status: number, message: string): CaError {
  return new CaError(kind, message, { details: { httpStatus: status } });
}

export function estErrors(log: Logger): Middleware {
  return protocolErrors(
    {
      protocol: 'EST',
      render(ctx, err, status, message) {
        if (status === 401) ctx.set('WWW-Authenticate', EST_REALM);
        renderPlainText(ctx, err, status, message);
      },
    },
    log,
  );
}
