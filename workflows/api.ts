/**
 * The contract between the workflows and everything that starts them or talks to them:
 * every workflow's type name, id, input and result, its Updates and signals, and the task
 * queue names. Starting, updating and querying go through src/ra (the registration
 * authority), which takes all of it from here; the workflows take their definitions from
 * here too. Nothing else builds a workflow id, names a workflow type or derives a queue.
 *
 * Workflow-safe: imports only types (of @temporalio/common and the activities), so it is
 * bundled into the workflow sandbox as well, and loading it (the config takes the queue
 * names from here) loads no SDK code.
 *
 * NAMES ARE RECORDED IN HISTORY. A workflow type (the name of the function workflows/index.ts
 * exports), an Update or signal name and an id scheme are part of every running workflow
 * and of the replay histories in test/replay: never rename one. Add a new one instead
 * (test/unit/workflow-api.test.ts checks that every definition here is exported there
 * under its name, with its signature).
 */
import type { SignalDefinition, UpdateDefinition, Workflow } from '@temporalio/common';
import type { AcmeIdentifier, AuthzState, AuthzStatus, OrderStatus, Problem, ValidationSettings } from '../activities/acme-types.ts';
import type {
  CaCreateInput,
  CaExpiryWatchResult,
  CaImportInput,
  CaKeyStep,
  CaOperationResult,
  CaRevokeInput,
  CaRolloverInput,
  CheckpointInput,
  CheckpointResult,
  DeliveryOutcome,
  DeliveryRetry,
  IssuedCertificate,
  IssueInput,
  KeyRecoveryInput,
  Protocol,
  RecoveredKey,
  RefreshInput,
  RefreshResult,
  RequestState,
  StatusChangeInput,
  StatusChangeResult,
  TestNoticeInput,
} from '../activities/types.ts';

export type { CheckpointInput, CheckpointResult, KeyRecoveryInput, RecoveredKey, RefreshInput, RefreshResult };
export type { StatusChangeInput, StatusChangeResult };
export type { DeliveryOutcome, DeliveryRetry, TestNoticeInput };
export type { CaCreateInput, CaImportInput, CaOperationResult, CaRevokeInput, CaRolloverInput };

// ---- definitions ---------------------------------------------------------------------------

/*
 * An Update or signal definition is the plain object the SDK's defineUpdate()/defineSignal()
 * return ({ type, name }). Made here, importing this file (every CLI call does, through the
 * config) does not load @temporalio/workflow's runtime (~40 ms of CPU per process);
 * test/unit/workflow-api.test.ts checks each against the SDK's own.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the SDK's own signature
function defineUpdate<Ret, Args extends any[] = [], Name extends string = string>(name: Name): UpdateDefinition<Ret, Args, Name> {
  return { type: 'update', name } as UpdateDefinition<Ret, Args, Name>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the SDK's own signature
function defineSignal<Args extends any[] = [], Name extends string = string>(name: Name): SignalDefinition<Args, Name> {
  return { type: 'signal', name } as SignalDefinition<Args, Name>;
}

// ---- task queues -------------------------------------------------------------------------

const SIGNING_SUFFIX = '-signing';

/**
 * The signing queue of a main task queue (`certflow` -> `certflow-signing`): only workers
 * that hold CA keys poll it. Most workflows run on the main queue and send their signing
 * activities here; the request workflows that sign (definitions with `onSigningQueue`) run
 * here themselves, and the signing queue of the signing queue is itself.
 */
export function signingTaskQueue(queue: string): string {
  return onSigningTaskQueue(queue) ? queue : `${queue}${SIGNING_SUFFIX}`;
}

/**
 * Whether a workflow runs on a signing task queue, i.e. on a worker that holds the CA keys:
 * there its signing (and the work before it) runs as local activities inside the workflow
 * task that needs them, instead of as activity tasks with workflow tasks of their own
 * (issue 18; ../shared/temporal-floor rows G and H).
 */
