import type { Middleware } from 'koa';
import { CaError, type ErrorKind } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

const STATUS: Record<ErrorKind, number> = {
  badCSR: 400,
  badKey: 400,
  policy: 400,
  malformed: 400,
  notFound: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  config: 500,
  internal: 500,
};

/**
 * Generic error mapping for the plain HTTP endpoints (CA certificates, health). Protocol
 * routers (ACME, EST, CMP) install their own mapping in front of their routes.
 */
export function errorMiddleware(log: Logger): Middleware {
  return async function errors(ctx, next) {
    try {
      await next();
    } catch (e) {
      const err = e instanceof CaError ? e : new CaError('internal', 'internal error', { cause: e });
      ctx.status = STATUS[err.kind];
      if (ctx.status >= 500) log.error({ err: e, path: ctx.path }, 'request failed');
      else log.info({ kind: err.kind, msg: err.message, path: ctx.path }, 'request rejected');
      if (err.kind === 'unavailable') ctx.set('Retry-After', '5');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${err.kind === 'internal' ? 'internal error' : err.message}\n`;
    }
  };
}
