/**
 * Koa applications of the two listeners. HTTPS carries the enrollment protocols; HTTP
 * carries what relying parties fetch without TLS (CA certificates, CRLs, OCSP) plus
 * health and metrics. Front ends reach workflows and the read model through the
 * registration authority (src/ra); they never touch CA keys.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Pool } from 'pg';
import type { Client } from '@temporalio/client';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { ping } from '../db/locks.ts';
import * as cas from '../db/repos/cas.ts';
import { parseCaFile } from '../ca/urls.ts';
import { caWarnings } from '../ra/ca-expiry.ts';
import { pemEncode } from '../pki/index.ts';
import type { Config } from '../config/index.ts';
import { estRouter } from '../est/router.ts';
import { acmeRouter } from '../acme/router.ts';
import { orderRoutes } from '../acme/orders.ts';
import { cmpRouter } from '../cmp/router.ts';
import type { CmpSigner } from '../cmp/signer.ts';
import { errorMiddleware } from './errors.ts';
import { revocationRoutes } from './revocation.ts';
import type { createMetrics } from './metrics.ts';
import type { AccountCache } from '../acme/account-cache.ts';
import { acmeRa } from '../ra/acme.ts';
import { cmpRa } from '../ra/cmp.ts';
import { estRa } from '../ra/enrollment.ts';

export interface AppDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
  log: Logger;
  metrics: ReturnType<typeof createMetrics>;
  /** ACME accounts cached in this process (optional). */
  accountCache?: AccountCache;
  /** The CMP server's protection certificate (renewed in place). */
  cmpSigner: () => CmpSigner;
}

/** CMP (RFC 9811) is served on both listeners. */
function mountCmp(app: Koa, deps: AppDeps): void {
  const cmp = cmpRouter({ config: deps.config, pool: deps.pool, ra: cmpRa(deps), log: deps.log, signer: deps.cmpSigner });
  app.use(cmp.routes()).use(cmp.allowedMethods());
}

/** Routes served on both listeners. */
function commonRoutes(deps: AppDeps): Router {
  const router = new Router();
  // /ca/<name>.crt: the certificate of the CA's first key (what the AIA of its certificates
  // names); /ca/<name>/<generation>.crt: of a later key (after a rollover).
  router.get(/^\/ca\/(.+)$/, async (ctx) => {
    const rest = ctx.path.slice('/ca/'.length);
    const pem = rest.endsWith('.pem');
    const file = parseCaFile(pem ? `${rest.slice(0, -4)}.crt` : rest, 'crt');
    const key = file ? await cas.getKeyCached(deps.pool, file.name, file.generation) : undefined;
    if (!file || !key) throw new CaError('notFound', `no CA certificate at ${ctx.path}`);
    if (pem) {
      ctx.type = 'application/x-pem-file';
      ctx.body = pemEncode('CERTIFICATE', key.certDer);
    } else {
      ctx.type = 'application/pkix-cert';
      ctx.body = Buffer.from(key.certDer);
    }
    ctx.set('Cache-Control', 'public, max-age=3600');
  });
  // 200 when every part answers; 503 with Retry-After naming the parts that do not.
  router.get('/healthz', async (ctx) => {
    const checks = await health(deps);
    const down = Object.entries(checks)
      .filter(([, c]) => c !== 'ok')
      .map(([name]) => name);
    ctx.status = down.length ? 503 : 200;
    if (down.length) ctx.set('Retry-After', '10');
    ctx.set('Cache-Control', 'no-store');
    // Warnings (a CA that expires too soon, a configured CA name that is no CA) do not make it unhealthy.
    const warnings = checks.postgres === 'ok' ? await warningsOf(deps) : [];
    ctx.body = {
      status: down.length ? 'unavailable' : 'ok',
      ...(down.length ? { down } : {}),
      checks,
      ...(warnings.length ? { warnings } : {}),
    };
  });
  return router;
}

async function health(deps: AppDeps): Promise<Record<string, string>> {
  const timeout = <T>(p: Promise<T>) =>
    Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout after 2 s')), 2000))]);
  const check = async (fn: () => Promise<unknown>) => {
    try {
      await timeout(fn());
      return 'ok';
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  };
  const [postgres, temporal] = await Promise.all([
    check(() => ping(deps.pool)),
    check(() => deps.temporal.workflowService.getSystemInfo({})),
  ]);
  return { postgres, temporal };
}

let warned: { at: number; list: string[] } | undefined;
/** The CA warnings, computed at most once a minute per process (monitoring polls /healthz). */
async function warningsOf(deps: AppDeps): Promise<string[]> {
  if (!warned || Date.now() - warned.at > 60_000) {
    const list = await caWarnings(deps.pool, deps.config).catch(() => warned?.list ?? []);
    warned = { at: Date.now(), list };
  }
  return warned.list;
}

function baseApp(deps: AppDeps, listener: string): Koa {
  const app = new Koa();
  app.proxy = deps.config.trustProxy;
  app.silent = true; // errors are logged by errorMiddleware
  app.use(deps.metrics.middleware(listener));
  app.use(errorMiddleware(deps.log));
  return app;
}

export function httpApp(deps: AppDeps): Koa {
  const app = baseApp(deps, 'http');
  const router = commonRoutes(deps);
  revocationRoutes(router, deps);
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  app.use(router.routes()).use(router.allowedMethods());
  mountCmp(app, deps);
  return app;
}

export function httpsApp(deps: AppDeps): Koa {
  const app = baseApp(deps, 'https');
  const router = commonRoutes(deps);
  const est = estRouter({ config: deps.config, pool: deps.pool, ra: estRa(deps), log: deps.log });
  app.use(router.routes()).use(router.allowedMethods());
  app.use(est.routes()).use(est.allowedMethods());
  const acmeDeps = { config: deps.config, pool: deps.pool, ra: acmeRa(deps), log: deps.log, accountCache: deps.accountCache };
  app.use(acmeRouter(acmeDeps, orderRoutes(acmeDeps)).routes());
  mountCmp(app, deps);
  return app;
}