export function onSigningTaskQueue(queue: string): boolean {
  return queue.endsWith(SIGNING_SUFFIX);
}

/** Schedules, one per main task queue. */
export const scheduleIds = {
  /** Hourly renewal of CRLs and OCSP responses (crlWorkflow). */
  revocationRefresh: (mainQueue: string) => `${mainQueue}-revocation-refresh`,
  /** The periodic signed audit checkpoint (auditCheckpointWorkflow). */
  auditCheckpoint: (mainQueue: string) => `${mainQueue}-audit-checkpoint`,
  /** The notification sweep, every notifications.intervalMinutes (notificationSweepWorkflow). */
  notificationSweep: (mainQueue: string) => `${mainQueue}-notifications`,
  /** The daily CA expiry watch (caExpiryWatchWorkflow). */
  caExpiryWatch: (mainQueue: string) => `${mainQueue}-ca-expiry-watch`,
};

// ---- workflow definitions ----------------------------------------------------------------

/** A workflow as its callers know it: type name, id scheme and (type-level) signature. */
export interface WorkflowDef<F extends Workflow, K extends unknown[]> {
  /** The workflow type: the name workflows/index.ts exports the function under. */
  readonly type: string;
  /** The workflow id of one request (shared CONTRACT: ids are visible to operators). */
  readonly id: (...key: K) => string;
  /** Type-level only: the workflow function's signature. */
  readonly signature?: F;
  /**
   * New runs start on the signing task queue (only workers holding CA keys poll it), so that
   * the workflow signs with a local activity in the workflow task that needs the
   * certificate. Runs started on the main queue before keep running there as they did.
   */
  readonly onSigningQueue?: boolean;
}

/** The signature of a definition's workflow (for typed starts: `client.workflow.start<WorkflowOf<D>>`). */
export type WorkflowOf<D> = D extends { readonly signature?: infer F } ? Exclude<F, undefined> : never;

function define<F extends Workflow>() {
  return <K extends unknown[]>(type: string, id: (...key: K) => string, opts: { onSigningQueue?: boolean } = {}): WorkflowDef<F, K> => ({
    type,
    id,
    ...opts,
  });
}

// ---- ACME ----

/** acmeOrderWorkflow: one order, owning the authorizations it created. */
export interface OrderInput {
  orderId: string;
  accountId: string;
  alias: string;
  identifiers: AcmeIdentifier[];
  /** 'ready' when every authorization was reused valid. */
  status: 'pending' | 'ready';
  /** All authorizations of the order: new ones (pending, validated by this workflow) and reused ones (valid). */
  authzs: AuthzState[];
  expiresAt: string;
  profile: string;
  caName?: string;
  /** Serial of the certificate this order replaces (ARI). */
  replacesSerial?: string;
  validation: ValidationSettings;
  /** CAA is checked again at finalize for authorizations validated longer ago than this. */
  caaRecheckSeconds: number;
}

/** acmeAuthzWorkflow: an authorization outside an open order (pre-authorization, after its order ended, deactivation). */
export interface AuthzInput {
  authz: AuthzState & { status: 'pending' | 'valid' };
  accountId: string;
  /** ISO time the authorization expires. */
  expiresAt: string;
  validation: ValidationSettings;
}

/** Sent to an order by the workflow that deactivated one of its authorizations. */
export interface AuthzChange {
  authzId: string;
  status: AuthzStatus;
}

/** What answering a challenge came to (the respondChallenge Update's result). */
export interface ChallengeOutcome {
  status: 'valid' | 'invalid';
  /** ISO time of validation. */
  validated?: string;
  error?: Problem;
}

/** What finalize came to (the finalize Update's result). */
export interface FinalizeOutcome {
  status: OrderStatus;
  serial?: string;
  error?: Problem;
}

