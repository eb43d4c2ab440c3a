/**
 * Verification of the audit log as `certflow audit verify` and the console's verify run
 * it: the chain in the database, checked against the pinned audit key only (never a key
 * read from the database) and against every checkpoint kept outside the database.
 */
import type { Queryable } from '../db/pool.ts';
import * as auditLog from '../db/repos/audit.ts';
import { outsideCheckpointFile, pinnedAuditKeyFile, readOutsideCheckpoints, readPinnedAuditKey } from '../core/audit-file.ts';

export interface AuditAnchors {
  /** The pinned public audit key (PEM); default $CERTFLOW_HOME/ca/audit-key.pem. */
  keyFile?: string;
  /** The checkpoints kept outside the database; default $CERTFLOW_HOME/audit/checkpoints.jsonl. */
  checkpointFile?: string;
}

export async function verifyAuditLog(db: Queryable, home: string, anchors: AuditAnchors = {}): Promise<auditLog.VerifyResult> {
  const keyFile = anchors.keyFile ?? pinnedAuditKeyFile(home);
  const pinned = await readPinnedAuditKey(keyFile);
  const outside = await readOutsideCheckpoints(anchors.checkpointFile ?? outsideCheckpointFile(home));
  const result = await auditLog.verifyChain(db, { publicKey: pinned?.key, outside });
  if (!pinned && result.checkpoints.length) {
    result.problems.unshift(
      `the pinned audit key ${keyFile} does not exist, so no checkpoint can be trusted (the worker writes it when it creates the audit key: copy it here, or pass --key)`,
    );
  }
  return result;
}
