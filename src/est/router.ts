/**
 * EST (RFC 7030, RFC 8951) under /.well-known/est/ and /.well-known/est/<label>/.
 * Every enrollment is an `est-<id>` workflow; this router authenticates and parses the
 * request, the registration authority (src/ra/enrollment.ts) answers from the read model
 * or starts/attaches to the workflow and waits for it, and the router renders the answer.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Pool } from 'pg';
import { getProfile, type Config, type EstLabel } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import * as cas from '../db/repos/cas.ts';
import {
  base64Body,
  buildCertsOnly,
  buildCsr,
  buildServerKeygenResponse,
  csrAttrsForProfile,
  decodeBase64Body,
  describeCertificate,
  formatDn,
  parseCsr,
  type ParsedCsr,
  type SanSet,
} from '../pki/index.ts';
import type { EstEnrollment, EstRa } from '../ra/enrollment.ts';
import { clientMayUse } from './auth.ts';
import { estError, estErrors } from './errors.ts';
import { basicIdentity, certificateIdentity, type CertTrust, type EstIdentity } from './identity.ts';

export interface EstDeps {
  config: Config;
  pool: Pool;
  /** The registration authority: the enrollment workflow and its read model. */
  ra: EstRa;
  log: Logger;
}

const MAX_BODY = 64 * 1024;
const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';

export function estRouter(deps: EstDeps): Router {
  const router = new Router({ prefix: '/.well-known/est' });
  router.use(estErrors(deps.log));
  const ops: Array<[method: 'get' | 'post', op: string, handler: (ctx: Context, label: EstLabel) => Promise<void>]> = [
    ['get', 'cacerts', (ctx, label) => cacerts(ctx, deps, label)],
    ['get', 'csrattrs', (ctx, label) => csrattrs(ctx, deps, label)],
    ['post', 'simpleenroll', (ctx, label) => simpleenroll(ctx, deps, label, 'enroll')],
    ['post', 'simplereenroll', (ctx, label) => simpleenroll(ctx, deps, label, 'reenroll')],
    ['post', 'serverkeygen', (ctx, label) => serverkeygen(ctx, deps, label)],
  ];
  for (const [method, op, handler] of ops) {
    router[method](`/${op}`, (ctx) => handler(ctx, labelOf(deps.config, '')));
    router[method](`/:label/${op}`, (ctx) => handler(ctx, labelOf(deps.config, ctx.params.label ?? '')));
  }
  return router;
}

function labelOf(config: Config, name: string): EstLabel {
  const label = config.est.labels.get(name);
  if (!label) throw new CaError('notFound', `unknown EST label "${name}"`, { rule: 'est.label' });
  return label;
}

// ---- CA certificates and CSR attributes -------------------------------------------

/** The chain a device needs to trust: the label's issuing CA up to the root (RFC 7030 4.1.3). */
async function caChain(deps: EstDeps, label: EstLabel): Promise<Uint8Array[]> {
  const profile = getProfile(deps.config, label.profile);
  const name = label.caName ?? profile.issuer ?? deps.config.ca.issuingName;
  const chain = await cas.issuingChain(deps.pool, name, { includeRoot: true });
  if (!chain.length) throw new CaError('unavailable', `CA ${name} does not exist yet`);
  return chain;
}

async function cacerts(ctx: Context, deps: EstDeps, label: EstLabel): Promise<void> {
  sendBase64(ctx, 'application/pkcs7-mime', buildCertsOnly(await caChain(deps, label)));
}

async function csrattrs(ctx: Context, deps: EstDeps, label: EstLabel): Promise<void> {
  const profile = getProfile(deps.config, label.profile);
  const der = csrAttrsForProfile({ keys: profile.keys, requireSerialNumber: profile.subject.required.includes('serialNumber') });
  sendBase64(ctx, 'application/csrattrs', der);
}

function sendBase64(ctx: Context, type: string, der: Uint8Array): void {
  ctx.status = 200;
  ctx.set('Content-Type', type);
  ctx.set('Content-Transfer-Encoding', 'base64');
  ctx.body = base64Body(der);
}

// ---- enrollment ---------------------------------------------------------------------

