/**
 * EST (RFC 7030, RFC 8951) under /.well-known/est/ and /.well-known/est/<label>/.
 * Every enrollment is an `est-<id>` workflow; this router authenticates and parses the
 * request, the registration authority (src/ra/enrollment.ts) answers from the read model
 * or starts/attaches to the workflow and waits for it, and the router renders the answer.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Pool } from 'pg';
import { checkCertificateEnrollmentNames, checkRenewalNames } from '../authz/certificate-names.ts';
import { certificateMayEnroll } from '../authz/client-cert-scope.ts';
import { mayRenew } from '../authz/renewal.ts';
import { getProfile, type Config, type EstLabel } from '../config/index.ts';
import { checkProfileKey } from '../config/key-limits.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import * as cas from '../db/repos/cas.ts';
import { issuingCaName } from '../ca/authority.ts';
import {
  base64Body,
  buildCertsOnly,
  buildCsr,
  buildServerKeygenResponse,
  csrAttrsForProfile,
  decodeBase64Body,
  describeCertificate,
  parseCsr,
  type ParsedCsr,
  type PublicKeyKind,
} from '../pki/index.ts';
import { generateKeyOffLoop } from '../http/cpu-pool.ts';
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

/**
 * The chain a device needs to trust: the label's issuing CA (its active key) up to the
 * root, and while that root is being rolled over, both root certificates and the two link
 * certificates (RFC 7030 4.1.3: OldWithOld, OldWithNew, NewWithOld, NewWithNew).
 */
async function caChain(deps: EstDeps, label: EstLabel): Promise<Uint8Array[]> {
  const name = issuingCaName(deps.config, label.caName, getProfile(deps.config, label.profile));
  // The active generation is read fresh; the certificates of a generation never change.
  const path = await cas.chainPath(deps.pool, name, { cached: true });
  if (!path.length) throw new CaError('unavailable', `CA ${name} does not exist yet`);
  const chain: Uint8Array[] = path.map((l) => l.certDer);
  const root = path.at(-1)!;
  const update = root.role === 'root' ? await cas.rootKeyUpdate(deps.pool, root.name) : null;
  if (update) {
    for (const c of [update.oldWithOld, update.oldWithNew, update.newWithOld, update.newWithNew]) {
      if (!chain.some((d) => Buffer.from(d).equals(c))) chain.push(c);
    }
  }
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
  const basic = await basicIdentity(ctx, deps);
  if (basic?.type !== 'basic') return undefined;
  if (!basic.client.enabled) throw new CaError('forbidden', `EST client "${basic.name}" is disabled`);
  if (!clientMayUse(basic.client, label.name)) {
    throw new CaError('forbidden', `EST client "${basic.name}" may not use label "${label.name || '(default)'}"`);
  }
  return basic;
}

/**
 * Basic auth (registered client) or, where the label allows it, a TLS client certificate of
 * a profile and protocol the label accepts (src/authz/client-cert-scope.ts); such a
 * certificate asks for its own names only (checked on the request by the caller).
 */
async function enrollIdentity(ctx: Context, deps: EstDeps, label: EstLabel): Promise<EstIdentity> {
  const basic = await basicClient(ctx, deps, label);
  if (basic) return basic;
  const cert = label.allowCertAuth ? await certificateIdentity(ctx, certTrust(deps, label)) : undefined;
  if (cert) {
    certificateMayEnroll(cert.cert, {
      place: `label "${label.name || '(default)'}"`,
      profiles: label.clientCertProfiles,
      protocols: label.clientCertProtocols,
    });
    return cert;
  }
  throw new CaError(
    'unauthorized',
    label.allowCertAuth
      ? 'EST requires authentication: HTTP Basic (registered client) or a TLS client certificate issued by this CA'
      : 'EST requires HTTP Basic authentication of a registered client',
  );
}

/** The profile of a request: the registered client's, else the label's. */
function profileFor(identity: EstIdentity | undefined, label: EstLabel): string {
  return (identity?.type === 'basic' ? identity.client.profile : null) ?? label.profile;
}

/** Approval: where the label or the registered client asks for it. */
function approvalFor(identity: EstIdentity | undefined, label: EstLabel): boolean {
  return label.requireApproval || (identity?.type === 'basic' && identity.client.requireApproval);
}

