/**
 * Console workflows that need the signing queue's keys. The periodic audit checkpoint (`<queue>-audit-checkpoint` schedule, and
 * `certflow audit checkpoint`): one activity on the signing queue, where the audit key is.
 */
import { proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type {
  AuditActivities,
  CheckpointInput,
  CheckpointResult,
  KeyRecoveryActivities,
  KeyRecoveryInput,
  RecoveredKey,
} from '../activities/types.ts';
import { signingTaskQueue } from './api.ts';
import { SIGNING_ACTIVITY_OPTIONS } from './options.ts';

export async function auditCheckpointWorkflow(input: CheckpointInput = {}): Promise<CheckpointResult> {
  const acts = proxyActivities<AuditActivities>({ ...SIGNING_ACTIVITY_OPTIONS, taskQueue: signingTaskQueue(workflowInfo().taskQueue) });
  const r = await acts.signAuditCheckpoint(input);
  setCurrentDetails(
    r.seq
      ? `checkpoint of audit entry #${r.seq}${r.created ? '' : ' (existed)'}; ${r.expired} expiries recorded`
      : 'the audit log is empty',
  );
  return r;
}

/**
 * Key recovery from the console (`key-recovery-<id>`): one activity on the signing queue,
 * tried at most three times (a refusal — no archived key — is final at once).
 */
export async function keyRecoveryWorkflow(input: KeyRecoveryInput): Promise<RecoveredKey> {
  const acts = proxyActivities<KeyRecoveryActivities>({
    ...SIGNING_ACTIVITY_OPTIONS,
    retry: { ...SIGNING_ACTIVITY_OPTIONS.retry, maximumAttempts: 3 },
    taskQueue: signingTaskQueue(workflowInfo().taskQueue),
  });
  setCurrentDetails(`recovering the archived key of ${input.serial} for ${input.requester}`);
  return acts.recoverKeyForRecipient(input);
}
