/**
 * Issuance of one certificate for one request (operator `cert issue`; EST and CMP build on
 * it). The workflow is the only writer of the request's state; every transition is
 * projected into Postgres and into the search attributes, so operators see in the
 * Temporal UI which requests wait for what.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { IssuedCertificate, IssueInput, Protocol, SigningActivities, StorageActivities } from '../activities/types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { SIGNING_ACTIVITY_OPTIONS, STORAGE_ACTIVITY_OPTIONS, REQUESTER_ERROR_TYPES } from './options.ts';

export interface EnrollmentInput extends IssueInput {
  protocol: Protocol;
}

export type EnrollmentResult =
  | ({ status: 'issued' } & IssuedCertificate)
  | { status: 'rejected'; kind: string; message: string };

const storage = proxyLocalActivities<StorageActivities>(STORAGE_ACTIVITY_OPTIONS);

export async function enrollmentWorkflow(input: EnrollmentInput): Promise<EnrollmentResult> {
  const { workflowId } = workflowInfo();
  const signing = proxyActivities<SigningActivities>({
    ...SIGNING_ACTIVITY_OPTIONS,
    taskQueue: signingTaskQueue(workflowInfo().taskQueue),
  });
  const base = {
    id: input.requestId,
    protocol: input.protocol,
    workflowId,
    profile: input.profile,
    csr: input.csr,
    requester: input.requester,
  };

  await transition('signing', `waiting for the signing activity on ${signingTaskQueue(workflowInfo().taskQueue)}`);
  await storage.projectRequest({ ...base, state: 'signing' });
  try {
    const cert = await signing.issueCertificate(input);
    await transition('issued', `issued certificate ${cert.serial}`);
    await storage.projectRequest({ ...base, state: 'issued', serial: cert.serial });
    return { status: 'issued', ...cert };
  } catch (err) {
    const app = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    if (!app || !REQUESTER_ERROR_TYPES.includes(app.type ?? '')) throw err;
    // The request itself is wrong (bad CSR, policy): a final answer, not a stuck request.
    await transition('failed', `rejected: ${app.message}`, app.message);
    await storage.projectRequest({ ...base, state: 'failed', error: app.message });
    return { status: 'rejected', kind: app.type ?? 'policy', message: app.message };
  }

  async function transition(state: string, details: string, lastError?: string): Promise<void> {
    upsertSearchAttributes(searchAttributes({ protocol: input.protocol, state, account: input.requester, lastError }));
    setCurrentDetails(`**${state}** — ${details}`);
  }
}

/** The signing queue belongs to the workflow's queue: `certflow` -> `certflow-signing`. */
function signingTaskQueue(taskQueue: string): string {
  return `${taskQueue}-signing`;
}
