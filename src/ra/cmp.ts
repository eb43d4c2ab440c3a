/**
 * CMP certificate transactions (the `cmp-<transactionID hex>` workflow): the first request
 * (ir, cr, kur, p10cr) starts the workflow with Update-with-Start and gets its answer; the
 * follow-ups (certConf, a pollReq that hands the certificate out, the client's error) are
 * Updates; an ended transaction is answered from the read model.
 */
import type { Pool } from 'pg';
import {
  certConfUpdate,
  certDeliveredUpdate,
  cmpRequestUpdate,
  WORKFLOWS,
  type CertConfDecision,
  type CmpInput,
  type CmpOutcome,
  type StatusChangeInput,
} from '../../workflows/api.ts';
import { getProfile, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as requests from '../db/repos/requests.ts';
import { pemEncode } from '../pki/index.ts';
import { temporalClientSdk, withDeadline } from '../temporal/client.ts';
import { usableIssuingCa } from './ca-references.ts';
import { changeStatusAndWait } from './revocation.ts';
import { executeUpdate, refusal, startOperation, type RaTemporal } from './workflow.ts';

export interface CmpRaDeps extends RaTemporal {
  config: Config;
  pool: Pool;
}

/** The request id (and workflow id) of the certificate transaction with this transactionID. */
function cmpRequestId(transactionIdHex: string): string {
  return WORKFLOWS.cmp.id(transactionIdHex);
}

const waitMs = (ra: CmpRaDeps) => ra.config.cmp.waitSeconds * 1000;

/** Starts the transaction's workflow (or attaches to it) and waits for its answer. */
async function requestCertificate(ra: CmpRaDeps, input: CmpInput): Promise<CmpOutcome> {
  await usableIssuingCa(
    ra.pool,
    ra.config,
    `CMP alias "${input.alias || '(default)'}"`,
    input.caName,
    getProfile(ra.config, input.profile),
  );
  const start = await startOperation(ra, WORKFLOWS.cmp, {
    key: [input.transactionId],
    args: [input],
    search: { protocol: 'cmp', state: 'pending', account: input.requester },
  });
  try {
    return await withDeadline(`CMP transaction ${input.requestId}`, waitMs(ra), () =>
      ra.temporal.workflow.executeUpdateWithStart(cmpRequestUpdate, { startWorkflowOperation: start }),
    );
  } catch (e) {
    if (CaError.is(e, 'unavailable')) return { status: 'waiting', reason: 'the certificate is being issued; poll for it' };
    if (e instanceof (await temporalClientSdk()).WorkflowExecutionAlreadyStartedError) return outcomeFromReadModel(ra, input.requestId);
    throw e;
  }
}

/** The answer of a transaction whose workflow has finished (or a poll), from the read model. */
async function outcomeFromReadModel(ra: CmpRaDeps, requestId: string): Promise<CmpOutcome> {
  const row = await requests.get(ra.pool, requestId);
  if (!row) return { status: 'waiting', reason: 'the request is being processed' };
  switch (row.state) {
    case 'pending':
    case 'signing':
      return { status: 'waiting', reason: 'the certificate is being issued; poll for it' };
    case 'awaiting-approval':
      return { status: 'waiting', reason: 'the request waits for approval by an operator' };
    case 'failed':
      return { status: 'rejected', kind: 'policy', message: row.error ?? 'refused by the CA' };
    case 'rejected':
      return { status: 'rejected', kind: 'forbidden', message: row.error ?? 'rejected by an operator' };
    case 'revoked':
      return { status: 'rejected', kind: 'conflict', message: row.error ?? 'the certificate was revoked', rule: 'cmp.certRevoked' };
    default: {
      const cert = row.serial ? await certificates.get(ra.pool, row.serial) : null;
      if (!cert?.certDer) return { status: 'waiting', reason: 'the certificate is being issued; poll for it' };
      const chain = await cas.issuingChainCached(ra.pool, cert.caName, { generation: cert.caGeneration });
      return {
        status: 'issued',
        implicitConfirm: row.state === 'confirmed',
        serial: cert.serial,
        caName: cert.caName,
        caGeneration: cert.caGeneration,
        certPem: pemEncode('CERTIFICATE', cert.certDer),
        chainPem: chain.map((d) => pemEncode('CERTIFICATE', d)).join(''),
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
      };
    }
  }
}

/** The request and certificate of a transaction (read model). */
async function transactionCertificate(ra: CmpRaDeps, requestId: string) {
  const request = await requests.get(ra.pool, requestId);
  const cert = request?.serial ? await certificates.get(ra.pool, request.serial) : null;
  return { request, cert };
}

/**
 * The root a certificate of the CA's `generation` chains to (caPubs of an ir under MAC
 * protection, RFC 9483 4.1.1): after a rollover under a new root, a certificate answered
 * from the read model still names its own root. The certificates of a generation never
 * change (cached); without a generation (a result recorded before outcomes carried it), the
 * active one is read fresh.
 */
async function rootOf(ra: CmpRaDeps, caName: string, generation: number | undefined): Promise<Uint8Array | undefined> {
  const chain = await cas.issuingChainCached(ra.pool, caName, { includeRoot: true, generation });
  return chain.at(-1);
}

/**
 * The client's certConf (or its error message, as a rejection). The workflow refuses it
 * unless the certificate waits for confirmation; the refusal says why, from the read model.
 */
async function confirm(ra: CmpRaDeps, requestId: string, serial: string, decision: CertConfDecision, updateId: string) {
  try {
    await executeUpdate(ra, requestId, certConfUpdate, {
      args: [decision],
      updateId,
      what: `CMP transaction ${requestId}`,
      deadlineMs: waitMs(ra),
    });
  } catch (e) {
    if (CaError.is(e, 'unavailable'))
      throw new CaError('unavailable', 'the CA did not take the confirmation in time; send the certConf again');
    const now = await requests.get(ra.pool, requestId);
    if (now?.state === 'revoked')
      throw new CaError('conflict', `the certificate ${serial} was not confirmed in time and has been revoked`, {
        rule: 'cmp.certRevoked',
      });
    if (now?.state === 'confirmed')
      throw new CaError('conflict', `the certificate ${serial} is confirmed already`, { rule: 'cmp.certConfirmed' });
    const refused = await refusal(e);
    if (refused !== undefined) throw new CaError('conflict', refused, { rule: 'cmp.request' });
    throw e;
  }
}

/** The certificate was handed out on a pollReq: the confirmation period starts again. Refusals are returned, not thrown. */
async function delivered(ra: CmpRaDeps, requestId: string, updateId: string): Promise<string | undefined> {
  try {
    await executeUpdate(ra, requestId, certDeliveredUpdate, {
      args: [],
      updateId,
      what: `CMP transaction ${requestId}`,
      deadlineMs: waitMs(ra),
    });
    return undefined;
  } catch (e) {
    if (CaError.is(e, 'unavailable')) throw e;
    return e instanceof Error ? e.message : String(e);
  }
}

/** The CMP RA as the front end holds it (a fake in the front end's unit tests). */
export function cmpRa(ra: CmpRaDeps) {
  return {
    requestId: cmpRequestId,
    requestCertificate: (input: CmpInput) => requestCertificate(ra, input),
    outcome: (requestId: string) => outcomeFromReadModel(ra, requestId),
    transactionCertificate: (requestId: string) => transactionCertificate(ra, requestId),
    rootOf: (caName: string, generation: number | undefined) => rootOf(ra, caName, generation),
    /** A certificate this CA issued, with the label or alias it came through (rr names it). */
    certificate: (serial: string) => certificates.getWithOrigin(ra.pool, serial),
    confirm: (requestId: string, serial: string, decision: CertConfDecision, updateId: string) =>
      confirm(ra, requestId, serial, decision, updateId),
    delivered: (requestId: string, updateId: string) => delivered(ra, requestId, updateId),
    /** rr: the revocation workflow. */
    revoke: (input: StatusChangeInput) => changeStatusAndWait(ra, input, waitMs(ra)),
  };
}
export type CmpRa = ReturnType<typeof cmpRa>;
