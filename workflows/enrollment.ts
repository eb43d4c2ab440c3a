/**
 * Issuance of one certificate for one request: operator `cert issue`, EST enrollments
 * (and later CMP). The workflow is the only writer of the request's state; every
 * transition is projected into Postgres and into the search attributes, so operators see
 * in the Temporal UI which requests wait for what. A request may need an operator's
 * approval first: it then waits (durably, for days if needed) for the `decide` Update.
 */
import {
  condition,
  executeChild,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { IssueProjection, RequestProjection, RequestState, SigningActivities, StorageActivities } from '../activities/types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import {
  abandonUpdate,
  decideUpdate,
  retryUpdate,
  signingTaskQueue,
  WORKFLOWS,
  type Decision,
  type EnrollmentInput,
  type EnrollmentResult,
} from './api.ts';
import {
  ENROLLMENT_SIGNING_OPTIONS,
  LOCAL_ENROLLMENT_SIGNING_OPTIONS,
  STORAGE_ACTIVITY_OPTIONS,
  STORAGE_AFTER_UPDATE_OPTIONS,
  REQUESTER_ERROR_TYPES,
} from './options.ts';
import { localWorkVersion } from './local-work.ts';
import { applicationFailure, faultText, isActivityFailure } from './failures.ts';
import { revocationWorkflow } from './revocation.ts';

const FINAL_STATES: readonly RequestState[] = ['issued', 'failed', 'rejected', 'abandoned'];

/** Installs the `decide` handler: only a request in awaiting-approval takes a decision. */
export function onDecision(requestId: string, state: () => string, take: (d: Decision) => void): void {
  setHandler(
    decideUpdate,
    (d) => {
      take(d);
      return { state: d.approve ? 'signing' : 'rejected' };
    },
    {
      validator: (d) => {
        if (state() !== 'awaiting-approval') throw new Error(`request ${requestId} is ${state()}, not awaiting approval`);
        if (!d.by) throw new Error('a decision names who made it');
      },
    },
  );
}

/** Installs the `retry` handler: only a request stalled by a server fault takes it. */
export function onRetry(requestId: string, state: () => string, take: () => void): void {
  setHandler(
    retryUpdate,
    (_by) => {
      take();
      return { state: 'signing' };
    },
    {
      validator: (_by) => {
        if (state() !== 'stalled') throw new Error(`request ${requestId} is ${state()}, not stalled by a server fault`);
      },
    },
  );
}

const storage = proxyLocalActivities<StorageActivities>(STORAGE_ACTIVITY_OPTIONS);
/** After the operator's decision (an Update): see STORAGE_AFTER_UPDATE_OPTIONS. */
const storageAfterUpdate = proxyActivities<StorageActivities>(STORAGE_AFTER_UPDATE_OPTIONS);

