/**
 * One CMP certificate transaction (`cmp-<transactionID hex>`): ir, cr, kur or p10cr ->
 * policy and (where the alias or client wants it) an operator's approval -> the signing
 * activity -> the client's certConf, or implicit confirmation. A certificate that is not
 * confirmed in time, or that the client rejects, is revoked through the revocation
 * workflow (RFC 9810 5.3.18). A kur's old certificate is revoked (superseded) once the new
 * one is confirmed, where the alias says so.
 *
 * The front end creates the workflow with Update-with-Start (`request`), whose result is
 * the answer the client gets: the certificate, "waiting" (approval; the client polls with
 * pollReq, answered from the read model), or a rejection. certConf is an Update with a
 * validator, so only a transaction waiting for confirmation takes one.
 */
import {
  ApplicationFailure,
  condition,
  executeChild,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  IssuedCertificate,
  RequestProjection,
  RequestState,
  SigningActivities,
  StatusChangeInput,
  StorageActivities,
} from '../activities/types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import {
  certConfUpdate,
  certDeliveredUpdate,
  cmpRequestUpdate,
  signingTaskQueue,
  WORKFLOWS,
  type CertConfDecision,
  type CmpInput,
  type CmpOutcome,
  type Decision,
} from './api.ts';
import { onDecision, onRetry } from './enrollment.ts';
import {
  ENROLLMENT_SIGNING_OPTIONS,
  LOCAL_ENROLLMENT_SIGNING_OPTIONS,
  REQUESTER_ERROR_TYPES,
  STORAGE_ACTIVITY_OPTIONS,
  STORAGE_AFTER_UPDATE_OPTIONS,
} from './options.ts';
import { localWorkVersion } from './local-work.ts';
import { applicationFailure, faultText, isActivityFailure } from './failures.ts';
import { revocationWorkflow } from './revocation.ts';

const storage = proxyLocalActivities<StorageActivities>(STORAGE_ACTIVITY_OPTIONS);
const storageAfterUpdate = proxyActivities<StorageActivities>(STORAGE_AFTER_UPDATE_OPTIONS);

