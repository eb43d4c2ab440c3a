/**
 * CA lifecycle workflows (issue 19). Each operation is one workflow whose steps are
 * idempotent activities on the signing queue (key generation, signing with CA keys), so a
 * worker killed at any point resumes it and it ends once: one key, one certificate, one
 * audit entry per step.
 *
 *   ca-create-<name>            caCreateWorkflow      key -> certificate (parent, or self) | PKCS#10 request (external)
 *   ca-import-<name>            caImportWorkflow      a pending CA's certificate, or an existing CA with its key
 *   ca-rollover-<name>          caRolloverWorkflow    new key -> certificate (+ root link certificates) -> activation child
 *   ca-activate-<name>-<gen>    caActivationWorkflow  a durable timer until the new key takes over issuance, then records it
 *   ca-revoke-<name>            caRevokeWorkflow      revoked (and its certificates) -> last CRL/OCSP -> the parent's CRL
 *   <queue>-ca-expiry-watch     caExpiryWatchWorkflow (schedule) CAs about to expire, into the audit log
 */
import {
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type {
  CaActivities,
  CaCreateInput,
  CaExpiryWatchResult,
  CaImportInput,
  CaOperationResult,
  CaRevokeInput,
  CaRolloverInput,
  CaWatchActivities,
} from '../activities/types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { signingTaskQueue, WORKFLOWS, type CaActivationInput } from './api.ts';
import { SIGNING_ACTIVITY_OPTIONS } from './options.ts';

/**
 * A CA operation's step: heartbeating (key generation in an HSM takes a while), retried
 * for a few minutes when the key store or database is away; a refusal (a name taken, a key
 * that does not match) ends it at once.
 */
const CA_STEP_OPTIONS: ActivityOptions = {
  ...SIGNING_ACTIVITY_OPTIONS,
  startToCloseTimeout: '10 minutes',
  retry: { ...SIGNING_ACTIVITY_OPTIONS.retry, maximumAttempts: 8 },
};

function caActivities(): CaActivities {
  return proxyActivities<CaActivities>({ ...CA_STEP_OPTIONS, taskQueue: signingTaskQueue(workflowInfo().taskQueue) });
}

function failureMessage(e: unknown): string {
  let err = e as { message?: string; cause?: unknown } | undefined;
  // ActivityFailure wraps the activity's ApplicationFailure, whose message is the CaError's.
  while (err?.cause && typeof err.cause === 'object') err = err.cause as typeof err;
  return err?.message ?? String(e);
}

/** Runs an operation; a failure is recorded in the audit log (result failed) before the workflow fails with it. */
async function recorded<T>(operation: string, name: string, requester: string, fn: () => Promise<T>): Promise<T> {
  upsertSearchAttributes(searchAttributes({ protocol: 'operator', state: `ca-${operation}`, account: requester }));
  try {
    return await fn();
  } catch (e) {
    const error = failureMessage(e);
    upsertSearchAttributes(searchAttributes({ state: 'failed', lastError: error }));
    setCurrentDetails(`**${operation}** of CA ${name} failed: ${error}`);
    await caActivities().caRecordFailure({ operation, name, requester, error });
    throw e;
  }
}

function done(r: CaOperationResult): CaOperationResult {
  upsertSearchAttributes(searchAttributes({ state: r.status }));
  setCurrentDetails(r.message);
  return r;
}

export async function caCreateWorkflow(input: CaCreateInput): Promise<CaOperationResult> {
  return recorded('create', input.name, input.requester, async () => {
    const acts = caActivities();
    setCurrentDetails(`creating CA **${input.name}**: making its key`);
    const step = await acts.caPrepareCreate(input);
    if (input.external) {
      setCurrentDetails(`CA **${input.name}**: signing its certification request with the new key`);
      return done(await acts.caMakeCsr({ ...step, subject: input.subject }));
    }
    setCurrentDetails(`CA **${input.name}**: ${input.root ? 'self-signing its certificate' : `CA ${input.parent} signs its certificate`}`);
    return done(await acts.caCertify({ ...step, create: input }));
  });
}

export async function caImportWorkflow(input: CaImportInput): Promise<CaOperationResult> {
  return recorded(input.key ? 'import' : 'importCert', input.name, input.requester, async () => {
    setCurrentDetails(`CA **${input.name}**: checking the certificate, its chain and its key`);
    return done(await caActivities().caImport(input));
  });
}

/**
 * New key and certificate for the same CA name. The workflow ends once the new generation
 * is certified; its activation (issuance moves to it at `activateAt`) is a child workflow
 * that outlives it: a durable timer, then the record of the switch.
 */
export async function caRolloverWorkflow(input: CaRolloverInput): Promise<CaOperationResult> {
  return recorded('rollover', input.name, input.requester, async () => {
    const acts = caActivities();
    setCurrentDetails(`rollover of CA **${input.name}**: making the new key`);
    const step = await acts.caPrepareRollover(input);
    setCurrentDetails(`rollover of CA **${input.name}**: certifying key generation ${step.generation}`);
    const r = await acts.caCertify({ ...step, rollover: input });
    await startChild(caActivationWorkflow, {
      workflowId: WORKFLOWS.caActivation.id(input.name, step.generation),
      args: [{ ...step, activateAt: r.activateAt! }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    return done({ ...r, message: `${r.message}; issuance moves to it at ${r.activateAt}` });
  });
}

export async function caActivationWorkflow(input: CaActivationInput): Promise<CaOperationResult> {
  upsertSearchAttributes(searchAttributes({ protocol: 'operator', state: 'ca-activation-pending', account: input.requester }));
  const wait = Date.parse(input.activateAt) - Date.now();
  if (wait > 0) {
    setCurrentDetails(`CA **${input.name}** issues with key generation ${input.generation} from ${input.activateAt}`);
    await sleep(wait);
  }
  return done(await caActivities().caActivated(input));
}

export async function caRevokeWorkflow(input: CaRevokeInput): Promise<CaOperationResult> {
  return recorded('revoke', input.name, input.requester, async () => {
    const acts = caActivities();
    setCurrentDetails(`revoking CA **${input.name}**`);
    await acts.caRevoke(input);
    setCurrentDetails(`CA **${input.name}** is revoked: signing its last CRL and OCSP responses and its parent's CRL`);
    return done(await acts.caPublishRevocation(input));
  });
}

export async function caExpiryWatchWorkflow(): Promise<CaExpiryWatchResult> {
  const acts = proxyActivities<CaWatchActivities>({
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
  });
  const r = await acts.caExpiryWatch();
  setCurrentDetails(r.warnings ? `${r.warnings} CA(s) expire too soon; ${r.recorded} new audit entries` : 'no CA expires too soon');
  return r;
}