/** A client answers a challenge (RFC 8555 7.5.1). The order workflow takes `authzId`; the authorization workflow ignores it. */
export const respondChallengeUpdate = defineUpdate<ChallengeOutcome, [{ authzId: string; challengeId: string }]>('respondChallenge');
/** A client deactivates an authorization (RFC 8555 7.5.2): only the authorization workflow takes it. */
export const deactivateAuthzUpdate = defineUpdate<{ status: AuthzStatus }, []>('deactivate');
/** Operator (`certflow orders retry`): stop waiting for the next backoff and validate now. */
export const retryValidationUpdate = defineUpdate<{ retried: string[] }, [{ authzId?: string }]>('retryValidation');
/** Sent to the open orders that use an authorization when it is deactivated. */
export const authzChangedSignal = defineSignal<[AuthzChange]>('authzChanged');
/** The client finalizes the order with a CSR (base64 DER). */
export const finalizeUpdate = defineUpdate<FinalizeOutcome, [{ csr: string }]>('finalize');
/** `by`: who cancels, as an audit actor (operator:<user>, user:<name>, acme:<account>). */
export const cancelOrderUpdate = defineUpdate<{ status: OrderStatus }, [{ by: string; reason?: string }]>('cancel');

// ---- enrollments (operator `cert issue`, EST) ----

export interface EnrollmentInput extends IssueInput {
  protocol: Protocol;
  /** EST label / CMP alias. */
  label?: string;
  /** enroll | reenroll | serverkeygen | issue */
  kind?: string;
  /** sha256 (hex) of the request as the client sent it. */
  requestHash?: string;
  /** Wait for an operator's decision before signing. */
  requireApproval?: boolean;
  /** How long an approval may take before the request is rejected (default 30 days). */
  approvalTimeout?: string;
  /**
   * After a server fault (HSM gone, CA key missing, database down) the request is `stalled`
   * and signing is tried again after this many seconds, doubling up to `max` (defaults
   * 30 s and 15 min), or at once on the `retry` Update (`certflow requests retry`).
   */
  faultRetrySeconds?: { initial: number; max: number };
}

export type EnrollmentResult = ({ status: 'issued' } & IssuedCertificate) | { status: 'rejected'; kind: string; message: string };

export interface Decision {
  approve: boolean;
  /** Who decided (operator name). */
  by: string;
  reason?: string;
}

/** The operator's approval or rejection (enrollments and CMP); validated so only a waiting request accepts it. */
export const decideUpdate = defineUpdate<{ state: RequestState }, [Decision]>('decide');
/** An operator's "sign now" for a request stalled by a server fault (enrollments, CMP, an ACME order processing); only such a request accepts it. */
export const retryUpdate = defineUpdate<{ state: RequestState }, [{ by: string }]>('retry');
/**
 * The requester gave up (EST serverkeygen: the generated key was not handed out in time).
 * The request ends `abandoned`; a certificate signed meanwhile is revoked, so that no valid
 * certificate exists whose private key was thrown away. Refused once the request has ended.
 */
export const abandonUpdate = defineUpdate<{ state: RequestState }, [{ reason: string }]>('abandon');

// ---- CMP ----

export interface CmpInput {
  /** Issuance request id (= the workflow id, `cmp-<transactionID hex>`). */
  requestId: string;
  transactionId: string;
  alias: string;
  bodyType: 'ir' | 'cr' | 'kur' | 'p10cr';
  /** base64 DER: a CertReqMsg (ir, cr, kur) or a PKCS#10 request (p10cr). */
  request: string;
  requestFormat: 'crmf' | 'pkcs10';
  requestHash: string;
  profile: string;
  caName?: string;
  /** ref:<senderKID> or cert:<serial>. */
  requester: string;
  /** kur: serial of the certificate being updated. */
  replaces?: string;
  /** kur: revoke the replaced certificate (superseded) once the new one is confirmed. */
  revokeReplaced: boolean;
  requireApproval: boolean;
  /** How long an operator may take (default 30 days). */
  approvalTimeout?: string;
  /** The client asked for implicit confirmation and the alias grants it. */
  implicitConfirm: boolean;
  /** How long the certificate waits for certConf after it was handed out. */
  confirmTimeout: string;
  /** Backoff of signing after a server fault (the `issuance` settings); default 30 s doubling to 900 s. */
  faultRetrySeconds?: { initial: number; max: number };
}

