import type { Context, Middleware } from 'koa';
import { CaError, ERROR_CONTRACT, publicMessage, toCaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/**
 * How a protocol renders an error. The mechanism is shared (protocolErrors below): every
 * error becomes a CaError of the contract (src/core/errors.ts; a database or Temporal that
 * does not answer is 'unavailable'), gets its status — 503 with Retry-After for server
 * faults, never a 500 for a dependency that is down — and is logged; the protocol only
 * writes its own body (EST plain text, a CMP error message, ...).
 */
export interface ProtocolErrorFormat {
  /** Name in the log ("EST", "CMP", "HTTP"). */
  protocol: string;
  /** The HTTP status; default: the contract's (or details.httpStatus of the CaError). */
  status?(err: CaError): number;
  /** Writes the body (and protocol headers); status and Retry-After are set already. */
  render(ctx: Context, err: CaError, status: number, message: string): void;
}

/** The status of an error in a protocol that uses HTTP statuses: details.httpStatus, else the contract's. */
function httpStatusOf(err: CaError): number {
  const override = err.details?.httpStatus;
  return typeof override === 'number' ? override : ERROR_CONTRACT[err.kind].http;
}

/** Sets status and Retry-After of a server fault, logs the error; returns the status. */
function prepareErrorResponse(
  ctx: Context,
  e: unknown,
  format: Pick<ProtocolErrorFormat, 'protocol' | 'status'>,
  log: Logger,
): { err: CaError; status: number } {
  const err = toCaError(e);
  const status = format.status?.(err) ?? httpStatusOf(err);
  ctx.status = status;
  const override = err.details?.retryAfterSeconds;
  const retryAfter = typeof override === 'number' ? override : ERROR_CONTRACT[err.kind].retryAfterSeconds;
  if (status === 503 || status === 429 || (retryAfter && status >= 500)) ctx.set('Retry-After', String(retryAfter ?? 10));
  const fields = { protocol: format.protocol, path: ctx.path, status, kind: err.kind, rule: err.rule, msg: err.message };
  if (err.kind === 'internal') log.error({ ...fields, err: err.cause ?? err }, `${format.protocol} request failed`);
  else if (status >= 500)
    log.warn({ ...fields, cause: (err.cause as Error | undefined)?.message }, `${format.protocol} request could not be served now`);
  else log.info(fields, `${format.protocol} request refused`);
  return { err, status };
}

export function protocolErrors(format: ProtocolErrorFormat, log: Logger): Middleware {
  return async function protocolErrorMapping(ctx, next) {
    try {
      await next();
    } catch (e) {
      const { err, status } = prepareErrorResponse(ctx, e, format, log);
      format.render(ctx, err, status, publicMessage(err));
    }
  };
}

/** Plain text bodies: the format of EST (RFC 7030 4.2.3) and of the plain HTTP endpoints. */
export function renderPlainText(ctx: Context, _err: CaError, _status: number, message: string): void {
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = `${message}\n`;
}

/**
 * Generic error mapping for the plain HTTP endpoints (CA certificates, health). Protocol
 * routers (ACME, EST, CMP) install their own mapping in front of their routes.
 */
export function errorMiddleware(log: Logger): Middleware {
  return protocolErrors({ protocol: 'HTTP', render: renderPlainText }, log);
}
