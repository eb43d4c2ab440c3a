/** Storage activities: project workflow state into the Postgres read model. */
import type { Pool } from 'pg';
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
    },
  };
}