export async function enrollmentWorkflow(input: EnrollmentInput): Promise<EnrollmentResult> {
  const { workflowId, taskQueue } = workflowInfo();
  // On the signing queue (new runs since issue 18) the worker running this workflow holds the
  // CA keys: signing is a local activity in the workflow task that needs the certificate (a
  // task lost after its commit runs again; the activity returns the stored certificate).
  // Not for EST serverkeygen: its device waits on the line and the server gives the request
  // up (the abandon Update) when signing is slow; an Update reaches a workflow only between
  // its tasks, and a task that signs locally would end the request issued before the Update
  // is seen, leaving a certificate whose key nobody received unrevoked.
  // Since the third round (patch 'enrollment-projections-in-signing', which implies local
  // signing) the signing activity also writes the projections of its task (below).
  const version =
    input.kind === 'serverkeygen' ? undefined : localWorkVersion(['enrollment-projections-in-signing', 'sign-in-workflow-task']);
  const local = version !== undefined;
  const signing = local
    ? proxyLocalActivities<SigningActivities>(LOCAL_ENROLLMENT_SIGNING_OPTIONS)
    : proxyActivities<SigningActivities>({ ...ENROLLMENT_SIGNING_OPTIONS, taskQueue: signingTaskQueue(taskQueue) });
  const base: Omit<RequestProjection, 'state'> = {
    id: input.requestId,
    protocol: input.protocol,
    workflowId,
    profile: input.profile,
    csr: input.csr,
    requester: input.requester,
    label: input.label,
    kind: input.kind,
    requestHash: input.requestHash,
    replaces: input.replaces,
  };

  let state: RequestState = 'pending';
  let decision: Decision | undefined;
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
  let abandoned: string | undefined;
  setHandler(
    abandonUpdate,
    (a) => {
      abandoned = a.reason || 'abandoned by the requester';
      return { state };
    },
    {
      validator: (_a) => {
        if (FINAL_STATES.includes(state)) throw new Error(`request ${input.requestId} is ${state} already`);
      },
    },
  );

  if (input.requireApproval) {
    state = 'awaiting-approval';
    await transition(state, `waiting for an operator: \`certflow approvals approve ${input.requestId}\` or \`reject\``);
    await storage.projectRequest({ ...base, state });
    const decided = await condition(() => decision !== undefined, input.approvalTimeout ?? '30 days');
    const d: Decision = decided ? decision! : { approve: false, by: 'timeout', reason: 'no decision within the approval period' };
    const decisionFields = { decidedBy: d.by, decidedAt: new Date().toISOString() };
    if (!d.approve) {
      state = 'rejected';
      const message = `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
      await transition(state, message, message);
      await storageAfterUpdate.projectRequest({ ...base, ...decisionFields, state, error: message });
      return { status: 'rejected', kind: 'forbidden', message };
    }
    base.decidedBy = decisionFields.decidedBy;
    base.decidedAt = decisionFields.decidedAt;
  }

  state = 'signing';
  await transition(state, `waiting for the signing activity on ${signingTaskQueue(taskQueue)}`);
  // Signing in the first task: the signing activity writes the `signing` and `issued`
  // projections itself (one local activity instead of three). Not after an Update (the
  // approval, a retry): those projections go through regular activities.
  let projectedBySigning = version === 'enrollment-projections-in-signing' && !input.requireApproval;
  if (!projectedBySigning) await (input.requireApproval ? storageAfterUpdate : storage).projectRequest({ ...base, state });
  let delay = input.faultRetrySeconds?.initial ?? 30;
  for (;;) {
    try {
      const cert = await signing.issueCertificate(projectedBySigning ? { ...input, project: projectionFields('issued') } : input);
      if (abandoned !== undefined) return abandon(abandoned, cert.serial);
      state = 'issued';
      await transition(state, `issued certificate ${cert.serial}`);
      if (!projectedBySigning) await storage.projectRequest({ ...base, state, serial: cert.serial });
      return { status: 'issued', ...cert };
    } catch (err) {
      const app = applicationFailure(err);
      if (app && REQUESTER_ERROR_TYPES.includes(app.type ?? '')) {
        // The request itself is wrong (bad CSR, policy): a final answer, not a stuck request.
        state = 'failed';
        await transition(state, `rejected: ${app.message}`, app.message);
        await storage.projectRequest({ ...base, state, error: app.message });
        return { status: 'rejected', kind: app.type ?? 'policy', message: app.message };
      }
      if (!isActivityFailure(err) || !patched('stall-on-server-fault')) throw err;
      // A server fault: the request stays open and visible, and signing is tried again.
      projectedBySigning = false;
      if (abandoned !== undefined) return abandon(abandoned);
      const fault = `${app?.type ?? 'signing'}: ${faultText(err)}`;
      state = 'stalled';
      await transition(
        state,
        `signing failed (${fault}); next attempt in ${delay} s or on \`certflow requests retry ${input.requestId}\``,
        fault,
      );
      await storage.projectRequest({ ...base, state, error: fault });
      retryRequested = false;
      await condition(() => retryRequested || abandoned !== undefined, delay * 1000);
      if (abandoned !== undefined) return abandon(abandoned);
      delay = Math.min(delay * 2, input.faultRetrySeconds?.max ?? 900);
      state = 'signing';
      await transition(state, `signing again after: ${fault}`);
      await storageAfterUpdate.projectRequest({ ...base, state, error: fault });
    }
  }

  /** Ends an abandoned request; revokes the certificate signed for it, if any. */
  async function abandon(reason: string, serial?: string): Promise<EnrollmentResult> {
    if (serial) {
      await executeChild(revocationWorkflow, {
        workflowId: WORKFLOWS.revocation.id(serial),
        args: [{ serial, action: 'revoke', reason: 'cessationOfOperation', requester: `${input.protocol}:abandoned` }],
      });
    }
    state = 'abandoned';
    const message = serial ? `${reason}; certificate ${serial} was revoked` : reason;
    await transition(state, message, message);
    await storageAfterUpdate.projectRequest({ ...base, state, error: message, serial });
    return { status: 'rejected', kind: 'unavailable', message };
  }

  function projectionFields(final: 'issued'): IssueProjection {
    return { workflowId, label: input.label, kind: input.kind, requestHash: input.requestHash, final };
  }

  async function transition(s: string, details: string, lastError?: string): Promise<void> {
    upsertSearchAttributes(searchAttributes({ protocol: input.protocol, state: s, account: input.requester, lastError }));
    setCurrentDetails(`**${s}** — ${details}`);
  }
}
