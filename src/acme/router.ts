/**
 * The ACME protocol shell (RFC 8555 6, 7.1, 7.2): one directory per configured alias —
 * /acme/directory for alias '' and /acme/<alias>/directory for the others — with nonces,
 * JWS verification, problem documents and the headers every response carries. Resources
 * are Routes (api.ts): the shell's own (accounts, key change, revocation, renewal info)
 * and those of orders.ts, all mounted below each directory's base.
 *
 * Absolute URLs (directory, Location, kid, the "url" a JWS must be signed for) are built as
 * https://<Host header><path>, so that a server reached under several names, or on a port
 * chosen at run time, hands every client URLs it can use. Set CERTFLOW_ACME_BASE_URL=public
 * to always use CERTFLOW_PUBLIC_HTTPS_URL instead (e.g. behind a proxy that rewrites Host);
 * a request without a usable Host header gets that one too.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { AcmeAlias, Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as accounts from '../db/repos/acme-accounts.ts';
import { accountRoutes } from './accounts.ts';
import type { AcmeAccount, AcmeDeps, AcmeDirectory, Route, ShellRoute, VerifiedRequest } from './api.ts';
import { renewalInfoRoutes } from './ari.ts';
import { verifyRequest } from './jws.ts';
import { NonceStore } from './nonce.ts';
import { secretsKey } from '../core/secrets.ts';
import { AcmeProblem, problem, problemFromError, PROBLEM_CONTENT_TYPE, termsChanged } from './problems.ts';
import { revokeRoutes } from './revoke.ts';

/** Resource paths below a directory's base, as announced in the directory (RFC 8555 7.1.1). */
const ACME_PATHS = {
  newNonce: '/new-nonce',
  newAccount: '/new-account',
  newOrder: '/new-order',
  newAuthz: '/new-authz',
  revokeCert: '/revoke-cert',
  keyChange: '/key-change',
  renewalInfo: '/renewal-info',
} as const;

