/**
 * The Temporal UI at /temporal/ on the console's listener (cluster mode and
 * docker-compose.yml): a reverse proxy to the Temporal UI server, which listens on loopback
 * only and trusts whoever reaches it. The console decides who does:
 *
 * - a console session (cookie) is required: no session, no UI (a page request goes to the
 *   login page, anything else gets 401); API tokens are refused (the UI is for browsers;
 *   scripts have the admin API and the CLI);
 * - the roles that may see requests (requests:read) may look: every GET, and workflow
 *   queries (POST .../query/..., read-only by Temporal's design);
 * - the roles that may act on requests (requests:manage) may also cancel, terminate, pause
 *   and unpause a workflow — each such action is audited under the console user;
 * - every other write the UI's API offers (start, signal, Update, reset, batch, schedules,
 *   activity commands: ways around certflow's checks and audit) is refused for every
 *   role, and disabled in the UI's own config (src/temporal/ui-server.ts).
 *
 * For roles that may only look, the UI's settings say "write actions disabled", so the UI
 * shows no action buttons; the proxy refuses them anyway.
 */
import type Koa from 'koa';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { TEMPORAL_UI_PATH } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { deny, type AdminDeps } from './api.ts';
import { actorOf, record, type Principal, type SessionPrincipal } from './auth.ts';
import { can } from './roles.ts';

/** What a request to the UI does, and who may do it. */
export type TemporalUiAccess =
  | { kind: 'read' }
  | { kind: 'act'; action: 'cancel' | 'terminate' | 'pause' | 'unpause'; namespace: string; workflowId: string }
  | { kind: 'refused' };

const API = `${TEMPORAL_UI_PATH}/api/v1/`;
const WORKFLOW_ACTION = new RegExp(`^${API}namespaces/([^/]+)/workflows/([^/]+)/(cancel|terminate|pause|unpause)$`);
const WORKFLOW_QUERY = new RegExp(`^${API}namespaces/[^/]+/workflows/[^/]+/query/[^/]+$`);

/**
 * Classifies a request by method and raw (still percent-encoded) path: one segment is one
 * segment, as the UI server's router sees it. The rule every role check calls.
 */
function temporalUiAccess(method: string, rawPath: string): TemporalUiAccess {
  if (method === 'GET' || method === 'HEAD') return { kind: 'read' };
  if (method === 'POST' && WORKFLOW_QUERY.test(rawPath)) return { kind: 'read' };
  const m = method === 'POST' ? WORKFLOW_ACTION.exec(rawPath) : null;
  if (m) {
    return {
      kind: 'act',
      action: m[3] as 'cancel' | 'terminate' | 'pause' | 'unpause',
      namespace: decodeURIComponent(m[1]!),
      workflowId: decodeURIComponent(m[2]!),
    };
  }
  return { kind: 'refused' };
}

/** Paths with dot segments, backslashes or empty segments are refused before anything else. */
function suspicious(rawPath: string): boolean {
  return /(^|\/)(\.|%2e){1,2}(\/|$)/i.test(rawPath) || /\\|%5c|\/\//i.test(rawPath) || /%2e%2e/i.test(rawPath);
}

/** Request headers not forwarded: hop-by-hop, the console's own credentials, method overrides. */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'authorization',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'accept-encoding',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function forwardedCookies(header: string | undefined, sessionCookie: string): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !c.startsWith(`${sessionCookie}=`));
  return kept.length ? kept.join('; ') : undefined;
}

/**
 * The CSP of the UI's index page. The UI server drops the page's own CSP when it runs under
 * a public path, because rewriting the page changes its inline script; the same policy is
 * restored here with the hash of the script as served.
 */
function indexPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`,
  );
  return [`script-src 'strict-dynamic' ${hashes.join(' ')}`, "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'"].join('; ');
}

/** Read-only roles get a UI that shows no write actions at all. */
function settingsFor(principal: Principal, body: Buffer): Buffer {
  if (can(principal.role, 'requests:manage')) return body;
  const settings = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  settings.DisableWriteActions = true;
  for (const key of Object.keys(settings))
    if (/^(Workflow\w+|BatchActions|StartWorkflow|ActivityCommands)Disabled$/.test(key)) settings[key] = true;
  return Buffer.from(JSON.stringify(settings));
}

function upstreamRequest(upstream: URL, ctx: Koa.Context, headers: http.OutgoingHttpHeaders): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: upstream.hostname.replace(/^\[|\]$/g, ''), port: upstream.port, method: ctx.method, path: ctx.req.url, headers },
      resolve,
    );
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('the Temporal UI server did not answer within 60 s')));
    if (ctx.method === 'GET' || ctx.method === 'HEAD') req.end();
    else ctx.req.pipe(req);
  });
}

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new CaError('internal', 'the Temporal UI server sent a larger page than expected');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Koa middleware serving /temporal and /temporal/* from the UI server at `upstream`. */
export function temporalUiProxy(deps: AdminDeps, upstreamUrl: string, sessionCookie: string): Koa.Middleware {
  const upstream = new URL(upstreamUrl);
  return async function temporalUi(ctx, next) {
    if (ctx.path !== TEMPORAL_UI_PATH && !ctx.path.startsWith(`${TEMPORAL_UI_PATH}/`)) return next();
    const rawPath = (ctx.req.url ?? '').split('?')[0]!;
    if (suspicious(rawPath))
      throw new CaError('malformed', 'the path has dot segments, empty segments or backslashes', { rule: 'temporalUi.path' });
    const principal = ctx.state.principal as Principal | undefined;
    const isPage = (ctx.method === 'GET' || ctx.method === 'HEAD') && !rawPath.startsWith(API) && ctx.accepts('html', 'json') === 'html';
    if (!principal) {
      if (isPage) return ctx.redirect(`/login?next=${encodeURIComponent(ctx.originalUrl)}`);
      throw new CaError('unauthorized', 'log in to the console first: the Temporal UI is only served to console sessions', {
        rule: 'auth.missing',
      });
    }
    if (principal.kind !== 'session') {
      throw new CaError(
        'unauthorized',
        'the Temporal UI is served to console sessions only, not to API tokens (use the admin API or the CLI)',
        {
          rule: 'temporalUi.token',
        },
      );
    }
    if (principal.user.mustChangePassword) {
      if (isPage) return ctx.redirect('/account');
      throw new CaError('forbidden', 'change your password first', { rule: 'auth.passwordChange' });
    }
    const requestId = ctx.state.requestId as string;
    const what = `${ctx.method} ${rawPath}`;
    if (!can(principal.role, 'requests:read')) await deny(deps, principal, 'requests:read', what, requestId);
    const access = temporalUiAccess(ctx.method, rawPath);
    if (access.kind !== 'read') {
      checkSameOrigin(ctx);
      if (access.kind === 'refused') {
        await record(deps.pool, actorOf(principal, requestId), 'access.denied', what, { reason: 'temporal-ui.action' }, 'denied');
        throw new CaError(
          'forbidden',
          'this Temporal UI action is disabled: certflow does it with its own checks and audit (console, `certflow requests|orders|approvals`)',
          { rule: 'temporalUi.action' },
        );
      }
      if (!can(principal.role, 'requests:manage')) await deny(deps, principal, 'requests:manage', what, requestId);
    }

    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(ctx.req.headers)) if (!DROP_REQUEST.has(name) && name !== 'cookie') headers[name] = value;
    const cookie = forwardedCookies(ctx.get('Cookie'), sessionCookie);
    if (cookie) headers.cookie = cookie;
    // Compressed bodies only for the immutable assets; pages and API answers may be rewritten.
    if (rawPath.startsWith(`${TEMPORAL_UI_PATH}/_app/`) && ctx.get('Accept-Encoding'))
      headers['accept-encoding'] = ctx.get('Accept-Encoding');
    let res: http.IncomingMessage;
    try {
      res = await upstreamRequest(upstream, ctx, headers);
    } catch (e) {
      throw new CaError('unavailable', `the Temporal UI server at ${upstream.host} does not answer: is it running?`, { cause: e });
    }
    if (access.kind === 'act') {
      await record(
        deps.pool,
        actorOf(principal as SessionPrincipal, requestId),
        `temporal-ui.${access.action}`,
        access.workflowId,
        { namespace: access.namespace, status: res.statusCode },
        (res.statusCode ?? 500) < 400 ? 'ok' : 'failed',
      );
    }

    ctx.status = res.statusCode ?? 502;
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !DROP_RESPONSE.has(name)) ctx.set(name, value as string | string[]);
    }
    const type = String(res.headers['content-type'] ?? '');
    if (ctx.method === 'GET' && rawPath === `${API}settings` && ctx.status === 200) {
      ctx.body = settingsFor(principal, await readAll(res, 1 << 20));
    } else if (type.startsWith('text/html') && !res.headers['content-security-policy'] && ctx.method === 'GET') {
      const page = (await readAll(res, 4 << 20)).toString('utf8');
      ctx.set('Content-Security-Policy', indexPolicy(page));
      ctx.body = page;
    } else {
      // The markdown frame (/temporal/render) sets its own sandboxing policy and is framed by the UI.
      if (res.headers['content-security-policy']) ctx.set('X-Frame-Options', 'SAMEORIGIN');
      ctx.body = res;
    }
  };
}

function checkSameOrigin(ctx: Koa.Context): void {
  const origin = ctx.get('Origin');
  if (origin && origin !== `${ctx.protocol}://${ctx.host}`) {
    throw new CaError('forbidden', `cross-origin request from ${origin} refused`, { rule: 'csrf.origin' });
  }
  if (ctx.get('Sec-Fetch-Site') === 'cross-site') throw new CaError('forbidden', 'cross-site request refused', { rule: 'csrf.origin' });
}
