/**
 * Enrollments (the enrollment workflow): operator `certflow cert issue`, the server's own
 * certificates, and EST. Starts or attaches to the request's workflow and waits for its
 * result with a deadline; an EST enrollment is found again by its id (derived from who
 * asks and the request's bytes), answered from the read model once it has ended, given up
 * (serverkeygen) when it is not ready in time, and its generated key archived.
 */
import type { Pool } from 'pg';
import { createHash, constants as cryptoConstants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { abandonUpdate, WORKFLOWS, type EnrollmentInput, type EnrollmentResult } from '../../workflows/api.ts';
import { getProfile, type Config } from '../config/index.ts';
import { CaError, ERROR_CONTRACT, isErrorKind, toCaError } from '../core/errors.ts';
import { derivedId } from '../core/ids.ts';
import { archiveAad } from '../core/key-archive.ts';
import type { Logger } from '../core/logger.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as keyArchive from '../db/repos/key-archive.ts';
import * as requests from '../db/repos/requests.ts';
import { pemDecodeAll } from '../pki/index.ts';
import { withDeadline } from '../temporal/client.ts';
import { usableIssuingCa } from './ca-references.ts';
import { executeUpdate, refusal, startOrAttach, type RaTemporal } from './workflow.ts';

type IssuanceConfig = Pick<Config, 'temporal'> & Partial<Pick<Config, 'issuance'>>;

/** An operator's or the server's own request: `operator-<request id>`. */
export type IssueRequest = EnrollmentInput & { protocol: 'operator' | 'est' };

/** Starts the request's enrollment workflow, or attaches to the run that has its id (also an ended one). */
function startEnrollment(ra: RaTemporal & { config: IssuanceConfig }, req: IssueRequest) {
  const issuance = ra.config.issuance;
  const input: EnrollmentInput = {
    ...req,
    faultRetrySeconds:
      req.faultRetrySeconds ?? (issuance && { initial: issuance.faultRetryInitialSeconds, max: issuance.faultRetryMaxSeconds }),
  };
  return startOrAttach(ra, WORKFLOWS.enrollment, {
    key: [req.protocol, req.requestId],
    args: [input],
    search: { protocol: req.protocol, state: 'pending', account: req.requester },
  });
}

/**
 * Issues through the workflow and waits up to `timeoutMs` for the result. When no worker
 * answers in time the request stays queued in Temporal and completes once a worker runs.
 */
export async function issueAndWait(
  ra: RaTemporal & { config: IssuanceConfig },
  req: IssueRequest,
  timeoutMs: number,
): Promise<EnrollmentResult & { workflowId: string }> {
  const handle = await startEnrollment(ra, req);
  const result = await withDeadline(`the issuance workflow ${handle.workflowId}`, timeoutMs, () => handle.result()).catch((e: unknown) => {
    if (CaError.is(e, 'unavailable')) {
      throw new CaError(
        'unavailable',
        `no certificate after ${Math.round(timeoutMs / 1000)} s: is a certflow worker running on task queue ` +
          `"${ra.config.temporal.signingTaskQueue}"? The request stays queued as workflow ${handle.workflowId} and completes when one runs.`,
      );
    }
    throw e;
  });
  return { ...result, workflowId: handle.workflowId };
}

// ---- EST ------------------------------------------------------------------------------

export interface EstRaDeps extends RaTemporal {
  config: Config;
  pool: Pool;
  log: Logger;
}

/** What an EST enrollment came to: the certificate, or "send the same request again later" (202). */
export type EstOutcome =
  { status: 'issued'; certDer: Uint8Array; requestId: string } | { status: 'pending'; retryAfter: number; message: string };

export interface EstEnrollment {
  /** Who asks: `key` identifies them in the enrollment id, `name` is the requester recorded. */
  requester: { key: string; name: string };
  label: string;
  kind: 'enroll' | 'reenroll' | 'serverkeygen';
  /** The PKCS#10 request (DER) the certificate is signed for. */
  csrDer: Uint8Array;
  profile: string;
  caName?: string;
  replaces?: string;
  requireApproval: boolean;
  /** How long to wait for the certificate (default est.waitSeconds). */
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
async function enrollEst(ra: EstRaDeps, a: EstEnrollment): Promise<EstOutcome> {
  const requestHash = createHash('sha256').update(a.csrDer).digest('hex');
  let id = derivedId(`est\n${a.label}\n${a.kind}\n${a.requester.key}\n${requestHash}`);
  for (let generation = 0; ; generation++) {
    const row = await requests.get(ra.pool, id);
    if (row?.state === 'issued' && row.serial) {
      const outcome = await issued(ra, id, row.serial);
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
    return startAndWait(ra, a, id, requestHash, row);
  }
}

async function startAndWait(
  ra: EstRaDeps,
  a: EstEnrollment,
  id: string,
  requestHash: string,
  row: requests.RequestRow | null,
): Promise<EstOutcome> {
  // A CA that exists but cannot sign (revoked, expired) is named before any workflow starts.
  await usableIssuingCa(ra.pool, ra.config, `EST label "${a.label || '(default)'}"`, a.caName, getProfile(ra.config, a.profile));
  const handle = await startEnrollment(ra, {
    requestId: id,
    protocol: 'est',
    csr: Buffer.from(a.csrDer).toString('base64'),
    profile: a.profile,
    caName: a.caName,
    requester: a.requester.name,
    replaces: a.replaces,
    label: a.label,
    kind: a.kind,
    requestHash,
    requireApproval: a.requireApproval,
  });
  if (a.requireApproval && (!row || row.state === 'pending')) return awaitingApproval(id);
  const waitMs = a.waitMs ?? ra.config.est.waitSeconds * 1000;
  let result: EnrollmentResult;
  try {
    result = await withDeadline(`enrollment ${id}`, waitMs, (signal) => ra.temporal.withAbortSignal(signal, () => handle.result()));
  } catch (e) {
    if (!CaError.is(e, 'unavailable')) throw workflowFault(ra, id, e);
    if (!a.abandonOnTimeout)
      return { status: 'pending', retryAfter: 10, message: `enrollment ${id} is being processed; send the same request again` };
    result = await abandon(ra, handle.workflowId, id);
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
async function abandon(ra: EstRaDeps, workflowId: string, id: string): Promise<EnrollmentResult> {
  try {
    await executeUpdate(ra, workflowId, abandonUpdate, {
      args: [{ reason: 'the generated key was not handed out in time' }],
      updateId: `abandon-${id}`,
      what: `enrollment ${id}`,
    });
  } catch (e) {
    if ((await refusal(e)) === undefined) {
      ra.log.error({ err: e, requestId: id }, 'giving up a serverkeygen enrollment failed; its certificate may have to be revoked by hand');
      throw new CaError('unavailable', 'the certificate was not ready in time; send the request again', { cause: e });
    }
    // Refused because the enrollment has ended: it was issued just now.
    const handle = ra.temporal.workflow.getHandle<(input: EnrollmentInput) => Promise<EnrollmentResult>>(workflowId);
    return withDeadline(`enrollment ${id}`, 10_000, () => handle.result());
  }
  throw new CaError('unavailable', 'the certificate was not ready in time; send the request again (a new key will be generated)');
}

/** A workflow that failed or cannot be reached is the CA's fault: 503 + Retry-After, and a log line for the operator. */
function workflowFault(ra: EstRaDeps, id: string, e: unknown): CaError {
  const err = toCaError(e);
  if (err.kind === 'unavailable') return err;
  ra.log.error({ err: e, requestId: id }, 'EST enrollment workflow failed');
  return new CaError('unavailable', `enrollment ${id} cannot be completed right now; try again later`, { cause: e });
}

function awaitingApproval(id: string): EstOutcome {
  return {
    status: 'pending',
    retryAfter: 60,
    message: `enrollment ${id} waits for approval by an operator; send the same request again later`,
  };
}

/** The certificate of an issued enrollment, if it is still good to hand out. */
async function issued(ra: EstRaDeps, requestId: string, serial: string): Promise<EstOutcome | 'expired'> {
  const cert = await certificates.get(ra.pool, serial);
  if (!cert?.certDer) throw new CaError('internal', `certificate ${serial} of an issued enrollment is missing`);
  if (cert.status === 'revoked') {
    throw new CaError(
      'forbidden',
      `certificate ${serial} issued for this request was revoked (${cert.revocationReason ?? 'unspecified'}); enroll with a new key`,
      { rule: 'est.repeat.revoked' },
    );
  }
  if (cert.status === 'hold') {
    throw new CaError('forbidden', `certificate ${serial} issued for this request is on hold`, { rule: 'est.repeat.hold' });
  }
  if (cert.notAfter.getTime() <= Date.now()) return 'expired';
  return { status: 'issued', certDer: cert.certDer, requestId };
}

/**
 * Key archival for EST server-side key generation (RFC 7030 4.4), before the key is handed
 * out. The front end holds only the archive key's public half: the PKCS#8 is encrypted
 * with a fresh AES-256-GCM key, and that key is wrapped with RSA-OAEP-SHA256 under the
 * newest archive key (archive_keys, created by the worker's bootstrap once a label archives
 * keys). Unwrapping needs the CA key store (activities/key-archive.ts).
 */
export async function archiveServerKey(ra: { pool: Pool }, a: { serial: string; requestId: string; pkcs8: Uint8Array }): Promise<void> {
  const archive = await keyArchive.newestArchiveKey(ra.pool);
  if (!archive) {
    throw new CaError(
      'unavailable',
      'no key-archive key exists yet: a worker creates it when it starts with a label that archives server keys (archiveServerKeys); the key was not handed out',
    );
  }
  const aesKey = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
  cipher.setAAD(archiveAad(a.serial));
  const ciphertext = Buffer.concat([cipher.update(a.pkcs8), cipher.final()]);
  const tag = cipher.getAuthTag();
  const publicKey = createPublicKey({ key: archive.spki, format: 'der', type: 'spki' });
  const wrappedKey = publicEncrypt({ key: publicKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aesKey);
  aesKey.fill(0);
  await keyArchive.insertArchivedKey(ra.pool, {
    serial: a.serial,
    requestId: a.requestId,
    keyId: archive.keyId,
    wrappedKey,
    iv,
    ciphertext,
    tag,
  });
}

/** The EST RA as the front end holds it (a fake in the front end's unit tests). */
export function estRa(ra: EstRaDeps) {
  return {
    enroll: (a: EstEnrollment) => enrollEst(ra, a),
    archiveServerKey: (a: { serial: string; requestId: string; pkcs8: Uint8Array }) => archiveServerKey(ra, a),
  };
}
export type EstRa = ReturnType<typeof estRa>;