export interface AcmeRouterOptions {
  /** 'host' (default, or CERTFLOW_ACME_BASE_URL): URLs from the Host header; 'public': from config.publicHttpsUrl. */
  baseUrlFrom?: 'host' | 'public';
  /** Largest accepted request body (default 128 KiB: a CSR or certificate is a few KiB). */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 128 * 1024;
/** host, host:port, [v6]:port — anything else in Host is not put into a URL. */
const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const FALLBACK = 'acme-fallback';

/** Path prefix of an alias's directory. */
function aliasPrefix(alias: Pick<AcmeAlias, 'name'>): string {
  return alias.name ? `/acme/${alias.name}` : '/acme';
}

export function makeDirectory(origin: string, alias: AcmeAlias): AcmeDirectory {
  const base = `${origin}${aliasPrefix(alias)}`;
  return { alias, base, url: (path) => `${base}${path}`, accountUrl: (id) => `${base}/acct/${id}` };
}

/** The account id in a kid, when the kid is an account URL of this directory. */
export function accountIdOfKid(dir: AcmeDirectory, kid: string): string | undefined {
  const prefix = dir.accountUrl('');
  if (!kid.startsWith(prefix)) return undefined;
  const id = kid.slice(prefix.length);
  return ACCOUNT_ID.test(id) ? id : undefined;
}

/** The directory object (RFC 8555 7.1.1, draft-aaron-acme-profiles, RFC 9773). */
export function directoryObject(dir: AcmeDirectory, config: Pick<Config, 'profiles'>) {
  const { alias } = dir;
  const profiles = Object.fromEntries(
    Object.entries(alias.profiles).map(([name, cert]) => [name, config.profiles.get(cert)?.description ?? cert]),
  );
  return {
    newNonce: dir.url(ACME_PATHS.newNonce),
    newAccount: dir.url(ACME_PATHS.newAccount),
    newOrder: dir.url(ACME_PATHS.newOrder),
    ...(alias.preAuthorization ? { newAuthz: dir.url(ACME_PATHS.newAuthz) } : {}),
    revokeCert: dir.url(ACME_PATHS.revokeCert),
    keyChange: dir.url(ACME_PATHS.keyChange),
    renewalInfo: dir.url(ACME_PATHS.renewalInfo),
    meta: {
      ...(alias.termsOfService ? { termsOfService: alias.termsOfService } : {}),
      ...(alias.website ? { website: alias.website } : {}),
      caaIdentities: alias.caaIdentities,
      externalAccountRequired: alias.eabRequired,
      profiles,
    },
  };
}

/** userActionRequired when the directory's terms changed since the account agreed (RFC 8555 7.3.3). */
export function checkTermsAgreed(alias: AcmeAlias, account: AcmeAccount): void {
  if (alias.termsOfService && account.tosAgreed !== alias.termsOfService) throw termsChanged(alias.termsOfService);
}

// ---- the shell ------------------------------------------------------------------------

interface Shell {
  deps: AcmeDeps;
  nonces: NonceStore;
  baseUrlFrom: 'host' | 'public';
  maxBodyBytes: number;
}

type Handler = (ctx: Context, dir: AcmeDirectory) => Promise<void>;

function originOf(shell: Shell, ctx: Context): string {
  const host = ctx.host;
  if (shell.baseUrlFrom === 'host' && host && HOST_HEADER.test(host)) return `https://${host}`;
  return shell.deps.config.publicHttpsUrl;
}

/** Headers a handler set before it failed do not belong to the problem response. */
function renderProblem(ctx: Context, p: AcmeProblem): void {
  for (const h of ['Location', 'Link', 'Retry-After', 'Content-Type']) ctx.remove(h);
  ctx.status = p.status;
  ctx.body = JSON.stringify(p.toJSON());
  ctx.type = PROBLEM_CONTENT_TYPE;
  for (const [name, value] of Object.entries(p.headers ?? {})) {
    if (name.toLowerCase() === 'link') ctx.append('Link', value);
    else ctx.set(name, value);
  }
}

/**
 * Every response gets a fresh Replay-Nonce (RFC 8555 6.5: clients take the next nonce from
 * the last response, errors included), Link rel="index" to its directory (7.1) and, for
 * POSTs, Cache-Control: no-store. A nonce that cannot be stored (database down) is left out
 * rather than turning an answer into an error.
 */
async function finish(shell: Shell, ctx: Context, dir: AcmeDirectory, index: boolean): Promise<void> {
  try {
    ctx.set('Replay-Nonce', await shell.nonces.issue());
  } catch (e) {
    shell.deps.log.warn({ err: e }, 'could not issue an ACME nonce');
  }
  if (index) ctx.append('Link', `<${dir.url('/directory')}>;rel="index"`);
  if (ctx.method === 'POST') ctx.set('Cache-Control', 'no-store');
}

function handle(shell: Shell, alias: AcmeAlias, fn: Handler, opts: { index?: boolean } = {}): Middleware {
  return async (ctx) => {
    const dir = makeDirectory(originOf(shell, ctx), alias);
    try {
      await fn(ctx as Context, dir);
    } catch (e) {
      // Server faults are logged (with their stack) by problemFromError; refusals here.
      const p = problemFromError(e, shell.deps.log, { acme: ctx.path, method: ctx.method });
      if (p.status < 500) shell.deps.log.info({ acme: ctx.path, status: p.status, type: p.type, detail: p.detail }, 'ACME request refused');
      renderProblem(ctx as Context, p);
    }
    await finish(shell, ctx as Context, dir, opts.index !== false);
  };
}

async function readBody(ctx: Context, max: number): Promise<Buffer> {
  const tooLarge = () => problem('malformed', `the request body is larger than ${max} bytes`, { status: 413 });
  if (Number(ctx.get('Content-Length') || 0) > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > max) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A POST's JWS, checked for the route: key form, POST-as-GET, account status and terms. */
async function verifiedPost(shell: Shell, ctx: Context, dir: AcmeDirectory, route: ShellRoute): Promise<VerifiedRequest> {
  const body = await readBody(ctx, shell.maxBodyBytes);
  const req = await verifyRequest(
    {
      // The URL as the client knows it: the directory's base (which may carry a path of the
      // public URL) followed by what comes after the alias prefix in the request.
      url: `${dir.base}${ctx.originalUrl.slice(aliasPrefix(dir.alias).length)}`,
      contentType: ctx.get('Content-Type') || undefined,
      body,
      auth: route.auth ?? 'kid',
      accountIdOf: (kid) => accountIdOfKid(dir, kid),
    },
    {
      consumeNonce: (nonce) => shell.nonces.consume(nonce),
      // An account of another directory is no account here: kids are per directory.
      findAccount: async (id) => {
        const account = await (shell.deps.accountCache?.get(id) ?? accounts.get(shell.deps.pool, id));
        return account?.alias === dir.alias.name ? account : null;
      },
    },
  );
  if (req.postAsGet && !route.postAsGet)
    throw problem('malformed', 'this resource needs a payload; POST-as-GET (empty payload) is not accepted here');
  if (!req.postAsGet && (route.method === 'GET' || route.readOnly)) {
    throw problem(
      'malformed',
      `this resource is read with ${route.method === 'GET' ? 'GET or ' : ''}POST-as-GET: the JWS payload must be empty`,
    );
  }
  if (req.account && !route.termsExempt) checkTermsAgreed(dir.alias, req.account);
  return req;
}

function mountRoute(shell: Shell, router: Router, alias: AcmeAlias, route: ShellRoute): void {
  const path = `${aliasPrefix(alias)}${route.path}`;
  const viaPost = handle(shell, alias, async (ctx, dir) => route.handler(ctx, await verifiedPost(shell, ctx, dir, route), dir));
  if (route.method === 'POST') {
    router.post(path, viaPost);
    return;
  }
  router.get(
    path,
    handle(shell, alias, (ctx, dir) => route.handler(ctx, undefined, dir)),
  );
  if (route.postAsGet) router.post(path, viaPost);
}

function mountDirectory(shell: Shell, router: Router, alias: AcmeAlias): void {
  const prefix = aliasPrefix(alias);
  router.get(
    `${prefix}/directory`,
    handle(
      shell,
      alias,
      async (ctx, dir) => {
        ctx.body = directoryObject(dir, shell.deps.config);
      },
      { index: false },
    ),
  );
  // RFC 8555 7.2: HEAD answers 200, GET 204; both must not be cached (a cached nonce is a used one).
  // The HEAD answer says Content-Length: 0. Without a length, Node's HTTP client (acme-client,
  // which asks for a nonce before every signed request) drops its keep-alive connection after
  // the answer and opens a new TLS connection for the signed request that follows.
  router.get(
    `${prefix}${ACME_PATHS.newNonce}`,
    handle(shell, alias, async (ctx) => {
      ctx.status = ctx.method === 'HEAD' ? 200 : 204;
      if (ctx.method === 'HEAD') ctx.length = 0;
      ctx.set('Cache-Control', 'no-store');
    }),
  );
}

/** Unknown resources and wrong methods below a directory, as problems (with a nonce) rather than bare 404/405. */
function mountFallback(shell: Shell, router: Router, alias: AcmeAlias): void {
  router.all(
    FALLBACK,
    `${aliasPrefix(alias)}/{*rest}`,
    handle(shell, alias, async (ctx) => {
      const allowed = new Set(
        router
          .match(ctx.path, ctx.method)
          .path.filter((l) => l.name !== FALLBACK)
          .flatMap((l) => l.methods),
      );
      if (!allowed.size) throw problem('malformed', `no ACME resource at ${ctx.path}`, { status: 404 });
      ctx.set('Allow', [...allowed].join(', '));
      throw problem('malformed', `${ctx.method} is not allowed here; use ${[...allowed].join(' or ')}`, { status: 405 });
    }),
  );
}

/**
 * Refuses what would make two resources share a URL: a resource route that the shell serves
 * already, or an alias named like the first segment of a resource path ("/acme/acct/..."
 * would be both the default directory's accounts and alias "acct").
 */
function checkRoutes(config: Config, routes: ShellRoute[]): void {
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) throw new CaError('config', `ACME route ${key} is defined twice`, { rule: 'acme.route.duplicate' });
    seen.add(key);
  }
  const reserved = new Set([...routes.map((r) => r.path), '/directory', ACME_PATHS.newNonce].map((p) => p.split('/')[1]));
  for (const name of config.acme.aliases.keys()) {
    if (reserved.has(name))
      throw new CaError('config', `ACME alias "${name}" clashes with the resource path /acme/${name}/...; rename it`, {
        rule: 'acme.alias.reserved',
      });
  }
}