async function readBody(ctx: Context): Promise<Buffer> {
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > MAX_BODY) throw estError('malformed', 413, `the request body is larger than ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw estError('malformed', 413, `the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The PKCS#10 request of an enrollment: `application/pkcs10`, base64 (RFC 8951). */
async function readCsr(ctx: Context): Promise<ParsedCsr> {
  if (!ctx.is('application/pkcs10')) {
    throw estError('malformed', 415, `Content-Type must be application/pkcs10, not "${ctx.get('Content-Type') || '(none)'}"`);
  }
  return parseCsr(decodeBase64Body(await readBody(ctx)));
}

/** The issuing CAs whose certificates authenticate TLS clients at `label` (default: all of this certflow's). */
function certTrust(deps: EstDeps, label: EstLabel): CertTrust {
  return { pool: deps.pool, trusts: (caName) => label.clientCertCas === undefined || label.clientCertCas.includes(caName) };
}

/** A registered client (HTTP Basic) allowed to use `label`, or undefined without Basic credentials. */
async function basicClient(ctx: Context, deps: EstDeps, label: EstLabel): Promise<EstIdentity | undefined> {
  const basic = await basicIdentity(ctx, deps.pool);
  if (basic?.type !== 'basic') return undefined;
  if (!basic.client.enabled) throw new CaError('forbidden', `EST client "${basic.name}" is disabled`);
  if (!clientMayUse(basic.client, label.name)) {
    throw new CaError('forbidden', `EST client "${basic.name}" may not use label "${label.name || '(default)'}"`);
  }
  return basic;
}

/** Basic auth (registered client) or, where the label allows it, a TLS client certificate. */
async function enrollIdentity(ctx: Context, deps: EstDeps, label: EstLabel): Promise<EstIdentity> {
  const basic = await basicClient(ctx, deps, label);
  if (basic) return basic;
  const cert = label.allowCertAuth ? await certificateIdentity(ctx, certTrust(deps, label)) : undefined;
  if (cert) return cert;
  throw new CaError(
    'unauthorized',
    label.allowCertAuth
      ? 'EST requires authentication: HTTP Basic (registered client) or a TLS client certificate issued by this CA'
      : 'EST requires HTTP Basic authentication of a registered client',
  );
}

function sameSans(a: SanSet, b: SanSet): boolean {
  const norm = (s: SanSet) =>
    [
      ...s.dns.map((v) => `dns:${v.toLowerCase()}`),
      ...s.ip.map((v) => `ip:${v}`),
      ...s.email.map((v) => `email:${v}`),
      ...s.uri.map((v) => `uri:${v}`),
    ]
      .sort()
      .join('\n');
  return norm(a) === norm(b);
}

async function simpleenroll(ctx: Context, deps: EstDeps, label: EstLabel, kind: 'enroll' | 'reenroll'): Promise<void> {
  let identity: EstIdentity;
  let profile: string;
  let caName = label.caName;
  let replaces: string | undefined;
  if (kind === 'reenroll') {
    // RFC 7030 4.2.2: the client authenticates with the certificate it renews, which must
    // come from a CA the label trusts. Where the label does not accept certificate
    // authentication, a registered client (HTTP Basic) must vouch for it as well.
    const cert = await certificateIdentity(ctx, certTrust(deps, label));
    if (!cert || cert.type !== 'cert') {
      throw new CaError('unauthorized', 're-enrollment requires the current certificate as the TLS client certificate');
    }
    if (!label.allowCertAuth && !(await basicClient(ctx, deps, label))) {
      throw new CaError(
        'unauthorized',
        `label "${label.name || '(default)'}" does not accept certificate authentication alone: re-enrollment needs HTTP Basic of a registered client as well`,
      );
    }
    identity = cert;
    // The renewal keeps the certificate's profile and issuing CA, whatever the label's.
    profile = cert.cert.profile;
    caName = cert.cert.caName;
    replaces = cert.cert.serial;
  } else {
    identity = await enrollIdentity(ctx, deps, label);
    profile = (identity.type === 'basic' ? identity.client.profile : null) ?? label.profile;
  }
  await enrollAs(ctx, deps, label, kind, { identity, profile, caName, replaces });
}

/**
 * An (re-)enrollment of an authenticated requester: reads the CSR, checks a re-enrollment
 * keeps the identity, asks the RA and renders its answer (the handler's unit tests call it
 * with a fake RA).
 */
export async function enrollAs(
  ctx: Context,
  deps: EstDeps,
  label: EstLabel,
  kind: 'enroll' | 'reenroll',
  who: { identity: EstIdentity; profile: string; caName?: string; replaces?: string },
): Promise<void> {
  const { identity, profile, caName, replaces } = who;
  const csr = await readCsr(ctx);
  if (identity.type === 'cert' && kind === 'reenroll') {
    if (formatDn(csr.subject) !== identity.summary.subject || !sameSans(csr.sans, identity.summary.sans)) {
      throw new CaError(
        'policy',
        `re-enrollment must keep the subject and subjectAltName of the current certificate (RFC 7030 4.2.2): ` +
          `expected "${identity.summary.subject}"`,
        { rule: 'est.reenroll.identity' },
      );
    }
  }
  const requireApproval = label.requireApproval || (identity.type === 'basic' && identity.client.requireApproval);
  const outcome = await deps.ra.enroll({ ...enrollment(identity, label, kind, csr), profile, caName, replaces, requireApproval });
  if (outcome.status === 'pending') {
    ctx.status = 202;
    ctx.set('Retry-After', String(outcome.retryAfter));
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = `${outcome.message}\n`;
    return;
  }
  sendBase64(ctx, CERTS_ONLY, buildCertsOnly([outcome.certDer]));
}

/** What every enrollment tells the RA: who asks, where, what kind, for which request. */
function enrollment(identity: EstIdentity, label: EstLabel, kind: EstEnrollment['kind'], csr: ParsedCsr) {
  return { requester: { key: identity.key, name: identity.name }, label: label.name, kind, csrDer: csr.der };
}

// ---- server-side key generation (RFC 7030 4.4) ---------------------------------------

/** A new key like the one in the device's request (same type and size); P-256 otherwise. */
function generateKeyLike(csr: ParsedCsr): KeyObject {
  const k = csr.key;
  if (k.type === 'rsa') return generateKeyPairSync('rsa', { modulusLength: k.bits }).privateKey;
  if (k.type === 'ed25519') return generateKeyPairSync('ed25519').privateKey;
  const curve = k.type === 'ec' && ['P-256', 'P-384', 'P-521'].includes(k.curve) ? k.curve : 'P-256';
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

async function serverkeygen(ctx: Context, deps: EstDeps, label: EstLabel): Promise<void> {
  if (!label.serverKeygen)
    throw new CaError('forbidden', `server-side key generation is not enabled for label "${label.name || '(default)'}"`);
  const identity = await enrollIdentity(ctx, deps, label);
  const requireApproval = label.requireApproval || (identity.type === 'basic' && identity.client.requireApproval);
  if (requireApproval) {
    // The generated key exists only in this response: it cannot wait days for an operator.
    throw new CaError('forbidden', 'server-side key generation is not available where enrollments need approval');
  }
  const deviceCsr = await readCsr(ctx);
  const key = generateKeyLike(deviceCsr);
  // The certificate is for the generated key; the device's request supplies subject and SANs.
  const csr = parseCsr(buildCsr({ subject: deviceCsr.subject, sans: deviceCsr.sans, privateKey: key }));
  const profile = (identity.type === 'basic' ? identity.client.profile : null) ?? label.profile;
  const outcome = await deps.ra.enroll({
    ...enrollment(identity, label, 'serverkeygen', csr),
    profile,
    caName: label.caName,
    requireApproval: false,
    waitMs: Math.max(deps.config.est.waitSeconds, 10) * 1000,
    abandonOnTimeout: true,
  });
  if (outcome.status !== 'issued') throw new CaError('internal', 'serverkeygen enrollment ended without a certificate');
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  if (label.archiveServerKeys) {
    // Archived before it is handed out: a key the CA could not archive never leaves it.
    const serial = describeCertificate(outcome.certDer).serialHex;
    try {
      await deps.ra.archiveServerKey({ serial, requestId: outcome.requestId, pkcs8 });
    } catch (e) {
      deps.log.error({ err: e, serial, requestId: outcome.requestId }, 'key archival failed');
      throw CaError.is(e, 'unavailable')
        ? e
        : new CaError('unavailable', `the generated key could not be archived: ${errorMessage(e)}`, { cause: e });
    }
  }
  const response = buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly: buildCertsOnly([outcome.certDer]) });
  ctx.status = 200;
  ctx.set('Content-Type', response.contentType);
  ctx.body = response.body;
}
