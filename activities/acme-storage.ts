/** ACME read-model projection (local activities of the order and authz workflows). */
import type { Pool } from 'pg';
import { withTransaction } from '../src/db/pool.ts';
import * as orders from '../src/db/repos/acme-orders.ts';
import type { AcmeStorageActivities } from './acme-types.ts';

export function createAcmeStorageActivities(deps: { pool: Pool }): AcmeStorageActivities {
  const { pool } = deps;
  return {
    createOrderRecords: (order, authzs) => withTransaction(pool, (tx) => orders.insertOrderRecords(tx, order, authzs)),
    createAuthzRecords: (authz) => withTransaction(pool, (tx) => orders.insertAuthzRecords(tx, authz)),
    projectOrder: (p) => orders.updateOrder(pool, p),
    projectAuthz: (p) => orders.updateAuthz(pool, p),
    projectChallenge: (p) => orders.updateChallenge(pool, p),
  };
}
