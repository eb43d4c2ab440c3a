/** Storage activities: project workflow state into the Postgres read model (and audit its decisions). */
import type { Pool } from 'pg';
import { audit } from '../src/db/repos/audit.ts';
import * as requests from '../src/db/repos/requests.ts';
import type { RequestProjection, StorageActivities } from './types.ts';

export function createStorageActivities(deps: { pool: Pool }): StorageActivities {
  return {
    async projectRequest(p: RequestProjection): Promise<void> {
      await requests.upsert(deps.pool, {
        id: p.id,
        protocol: p.protocol,
        workflowId: p.workflowId,
        profile: p.profile,
        state: p.state,
        csrDer: Buffer.from(p.csr, 'base64'),
        requester: p.requester ?? null,
        serial: p.serial ?? null,
        error: p.error ?? null,
        label: p.label ?? null,
        kind: p.kind ?? null,
        requestHash: p.requestHash ?? null,
        replaces: p.replaces ?? null,
        decidedBy: p.decidedBy ?? null,
        decidedAt: p.decidedAt ? new Date(p.decidedAt) : null,
      });
      await auditTransition(deps.pool, p);
    },
  };
}

/**
 * The transitions a person or the CA's policy decided: an operator's approval or rejection,
 * and a request the CA refused. Keyed per request, so a retried projection writes once.
 * (Issuance itself is audited by the signing activity.)
 */
async function auditTransition(pool: Pool, p: RequestProjection): Promise<void> {
  const common = { object: p.id, requestId: p.workflowId, details: { protocol: p.protocol, requester: p.requester, profile: p.profile, label: p.label, reason: p.error } };
  if (p.decidedBy && (p.state === 'signing' || p.state === 'rejected')) {
    await audit(pool, { ...common, actor: p.decidedBy, action: p.state === 'signing' ? 'request.approve' : 'request.reject', key: `request.decide:${p.id}` });
  } else if (p.state === 'failed') {
    await audit(pool, { ...common, actor: 'system', action: 'request.refuse', result: 'failed', key: `request.refuse:${p.id}` });
  }
}