/** The router of every configured ACME directory; mount with app.use(r.routes()). */
export function acmeRouter(deps: AcmeDeps, resourceRoutes: Route[], opts: AcmeRouterOptions = {}): Router {
  const shell: Shell = {
    deps,
    nonces: new NonceStore(deps.pool, {
      lifetimeSeconds: deps.config.acme.nonceLifetimeSeconds,
      secretsKey: () => secretsKey(deps.config),
      log: deps.log,
    }),
    baseUrlFrom: opts.baseUrlFrom ?? deps.config.acme.baseUrlFrom,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY,
  };
  const routes: ShellRoute[] = [...accountRoutes(deps), ...revokeRoutes(deps), ...renewalInfoRoutes(deps), ...resourceRoutes];
  checkRoutes(deps.config, routes);
  const router = new Router();
  // Named aliases first, the default directory last: its fallback (/acme/{*rest}) would
  // otherwise answer for /acme/<alias>/... paths as well.
  const aliases = [...deps.config.acme.aliases.values()].sort((a, b) => (a.name === '' ? 1 : b.name === '' ? -1 : 0));
  for (const alias of aliases) {
    mountDirectory(shell, router, alias);
    for (const route of routes) mountRoute(shell, router, alias, route);
  }
  for (const alias of aliases) mountFallback(shell, router, alias);
  return router;
}