async function simpleenroll(ctx: Context, deps: EstDeps, label: EstLabel, kind: 'enroll' | 'reenroll'): Promise<void> {
  let identity: EstIdentity;
  /** The registered client whose profile and approval apply (reenroll: the one that co-authenticates). */
  let client: EstIdentity | undefined;
  let replaces: string | undefined;
  if (kind === 'reenroll') {
    // RFC 7030 4.2.2: the client authenticates with the certificate it renews; it renews
    // only certificates issued through this label (or those it names in reenrollLabels).
    // Where the label does not accept certificate authentication alone, a registered client
    // (HTTP Basic) must vouch for it as well; its profile and approval apply.
    const cert = await certificateIdentity(ctx, certTrust(deps, label));
    if (!cert) throw new CaError('unauthorized', 're-enrollment requires the current certificate as the TLS client certificate');
    client = await basicClient(ctx, deps, label);
    if (!label.allowCertAuth && !client) {
      throw new CaError(
        'unauthorized',
        `label "${label.name || '(default)'}" does not accept certificate authentication alone: re-enrollment needs HTTP Basic of a registered client as well`,
      );
    }
    mayRenew(cert.cert, { protocol: 'est', name: label.name, from: label.reenrollLabels });
    identity = cert;
    replaces = cert.cert.serial;
  } else {
    identity = await enrollIdentity(ctx, deps, label);
    client = identity;
  }
  await enrollAs(ctx, deps, label, kind, { identity, client, replaces });
}

/**
 * An (re-)enrollment of an authenticated requester: reads the CSR, checks the names a
 * certificate holder may ask for, asks the RA and renders its answer (the handler's unit
 * tests call it with a fake RA). `client`: the registered client whose profile and approval
 * apply.
 */
export async function enrollAs(
  ctx: Context,
  deps: EstDeps,
  label: EstLabel,
  kind: 'enroll' | 'reenroll',
  who: { identity: EstIdentity; client?: EstIdentity; replaces?: string },
): Promise<void> {
  const { identity, client, replaces } = who;
  const csr = await readCsr(ctx);
  if (identity.type === 'cert') {
    if (kind === 'reenroll') checkRenewalNames(csr, identity.summary, 'a re-enrollment');
    else checkCertificateEnrollmentNames(csr, identity.summary);
  }
  const outcome = await deps.ra.enroll({
    ...enrollment(identity, label, kind, csr),
    profile: profileFor(client, label),
    caName: label.caName,
    replaces,
    requireApproval: approvalFor(client, label),
  });
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

/** The key to generate for a device's request: the same type and size; P-256 for an EC curve this CA does not generate. */
function keyLike(csr: ParsedCsr): PublicKeyKind {
  const k = csr.key;
  if (k.type === 'ec' && !['P-256', 'P-384', 'P-521'].includes(k.curve)) return { type: 'ec', curve: 'P-256' };
  return k;
}

async function serverkeygen(ctx: Context, deps: EstDeps, label: EstLabel): Promise<void> {
  if (!label.serverKeygen)
    throw new CaError('forbidden', `server-side key generation is not enabled for label "${label.name || '(default)'}"`);
  const identity = await enrollIdentity(ctx, deps, label);
  if (approvalFor(identity, label)) {
    // The generated key exists only in this response: it cannot wait days for an operator.
    throw new CaError('forbidden', 'server-side key generation is not available where enrollments need approval');
  }
  const deviceCsr = await readCsr(ctx);
  if (identity.type === 'cert') checkCertificateEnrollmentNames(deviceCsr, identity.summary);
  // The profile's key limits are checked before any work: a request for an RSA-16384 key
  // must not buy minutes of key generation only to be refused afterwards.
  const profile = profileFor(identity, label);
  const kind = keyLike(deviceCsr);
  checkProfileKey(kind, getProfile(deps.config, profile));
  const key = await generateKeyOffLoop(kind);
  // The certificate is for the generated key; the device's request supplies subject and SANs.
  const csr = parseCsr(buildCsr({ subject: deviceCsr.subject, sans: deviceCsr.sans, privateKey: key }));
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
