/** Storage activities: project workflow state into the Postgres read model (and audit its decisions). */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { Queryable } from '../src/db/pool.ts';
import { audit, requesterActor } from '../src/db/repos/audit.ts';
import * as requests from '../src/db/repos/requests.ts';
import type { RequestProjection, StorageActivities } from './types.ts';

export function createStorageActivities(deps: { pool: Pool }): StorageActivities {
  return {
    projectRequest: (p: RequestProjection) => project(deps.pool, p),
  };
}

/**
 * Projects a request's state into the read model (and audits the transitions that need it):
 * the projectRequest activity, and the signing activity inside its own transactions.
 */
export async function project(db: Queryable, p: RequestProjection): Promise<void> {
  await projectState(db, p);
  await auditTransition(db, p);
}

/** The read model's row of the request (project() without its audit entry). */
export async function projectState(db: Queryable, p: RequestProjection): Promise<void> {
  await requests.upsert(db, {
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
}

/**
 * The transitions besides issuance (which the signing activity audits): a request that
 * waits for an operator, an operator's approval or rejection, a request the CA refused, a
 * server fault that stalls it (once per cause), one abandoned, and a CMP certificate
 * confirmed by its client. Keyed per request, so a retried projection writes once. The
 * normal path (signing, issued) writes nothing here.
 */
export async function auditTransition(db: Queryable, p: RequestProjection): Promise<void> {
  const common = {
    object: p.id,
    requestId: p.workflowId,
    details: { protocol: p.protocol, requester: p.requester, profile: p.profile, label: p.label, reason: p.error },
  };
  const client = requesterActor(p.protocol, p.requester);
  if (p.decidedBy && (p.state === 'signing' || p.state === 'rejected')) {
    await audit(db, {
      ...common,
      actor: p.decidedBy,
      action: p.state === 'signing' ? 'request.approve' : 'request.reject',
      key: `request.decide:${p.id}`,
    });
  } else if (p.state === 'failed') {
    await audit(db, { ...common, actor: 'system', action: 'request.refuse', result: 'failed', key: `request.refuse:${p.id}` });
  } else if (p.state === 'awaiting-approval') {
    await audit(db, { ...common, actor: client, action: 'request.create', key: `request.create:${p.id}` });
  } else if (p.state === 'stalled') {
    await audit(db, {
      ...common,
      actor: 'system',
      action: 'request.stall',
      result: 'failed',
      key: `request.stall:${p.id}:${createHash('sha256')
        .update(p.error ?? '')
        .digest('hex')
        .slice(0, 16)}`,
    });
  } else if (p.state === 'abandoned') {
    await audit(db, { ...common, actor: 'system', action: 'request.abandon', result: 'failed', key: `request.abandon:${p.id}` });
  } else if (p.state === 'confirmed') {
    await audit(db, { ...common, actor: client, action: 'request.confirm', key: `request.confirm:${p.id}` });
  }
}
