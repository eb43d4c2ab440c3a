/**
 * EST (RFC 7030, RFC 8951) under /.well-known/est/ and /.well-known/est/<label>/.
 * Every enrollment is an `est-<id>` workflow; this router authenticates, parses, and
 * either answers from the read model or starts/attaches to the workflow and waits for it.
 */
import Router from '@koa/router';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Context } from 'koa';
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { checkCertificateEnrollmentNames, checkRenewalNames } from '../authz/certificate-names.ts';
import { certificateMayEnroll } from '../authz/client-cert-scope.ts';
import { mayRenew } from '../authz/renewal.ts';
import { getProfile, type Config, type EstLabel } from '../config/index.ts';
import { checkProfileKey } from '../config/key-limits.ts';
import { CaError, ERROR_CONTRACT, errorMessage, isErrorKind, toCaError } from '../core/errors.ts';
import { derivedId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as requests from '../db/repos/requests.ts';
import {
  base64Body,
  buildCertsOnly,
  buildCsr,
  buildServerKeygenResponse,
  csrAttrsForProfile,
  decodeBase64Body,
  describeCertificate,
  parseCsr,
  pemDecodeAll,
  type ParsedCsr,
  type PublicKeyKind,
} from '../pki/index.ts';
import { abandonUpdate, type EnrollmentResult } from '../../workflows/index.ts';
import { generateKeyOffLoop } from '../http/cpu-pool.ts';
import { withDeadline } from '../temporal/client.ts';
import { startIssuance } from '../temporal/issuance.ts';
import { archiveKey } from './archive.ts';
import { clientMayUse } from './auth.ts';
import { estError, estErrors } from './errors.ts';
import { basicIdentity, certificateIdentity, type CertTrust, type EstIdentity } from './identity.ts';

export interface EstDeps {
  config: Config;
  pool: Pool;
  temporal: Client;
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
  const csr = await readCsr(ctx);
  if (identity.type === 'cert') {
    if (kind === 'reenroll') checkRenewalNames(csr, identity.summary, 'a re-enrollment');
    else checkCertificateEnrollmentNames(csr, identity.summary);
  }
  const outcome = await enrollThroughWorkflow(deps, {
    identity,
    label,
    kind,
    csr,
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

type Outcome = { status: 'issued'; certDer: Uint8Array; requestId: string } | { status: 'pending'; retryAfter: number; message: string };

interface EnrollArgs {
  identity: EstIdentity;
  label: EstLabel;
  kind: string;
  csr: ParsedCsr;
  profile: string;
  caName?: string;
  replaces?: string;
  requireApproval: boolean;
  waitMs?: number;
  /** serverkeygen: the key exists only in this request; give the enrollment up when it is not ready in time. */
  abandonOnTimeout?: boolean;
}

/**
 * The enrollment's id is derived from who asks, where, and the request's bytes: a device
 * that re-sends the same CSR while it polls (RFC 7030 4.2.3) finds its enrollment again.
 * A repeated request never returns a certificate that was revoked or put on hold since
 * (403); one that expired starts a new enrollment (its id also covers the expired serial).
 */
async function enrollThroughWorkflow(deps: EstDeps, a: EnrollArgs): Promise<Outcome> {
  const requestHash = createHash('sha256').update(a.csr.der).digest('hex');
  let id = derivedId(`est\n${a.label.name}\n${a.kind}\n${a.identity.key}\n${requestHash}`);
  for (let generation = 0; ; generation++) {
    const row = await requests.get(deps.pool, id);
    if (row?.state === 'issued' && row.serial) {
      const outcome = await issued(deps, id, row.serial);
      if (outcome !== 'expired') return outcome;
      if (generation >= 10) throw new CaError('conflict', `enrollment ${id} was renewed too often with the same request; make a new one`);
      id = derivedId(`${id}\n${row.serial}`);
      continue;
    }
    if (row?.state === 'failed') throw new CaError('policy', `the CA refused the request: ${row.error ?? 'policy'}`);
    if (row?.state === 'rejected') throw new CaError('forbidden', `the enrollment was ${row.error ?? 'rejected'}`);
    if (row?.state === 'abandoned')
      throw new CaError('conflict', `enrollment ${id} was given up: ${row.error ?? 'abandoned'}; make a new request`);
    if (row?.state === 'awaiting-approval') return awaitingApproval(id);
    if (row?.state === 'stalled') {
      // A server fault (HSM, CA key, database): the request is kept and signed once it is fixed.
      throw new CaError('unavailable', `enrollment ${id} is kept, but the CA cannot sign it right now; send the same request again later`, {
        details: { retryAfterSeconds: 60 },
      });
    }
    return startAndWait(deps, a, id, requestHash, row);
  }
}

async function startAndWait(
  deps: EstDeps,
  a: EnrollArgs,
  id: string,
  requestHash: string,
  row: requests.RequestRow | null,
): Promise<Outcome> {
  const handle = await startIssuance(deps.temporal, deps.config, {
    requestId: id,
    protocol: 'est',
    csr: Buffer.from(a.csr.der).toString('base64'),
    profile: a.profile,
    caName: a.caName,
    requester: a.identity.name,
    replaces: a.replaces,
    label: a.label.name,
    kind: a.kind,
    requestHash,
    requireApproval: a.requireApproval,
  });
  if (a.requireApproval && (!row || row.state === 'pending')) return awaitingApproval(id);
  const waitMs = a.waitMs ?? deps.config.est.waitSeconds * 1000;
  let result: EnrollmentResult;
  try {
    result = await withDeadline(`enrollment ${id}`, waitMs, (signal) => deps.temporal.withAbortSignal(signal, () => handle.result()));
  } catch (e) {
    if (!CaError.is(e, 'unavailable')) throw workflowFault(deps, id, e);
    if (!a.abandonOnTimeout)
      return { status: 'pending', retryAfter: 10, message: `enrollment ${id} is being processed; send the same request again` };
    result = await abandon(deps, handle, id);
  }
  if (result.status === 'rejected') {
    const kind = isErrorKind(result.kind) ? result.kind : 'policy';
    throw new CaError(kind, ERROR_CONTRACT[kind].fault === 'requester' ? `the CA refused the request: ${result.message}` : result.message);
  }
  const certDer = pemDecodeAll(result.certPem)[0]!.der;
  return { status: 'issued', certDer, requestId: id };
}

/**
 * serverkeygen that was not signed in time: the generated key is about to be thrown away,
 * so the enrollment is given up (a certificate signed meanwhile is revoked by the
 * workflow). If it completed in the meantime, its result is used after all.
 */
async function abandon(deps: EstDeps, handle: Awaited<ReturnType<typeof startIssuance>>, id: string): Promise<EnrollmentResult> {
  try {
    await withDeadline(`enrollment ${id}`, 10_000, (signal) =>
      deps.temporal.withAbortSignal(signal, () =>
        handle.executeUpdate(abandonUpdate, {
          args: [{ reason: 'the generated key was not handed out in time' }],
          updateId: `abandon-${id}`,
        }),
      ),
    );
  } catch (e) {
    if (!(e instanceof WorkflowUpdateFailedError)) {
      deps.log.error(
        { err: e, requestId: id },
        'giving up a serverkeygen enrollment failed; its certificate may have to be revoked by hand',
      );
      throw new CaError('unavailable', 'the certificate was not ready in time; send the request again', { cause: e });
    }
    // Refused because the enrollment has ended: it was issued just now.
    return (await withDeadline(`enrollment ${id}`, 10_000, () => handle.result())) as EnrollmentResult;
  }
  throw new CaError('unavailable', 'the certificate was not ready in time; send the request again (a new key will be generated)');
}

/** A workflow that failed or cannot be reached is the CA's fault: 503 + Retry-After, and a log line for the operator. */
function workflowFault(deps: EstDeps, id: string, e: unknown): CaError {
  const err = toCaError(e);
  if (err.kind === 'unavailable') return err;
  deps.log.error({ err: e, requestId: id }, 'EST enrollment workflow failed');
  return new CaError('unavailable', `enrollment ${id} cannot be completed right now; try again later`, { cause: e });
}

function awaitingApproval(id: string): Outcome {
  return {
    status: 'pending',
    retryAfter: 60,
    message: `enrollment ${id} waits for approval by an operator; send the same request again later`,
  };
}

/** The certificate of an issued enrollment, if it is still good to hand out. */
async function issued(deps: EstDeps, requestId: string, serial: string): Promise<Outcome | 'expired'> {
  const cert = await certificates.get(deps.pool, serial);
  if (!cert?.certDer) throw new CaError('internal', `certificate ${serial} of an issued enrollment is missing`);
  if (cert.status === 'revoked') {
    throw new CaError(
      'forbidden',
      `certificate ${serial} issued for this request was revoked (${cert.revocationReason ?? 'unspecified'}); enroll with a new key`,
      {
        rule: 'est.repeat.revoked',
      },
    );
  }
  if (cert.status === 'hold') {
    throw new CaError('forbidden', `certificate ${serial} issued for this request is on hold`, { rule: 'est.repeat.hold' });
  }
  if (cert.notAfter.getTime() <= Date.now()) return 'expired';
  return { status: 'issued', certDer: cert.certDer, requestId };
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
  const outcome = await enrollThroughWorkflow(deps, {
    identity,
    label,
    kind: 'serverkeygen',
    csr,
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
      await archiveKey(deps.pool, { serial, requestId: outcome.requestId, pkcs8 });
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
