/**
 * CRL and OCSP endpoints. Both serve what the worker signed ahead of time (the front end
 * holds no CA key): the latest CRL per CA, and per-certificate OCSP responses (RFC 5019
 * style: no nonce, cacheable until nextUpdate).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Pool } from 'pg';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import * as cas from '../db/repos/cas.ts';
import { parseCaFile } from '../ca/urls.ts';
import * as revocation from '../db/repos/revocation.ts';
import {
  certIdMatches,
  describeCertificate,
  ocspErrorResponse,
  ocspRequestFromGetPath,
  parseOcspRequest,
  type CertSummary,
} from '../pki/index.ts';

const HASH_NAMES: Record<string, string> = { '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.1': 'sha256' };
const MAX_OCSP_REQUEST = 8 * 1024;

function cacheUntil(ctx: Context, thisUpdate: Date, nextUpdate: Date): void {
  const maxAge = Math.max(0, Math.floor((nextUpdate.getTime() - Date.now()) / 1000));
  ctx.set('Cache-Control', `public, max-age=${maxAge}, no-transform, must-revalidate`);
  ctx.set('Last-Modified', thisUpdate.toUTCString());
  ctx.set('Expires', nextUpdate.toUTCString());
}

async function readBody(ctx: Context, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new CaError('malformed', `request body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function revocationRoutes(router: Router, deps: { pool: Pool; log: Logger }): void {
  // /crl/<ca>.crl: the CRL of the CA's first key; /crl/<ca>/<generation>.crl: of a later one (after a rollover).
  router.get(/^\/crl\/(.+)$/, async (ctx) => {
    const file = parseCaFile(ctx.path.slice('/crl/'.length), 'crl');
    const key = file ? await cas.getKey(deps.pool, file.name, file.generation) : null;
    if (!file || !key?.certDer) throw new CaError('notFound', `no CRL at ${ctx.path}`);
    const crl = await revocation.latestCrl(deps.pool, file.name, file.generation, { delta: file.delta });
    if (!crl)
      throw new CaError(
        file.delta ? 'notFound' : 'unavailable',
        `the first ${file.delta ? 'delta ' : ''}CRL of ${file.name} has not been published yet`,
      );
    ctx.type = 'application/pkix-crl';
    cacheUntil(ctx, crl.thisUpdate, crl.nextUpdate);
    ctx.body = crl.der;
  });

  const answer = async (ctx: Context, der: Buffer) => {
    ctx.type = 'application/ocsp-response';
    let request;
    try {
      request = parseOcspRequest(der);
    } catch (e) {
      deps.log.info({ err: (e as Error).message }, 'malformed OCSP request');
      ctx.body = Buffer.from(ocspErrorResponse('malformedRequest'));
      return;
    }
    const certId = request.certIds[0];
    const hashAlg = certId && HASH_NAMES[certId.hashAlgorithm];
    const issuers = await issuerSummaries(deps.pool);
    const known = certId && hashAlg && issuers.some((i) => certIdMatches(certId, i));
    const stored = known ? await revocation.getOcsp(deps.pool, certId.serialHex, hashAlg) : null;
    if (!stored || request.certIds.length !== 1) {
      // RFC 5019 2.2.3: a responder without a pre-signed response answers "unauthorized".
      ctx.body = Buffer.from(ocspErrorResponse('unauthorized'));
      return;
    }
    cacheUntil(ctx, stored.thisUpdate, stored.nextUpdate);
    ctx.set('ETag', `"${stored.serial}-${stored.hashAlg}-${stored.thisUpdate.getTime()}"`);
    ctx.body = stored.der;
  };

  router.post('/ocsp', async (ctx) => {
    if (!ctx.is('application/ocsp-request')) {
      ctx.status = 415;
      ctx.body = 'Content-Type must be application/ocsp-request\n';
      return;
    }
    await answer(ctx, await readBody(ctx, MAX_OCSP_REQUEST));
  });
  // GET /ocsp/<url-encoded base64 DER> (RFC 6960 A.1); the path may contain '/'.
  router.get(/^\/ocsp\/(.+)$/, async (ctx) => {
    let der: Uint8Array;
    try {
      der = ocspRequestFromGetPath(ctx.path.slice('/ocsp/'.length));
    } catch {
      ctx.type = 'application/ocsp-response';
      ctx.body = Buffer.from(ocspErrorResponse('malformedRequest'));
      return;
    }
    await answer(ctx, Buffer.from(der));
  });
}

let cached: { at: number; list: CertSummary[] } | undefined;
/** The certificates of every CA key generation, cached briefly: OCSP is the hottest path of a CA. */
async function issuerSummaries(pool: Pool): Promise<CertSummary[]> {
  if (cached && Date.now() - cached.at < 10_000) return cached.list;
  const list = (await cas.allCertifiedKeys(pool)).map((k) => describeCertificate(k.certDer));
  cached = { at: Date.now(), list };
  return list;
}
