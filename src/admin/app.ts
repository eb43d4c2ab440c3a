/**
 * The console's Koa application (admin listener only; the public listeners serve none of
 * this): request ids, security headers (strict CSP: scripts and styles only from
 * /assets, which are served from this package and from npm packages, never a CDN),
 * error mapping (JSON for the API, a page otherwise), who is asking (API token or session
 * cookie), the API with its OpenAPI document, the login page and the pages.
 */
import Koa from 'koa';
import Router from '@koa/router';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TLSSocket } from 'node:tls';
import { CaError, HTTP_STATUS_BY_KIND } from '../core/errors.ts';
import { apiRouter, API_PREFIX, openApiDocument, type AdminDeps, type ApiRoute } from './api.ts';
import { authenticateToken, resolveSession, type AuthSettings, type Principal } from './auth.ts';
import { html } from './html.ts';
import { layout, pageRouter, type Page } from './pages.ts';
import { peerCertificate } from './tls-login.ts';
import { temporalUiProxy } from './temporal-ui-proxy.ts';
import { TEMPORAL_UI_PATH } from '../config/index.ts';

export const SESSION_COOKIE = '__Host-certflow_session';

const require = createRequire(import.meta.url);
const ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));

/** Static files: our own CSS/JS and chart.js's UMD build from node_modules. */
function assets(): Map<string, { type: string; body: Buffer }> {
  const files = new Map<string, { type: string; body: Buffer }>();
  files.set('console.css', { type: 'text/css; charset=utf-8', body: readFileSync(join(ASSETS_DIR, 'console.css')) });
  files.set('console.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(join(ASSETS_DIR, 'console.js')) });
  const chartJs = join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');
  files.set('chart.umd.min.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(chartJs) });
  return files;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function isApi(ctx: Koa.Context): boolean {
  return ctx.path === API_PREFIX || ctx.path.startsWith(`${API_PREFIX}/`);
}

/** The HTTP status of an error: 429 for a throttled login, otherwise by kind. */
function statusOf(err: CaError): number {
  if (err.rule === 'auth.throttled') return 429;
  if (err.rule === 'api.input.mediaType') return 415;
  return HTTP_STATUS_BY_KIND[err.kind];
}

export function adminApp(deps: AdminDeps, opts: { routes: ApiRoute[]; pages: Page[]; settings: AuthSettings; version: string }): Koa {
  const app = new Koa();
  app.proxy = deps.config.trustProxy;
  app.silent = true;
  const files = assets();
  const openapi = openApiDocument(opts.routes, opts.version);

  app.use(async (ctx, next) => {
    ctx.state.requestId = randomBytes(9).toString('base64url');
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Strict-Transport-Security', 'max-age=31536000');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    await next();
    // Static files may be cached: ours, and the Temporal UI's content-hashed bundles.
    if (!ctx.path.startsWith('/assets/') && !ctx.path.startsWith(`${TEMPORAL_UI_PATH}/_app/immutable/`))
      ctx.set('Cache-Control', 'no-store');
  });

  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new CaError('notFound', `nothing at ${ctx.path}`);
    } catch (e) {
      const err = e instanceof CaError ? e : new CaError('internal', 'internal error', { cause: e });
      ctx.status = statusOf(err);
      const message = err.kind === 'internal' ? `internal error (request ${ctx.state.requestId})` : err.message;
      if (ctx.status >= 500 && err.rule !== 'auth.throttled')
        deps.log.error({ err: e, path: ctx.path, requestId: ctx.state.requestId }, 'admin request failed');
      else deps.log.info({ kind: err.kind, msg: err.message, path: ctx.path, requestId: ctx.state.requestId }, 'admin request refused');
      const retryAfter = err.details?.retryAfterSeconds ?? (err.kind === 'unavailable' ? 5 : undefined);
      if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
      if (isApi(ctx) || ctx.accepts('html', 'json') === 'json') {
        ctx.type = 'application/json';
        ctx.body = { error: { kind: err.kind, message, ...(err.rule ? { rule: err.rule } : {}) } };
      } else {
        ctx.type = 'text/html; charset=utf-8';
        const principal = ctx.state.principal as Principal | undefined;
        const title = ctx.status === 403 ? 'Forbidden' : ctx.status === 404 ? 'Not found' : `Error ${ctx.status}`;
        ctx.body = layout({
          title,
          body: html`<p class="error" id="error">${message}</p>
            <p><a href="/">Back to the dashboard</a></p>`,
          principal,
          pages: opts.pages,
          csrf: principal?.kind === 'session' ? principal.csrfToken : undefined,
        });
      }
    }
  });

  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path.startsWith('/assets/')) {
      const file = files.get(ctx.path.slice('/assets/'.length));
      if (!file) throw new CaError('notFound', `no asset ${ctx.path}`);
      ctx.type = file.type;
      ctx.set('Cache-Control', 'private, max-age=3600');
      ctx.body = file.body;
      return;
    }
    await next();
  });

  // Who is asking: an API token (Authorization: Bearer) or the session cookie.
  app.use(async (ctx, next) => {
    const authz = ctx.get('Authorization');
    if (authz) {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      if (!m) throw new CaError('unauthorized', 'the Authorization header must be "Bearer cft_…"', { rule: 'auth.scheme' });
      ctx.state.principal = await authenticateToken(deps.pool, m[1]!);
    } else {
      const cookie = ctx.cookies.get(SESSION_COOKIE);
      if (cookie) {
        ctx.state.principal = await resolveSession(deps.pool, cookie, opts.settings);
        if (!ctx.state.principal)
          ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: 0, overwrite: true });
      }
    }
    ctx.state.peer = peerCertificate(ctx.req.socket as TLSSocket);
    await next();
  });

  // The Temporal UI at /temporal/ (cluster mode): logged-in users with the right role only.
  if (deps.config.admin.temporalUiProxy) app.use(temporalUiProxy(deps, deps.config.admin.temporalUiProxy, SESSION_COOKIE));

  // JSON bodies for the API (64 KiB at most; other media types are refused).
  app.use(async (ctx, next) => {
    if (isApi(ctx) && ['POST', 'PUT', 'DELETE', 'PATCH'].includes(ctx.method)) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of ctx.req) {
        size += (chunk as Buffer).length;
        if (size > 64 * 1024) throw new CaError('malformed', 'the request body is larger than 64 KiB', { rule: 'api.input.size' });
        chunks.push(chunk as Buffer);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim()) {
        if (!ctx.is('application/json')) {
          throw new CaError('malformed', 'send the request body as application/json', { rule: 'api.input.mediaType' });
        }
        try {
          ctx.state.body = JSON.parse(text);
        } catch {
          throw new CaError('malformed', 'the request body is not valid JSON', { rule: 'api.input.json' });
        }
      }
    }
    await next();
  });

  const meta = new Router();
  meta.get(`${API_PREFIX}/openapi.json`, (ctx) => {
    ctx.body = openapi;
  });
  app.use(meta.routes());
  const api = apiRouter(deps, opts.routes);
  app.use(api.routes()).use(api.allowedMethods());
  const pages = pageRouter(deps, opts.pages);
  app.use(pages.routes()).use(pages.allowedMethods());
  return app;
}