export type CmpOutcome =
  | ({ status: 'issued'; implicitConfirm: boolean } & IssuedCertificate)
  | { status: 'waiting'; reason: string }
  | { status: 'rejected'; kind: string; message: string; rule?: string };

export interface CertConfDecision {
  accepted: boolean;
  /** Why the client rejected it (statusInfo text / failInfo), or that certHash did not match. */
  reason?: string;
}

/** The first request's answer (Update-with-Start): returns once there is one to give. */
export const cmpRequestUpdate = defineUpdate<CmpOutcome, []>('request');
/** The client's certConf; only a transaction waiting for confirmation accepts it. */
export const certConfUpdate = defineUpdate<{ state: RequestState }, [CertConfDecision]>('certConf');
/** The certificate was handed out on a later pollReq: the confirmation period starts again. */
export const certDeliveredUpdate = defineUpdate<{ state: RequestState }, []>('delivered');

// ---- notifications ----

/** One delivery of a notice to one target; `retry` spaces its attempts. */
export interface DeliveryInput {
  deliveryId: string;
  retry: DeliveryRetry;
}

/** What a sweep came to. */
export interface SweepOutcome {
  created: number;
  started: number;
}
// ---- CA lifecycle (issue 19; docs/ca-hierarchy.md) ----

/** caActivationWorkflow: a rolled-over key generation takes over issuance at `activateAt` (ISO time). */
export type CaActivationInput = CaKeyStep & { activateAt: string };

// ---- every workflow ----

