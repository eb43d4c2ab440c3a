/**
 * The periodic audit checkpoint (`<queue>-audit-checkpoint` schedule, and
 * `certflow audit checkpoint`): one activity on the signing queue, where the audit key is.
 */
import { proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { AuditActivities, CheckpointInput, CheckpointResult } from '../activities/types.ts';
import { SIGNING_ACTIVITY_OPTIONS } from './options.ts';

export async function auditCheckpointWorkflow(input: CheckpointInput = {}): Promise<CheckpointResult> {
  const acts = proxyActivities<AuditActivities>({ ...SIGNING_ACTIVITY_OPTIONS, taskQueue: `${workflowInfo().taskQueue}-signing` });
  const r = await acts.signAuditCheckpoint(input);
  setCurrentDetails(r.seq ? `checkpoint of audit entry #${r.seq}${r.created ? '' : ' (existed)'}; ${r.expired} expiries recorded` : 'the audit log is empty');
  return r;
}
