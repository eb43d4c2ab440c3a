import type { Middleware } from 'koa';
import { CaError, HTTP_STATUS_BY_KIND } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

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
      ctx.status = HTTP_STATUS_BY_KIND[err.kind];
      if (ctx.status >= 500) log.error({ err: e, path: ctx.path }, 'request failed');
      else log.info({ kind: err.kind, msg: err.message, path: ctx.path }, 'request rejected');
      if (err.kind === 'unavailable') ctx.set('Retry-After', '5');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${err.kind === 'internal' ? 'internal error' : err.message}\n`;
    }
  };
}