export async function cmpWorkflow(input: CmpInput): Promise<CmpOutcome> {
  const { workflowId, taskQueue } = workflowInfo();
  // On the signing queue (new runs since issue 18) the worker running this workflow holds the
  // CA keys: signing is a local activity in the workflow task that needs the certificate (a
  // task lost after its commit runs again; the activity returns the stored certificate).
  // Since the third round (patch 'cmp-projections-in-signing', which implies local signing)
  // the signing activity also writes the projections of its task (below).
  const version = localWorkVersion(['cmp-projections-in-signing', 'cmp-sign-in-workflow-task']);
  const local = version !== undefined;
  const signing = local
    ? proxyLocalActivities<SigningActivities>(LOCAL_ENROLLMENT_SIGNING_OPTIONS)
    : proxyActivities<SigningActivities>({ ...ENROLLMENT_SIGNING_OPTIONS, taskQueue: signingTaskQueue(taskQueue) });
  const base: Omit<RequestProjection, 'state'> = {
    id: input.requestId,
    protocol: 'cmp',
    workflowId,
    profile: input.profile,
    csr: input.request,
    requester: input.requester,
    label: input.alias,
    kind: input.bodyType,
    requestHash: input.requestHash,
    replaces: input.replaces,
  };

  let state: RequestState = 'pending';
  let outcome: CmpOutcome | undefined;
  let decision: Decision | undefined;
  let confirmation: CertConfDecision | undefined;
  let deliveries = 0;

  setHandler(cmpRequestUpdate, async () => {
    await condition(() => outcome !== undefined);
    return outcome!;
  });
  onDecision(
    input.requestId,
    () => state,
    (d) => (decision = d),
  );
  let retryRequested = false;
  onRetry(
    input.requestId,
    () => state,
    () => (retryRequested = true),
  );
  const awaitingConfirmation = (..._args: unknown[]) => {
    if (state !== 'issued' || input.implicitConfirm || confirmation) {
      throw ApplicationFailure.nonRetryable(
        `transaction ${input.transactionId} is ${state}${confirmation ? ' (confirmed already)' : ''}, not waiting for certConf`,
        'conflict',
      );
    }
  };
  setHandler(
    certConfUpdate,
    (c) => {
      confirmation = c;
      return { state: c.accepted ? 'confirmed' : 'revoked' };
    },
    { validator: (c: CertConfDecision) => awaitingConfirmation(c) },
  );
  setHandler(
    certDeliveredUpdate,
    () => {
      deliveries++;
      return { state };
    },
    { validator: () => awaitingConfirmation() },
  );

  async function transition(s: RequestState, details: string, lastError?: string): Promise<void> {
    state = s;
    upsertSearchAttributes(searchAttributes({ protocol: 'cmp', state: s, account: input.requester, lastError }));
    setCurrentDetails(`**${s}** — ${details}`);
  }

  let afterUpdate = false;
  if (input.requireApproval) {
    await transition(
      'awaiting-approval',
      `waiting for an operator: \`certflow approvals approve ${input.requestId}\` or \`reject\`; the client polls`,
    );
    await storage.projectRequest({ ...base, state });
    outcome = { status: 'waiting', reason: 'the request waits for approval by an operator' };
    const decided = await condition(() => decision !== undefined, input.approvalTimeout ?? '30 days');
    const d: Decision = decided ? decision! : { approve: false, by: 'timeout', reason: 'no decision within the approval period' };
    const decisionFields = { decidedBy: d.by, decidedAt: new Date().toISOString() };
    if (!d.approve) {
      const message = `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
      await transition('rejected', message, message);
      await storageAfterUpdate.projectRequest({ ...base, ...decisionFields, state, error: message });
      outcome = { status: 'rejected', kind: 'forbidden', message };
      return outcome;
    }
    Object.assign(base, decisionFields);
    afterUpdate = true;
  }

  await transition('signing', `waiting for the signing activity on ${signingTaskQueue(taskQueue)}`);
  // Signing in the first task: the signing activity writes the `signing` projection and the
  // one after it (confirmed, or issued while certConf is awaited) itself, one local activity
  // instead of three, as in enrollment.ts. Not after an Update (approval, retry).
  let projectedBySigning = version === 'cmp-projections-in-signing' && !afterUpdate;
  if (!projectedBySigning) await (afterUpdate ? storageAfterUpdate : storage).projectRequest({ ...base, state });
  let cert: IssuedCertificate;
  for (let delay = input.faultRetrySeconds?.initial ?? 30; ; delay = Math.min(delay * 2, input.faultRetrySeconds?.max ?? 900)) {
    try {
      cert = await signing.issueCertificate({
        requestId: input.requestId,
        protocol: 'cmp',
        csr: input.request,
        requestFormat: input.requestFormat,
        profile: input.profile,
        caName: input.caName,
        requester: input.requester,
        replaces: input.replaces,
        ...(projectedBySigning
          ? {
              project: {
                workflowId,
                label: input.alias,
                kind: input.bodyType,
                requestHash: input.requestHash,
                final: input.implicitConfirm ? 'confirmed' : 'issued',
              },
            }
          : {}),
      });
      break;
    } catch (err) {
      const app = applicationFailure(err);
      if (app && REQUESTER_ERROR_TYPES.includes(app.type ?? '')) {
        await transition('failed', `refused: ${app.message}`, app.message);
        await storage.projectRequest({ ...base, state, error: app.message });
        const rule = (app.details?.[0] as { rule?: string } | undefined)?.rule;
        outcome = { status: 'rejected', kind: app.type ?? 'policy', message: app.message, ...(rule ? { rule } : {}) };
        return outcome;
      }
      if (!isActivityFailure(err) || !patched('cmp-stall-on-server-fault')) throw err;
      // A server fault (HSM gone, CA key missing): as in enrollment.ts, the transaction stays
      // open and visible as stalled, the client polls, and signing is tried again after a
      // backoff or at once on `certflow requests retry`.
      projectedBySigning = false;
      const fault = `${app?.type ?? 'signing'}: ${faultText(err)}`;
      await transition(
        'stalled',
        `signing failed (${fault}); next attempt in ${delay} s or on \`certflow requests retry ${input.requestId}\``,
        fault,
      );
      await storage.projectRequest({ ...base, state, error: fault });
      outcome ??= { status: 'waiting', reason: 'the CA cannot sign right now and tries again; poll for the certificate' };
      retryRequested = false;
      await condition(() => retryRequested, delay * 1000);
      await transition('signing', `signing again after: ${fault}`);
      await storageAfterUpdate.projectRequest({ ...base, state, error: fault });
    }
  }

  if (input.implicitConfirm) {
    await transition('confirmed', `issued certificate ${cert.serial} (implicit confirmation)`);
    if (!projectedBySigning) await storage.projectRequest({ ...base, state, serial: cert.serial });
    outcome = { status: 'issued', implicitConfirm: true, ...cert };
    await revokeReplaced();
    return outcome;
  }

  await transition('issued', `issued certificate ${cert.serial}; waiting up to ${input.confirmTimeout} for certConf`);
  if (!projectedBySigning) await storage.projectRequest({ ...base, state, serial: cert.serial });
  outcome = { status: 'issued', implicitConfirm: false, ...cert };

  let seen = deliveries;
  for (;;) {
    const got = await condition(() => confirmation !== undefined || deliveries !== seen, input.confirmTimeout);
    if (!got) break;
    if (confirmation) break;
    seen = deliveries;
  }
  const conf = confirmation as CertConfDecision | undefined;
  if (conf?.accepted) {
    await transition('confirmed', `certificate ${cert.serial} confirmed by the client`);
    await storageAfterUpdate.projectRequest({ ...base, state, serial: cert.serial });
    await revokeReplaced();
    return outcome;
  }
  const why = conf ? `rejected by the client${conf.reason ? `: ${conf.reason}` : ''}` : `not confirmed within ${input.confirmTimeout}`;
  await transition('revoked', `certificate ${cert.serial} ${why}; revoking it`, why);
  await revoke(cert.serial, 'cessationOfOperation');
  await (conf ? storageAfterUpdate : storage).projectRequest({ ...base, state, serial: cert.serial, error: `certificate ${why}; revoked` });
  return outcome;

  async function revokeReplaced(): Promise<void> {
    if (input.replaces && input.revokeReplaced) await revoke(input.replaces, 'superseded');
  }

  /** Through the revocation workflow (`revoke-<serial>`); waits while an operator's change of the same certificate runs. */
  async function revoke(serial: string, reason: string): Promise<void> {
    const args: StatusChangeInput = { serial, action: 'revoke', reason, requester: `cmp:${input.transactionId}`, protocol: 'cmp' };
    for (let attempt = 1; ; attempt++) {
      try {
        await executeChild(revocationWorkflow, { workflowId: WORKFLOWS.revocation.id(serial), taskQueue, args: [args] });
        return;
      } catch (e) {
        if (attempt >= 30) throw e;
        await sleep('10 seconds');
      }
    }
  }
}
