/**
 * CMP over HTTP (RFC 9811) at /.well-known/cmp and /.well-known/cmp/p/<alias>, on both
 * listeners. POST only, Content-Type application/pkixcmp, a body of at most 64 KiB; HTTP/1.0
 * and 1.1 (OpenSSL's client sends HTTP/1.0 and a Host header without port). Transport
 * mistakes get 405/415/413 (404 for an unknown alias); everything the CMP layer rejects is
 * a 200 carrying a CMP error message.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { CmpAlias } from '../config/index.ts';
import { cmpHttpErrors, httpError } from './errors.ts';
import type { CmpDeps } from './api.ts';
import { handleCmpMessage } from './handlers.ts';

const CMP_CONTENT_TYPE = 'application/pkixcmp';
const MAX_BODY = 64 * 1024;

export function cmpRouter(deps: CmpDeps): Router {
  const router = new Router({ prefix: '/.well-known/cmp' });
  router.use(cmpHttpErrors(deps.log));
  const serve = (name: string) => async (ctx: Context) => {
    const alias = deps.config.cmp.aliases.get(name);
    if (!alias) throw httpError(404, `unknown CMP alias "${name}"`);
    await cmpPost(ctx, deps, alias);
  };
  router.all('/', (ctx) => serve('')(ctx));
  router.all('/p/:name', (ctx) => serve(ctx.params.name ?? '')(ctx));
  return router;
}

async function cmpPost(ctx: Context, deps: CmpDeps, alias: CmpAlias): Promise<void> {
  if (ctx.method !== 'POST') throw httpError(405, 'CMP requests are sent with POST (RFC 9811 3.1)');
  const type = (ctx.get('Content-Type') || '').split(';')[0]!.trim().toLowerCase();
  if (type !== CMP_CONTENT_TYPE)
    throw httpError(415, `Content-Type must be ${CMP_CONTENT_TYPE}, not "${ctx.get('Content-Type') || '(none)'}"`);
  const body = await readBody(ctx);
  const response = await handleCmpMessage(deps, alias, body, ctx.ip);
  ctx.status = 200;
  ctx.set('Content-Type', CMP_CONTENT_TYPE);
  // Responses are specific to one transaction and must not be cached (RFC 9811 3.4).
  ctx.set('Cache-Control', 'no-store');
  ctx.body = Buffer.from(response);
}

async function readBody(ctx: Context): Promise<Uint8Array> {
  const tooLarge = () => httpError(413, `the request body is larger than ${MAX_BODY} bytes`);
  if (Number(ctx.get('Content-Length') || 0) > MAX_BODY) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