export const WORKFLOWS = {
  /** One ACME order (`acme-order-<order id>`). */
  acmeOrder: define<(input: OrderInput) => Promise<OrderStatus>>()('acmeOrderWorkflow', (orderId: string) => `acme-order-${orderId}`, {
    onSigningQueue: true,
  }),
  /** An ACME authorization outside an open order (`acme-authz-<authz id>`). */
  acmeAuthz: define<(input: AuthzInput) => Promise<AuthzStatus | 'processing'>>()(
    'acmeAuthzWorkflow',
    (authzId: string) => `acme-authz-${authzId}`,
  ),
  /** One enrollment: `operator-<request id>` (`certflow cert issue`, the server's own certificates) or `est-<enrollment id>`. */
  enrollment: define<(input: EnrollmentInput) => Promise<EnrollmentResult>>()(
    'enrollmentWorkflow',
    (protocol: 'operator' | 'est', requestId: string) => `${protocol}-${requestId}`,
    { onSigningQueue: true },
  ),
  /** One CMP certificate transaction (`cmp-<transactionID hex>`); the id is also the request id. */
  cmp: define<(input: CmpInput) => Promise<CmpOutcome>>()('cmpWorkflow', (transactionIdHex: string) => `cmp-${transactionIdHex}`, {
    onSigningQueue: true,
  }),
  /** Revoke, hold or release one certificate (`revoke-<serial hex>`; one at a time, reused over time). */
  revocation: define<(input: StatusChangeInput) => Promise<StatusChangeResult>>()(
    'revocationWorkflow',
    (serialHex: string) => `revoke-${serialHex}`,
  ),
  /** CRL and OCSP renewal on demand (`crl-<random id>`; the schedule starts its own runs). */
  crl: define<(input: RefreshInput) => Promise<RefreshResult>>()('crlWorkflow', (runId: string) => `crl-${runId}`),
  /** A signed audit checkpoint on demand (`audit-checkpoint-<random id>`). */
  auditCheckpoint: define<(input?: CheckpointInput) => Promise<CheckpointResult>>()(
    'auditCheckpointWorkflow',
    (runId: string) => `audit-checkpoint-${runId}`,
  ),
  /** Console key recovery (`key-recovery-<random id>`). */
  keyRecovery: define<(input: KeyRecoveryInput) => Promise<RecoveredKey>>()(
    'keyRecoveryWorkflow',
    (runId: string) => `key-recovery-${runId}`,
  ),
  /** A notification sweep (`notification-sweep-<random id>` on demand; the schedule starts its own runs). */
  notificationSweep: define<() => Promise<SweepOutcome>>()('notificationSweepWorkflow', (runId: string) => `notification-sweep-${runId}`),
  /**
   * One notification delivery (`notify-<delivery id>`: one run per delivery, ever), or an
   * operator's retry of a dead-lettered one (`notify-<delivery id>-retry-<attempts so far>`).
   */
  notificationDelivery: define<(input: DeliveryInput) => Promise<DeliveryOutcome>>()(
    'notificationDeliveryWorkflow',
    (deliveryId: string, retryAfterAttempts?: number) =>
      retryAfterAttempts === undefined ? `notify-${deliveryId}` : `notify-${deliveryId}-retry-${retryAfterAttempts}`,
  ),
  /** A test notice through every target of a channel (`notification-test-<random id>`). */
  notificationTest: define<(input: TestNoticeInput) => Promise<DeliveryOutcome[]>>()(
    'notificationTestWorkflow',
    (runId: string) => `notification-test-${runId}`,
  ),
  /** Create a CA: root, subordinate, or external (key and PKCS#10 request) (`ca-create-<name>`; a failed one may be run again). */
  caCreate: define<(input: CaCreateInput) => Promise<CaOperationResult>>()('caCreateWorkflow', (name: string) => `ca-create-${name}`),
  /** Import a pending CA's certificate (`ca import-cert`) or an existing CA with its key (`ca import`) (`ca-import-<name>`). */
  caImport: define<(input: CaImportInput) => Promise<CaOperationResult>>()('caImportWorkflow', (name: string) => `ca-import-${name}`),
  /** New key and certificate for a CA name (`ca-rollover-<name>`); starts the activation as a child. */
  caRollover: define<(input: CaRolloverInput) => Promise<CaOperationResult>>()(
    'caRolloverWorkflow',
    (name: string) => `ca-rollover-${name}`,
  ),
  /** A rolled-over key generation takes over issuance at its time (`ca-activate-<name>-<generation>`, child of the rollover). */
  caActivation: define<(input: CaActivationInput) => Promise<CaOperationResult>>()(
    'caActivationWorkflow',
    (name: string, generation: number) => `ca-activate-${name}-${generation}`,
  ),
  /** Revoke a CA (`ca-revoke-<name>`). */
  caRevoke: define<(input: CaRevokeInput) => Promise<CaOperationResult>>()('caRevokeWorkflow', (name: string) => `ca-revoke-${name}`),
  /** CAs about to expire, into the audit log (started by the schedule scheduleIds.caExpiryWatch only). */
  caExpiryWatch: define<() => Promise<CaExpiryWatchResult>>()('caExpiryWatchWorkflow', (runId: string) => `ca-expiry-watch-${runId}`),
};

/** The workflow of a certificate request, by the protocol it came through (certificates.request_id). */
export function requestWorkflowId(protocol: string, requestId: string): string {
  if (protocol === 'acme') return WORKFLOWS.acmeOrder.id(requestId);
  // A CMP request's id is its workflow's id.
  if (protocol === 'cmp') return requestId;
  return WORKFLOWS.enrollment.id(protocol as 'operator' | 'est', requestId);
}

/** The workflow that holds an ACME authorization: the order that created it while that order runs it, else its own. */
export function authzWorkflowId(orderId: string, authz: { id: string; ownerOrderId: string | null }): string {
  return authz.ownerOrderId === orderId ? WORKFLOWS.acmeOrder.id(orderId) : WORKFLOWS.acmeAuthz.id(authz.id);
}
