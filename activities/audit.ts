/**
 * Audit and key-recovery activities (signing queue: they use keys of the CA key store).
 *
 * signAuditCheckpoint, run every audit.checkpointMinutes by the `<queue>-audit-checkpoint`
 * schedule: records the expiry of certificates that expired since (cert.expire, actor
 * "system", once each), then signs the chain head (seq, hash) with the audit key, kept in
 * the database and outside it (src/core/audit-file.ts), so that an auditor can prove the
 * log up to that entry was not rewritten — even by the database's owner.
 */
import { Context } from '@temporalio/activity';
import { constants as cryptoConstants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import {
  appendOutsideCheckpoint,
  outsideCheckpointFile,
  pinnedAuditKeyFile,
  newestOutsideCheckpoint,
  readPinnedAuditKey,
  type SignedCheckpoint,
} from '../src/core/audit-file.ts';
import { CaError } from '../src/core/errors.ts';
import { writeFileAtomic } from '../src/core/files.ts';
import type { Logger } from '../src/core/logger.ts';
import * as auditLog from '../src/db/repos/audit.ts';
import { expiredWithoutAudit } from '../src/db/repos/console.ts';
import { archiveAad } from '../src/core/key-archive.ts';
import { recoverArchivedKey } from './key-archive.ts';
import type { KeyStore } from '../src/keys/types.ts';
import { toActivityFailure } from './failures.ts';
import type { SigningDeps } from './signing.ts';
import type { AuditActivities, CheckpointInput, CheckpointResult, KeyRecoveryActivities } from './types.ts';

/** The audit key's id in the key store. */
export const AUDIT_KEY_ID = 'certflow-audit';
const AUDIT_KEY_ALG = 'ec-p256';
const AUDIT_SIGN_ALG = 'ecdsa-sha256';

/**
 * Creates the audit key in the key store on first start (a key left by a start that
 * crashed before recording it is reused), records its public half in audit_keys, and pins
 * it in $CERTFLOW_HOME/ca/audit-key.pem: written when missing, never replaced — a key
 * store whose audit key is not the pinned one stops the worker.
 */
export async function ensureAuditKey(deps: { config: SigningDeps['config']; pool: Pool; keys: KeyStore; log: Logger }): Promise<void> {
  const { keys, pool, log } = deps;
  const existing = await keys.get(AUDIT_KEY_ID);
  if (existing && existing.alg !== AUDIT_KEY_ALG) {
    throw new CaError(
      'config',
      `key "${AUDIT_KEY_ID}" exists in the ${keys.backend} key store with algorithm ${existing.alg}, not ${AUDIT_KEY_ALG}`,
    );
  }
  const key = existing ?? (await keys.generate(AUDIT_KEY_ID, AUDIT_KEY_ALG, 'sign'));
  if (!existing) log.info({ keyId: AUDIT_KEY_ID, keyBackend: keys.backend }, 'audit key created');
  const publicKey = createPublicKey({ key: Buffer.from(key.spki), format: 'der', type: 'spki' });
  const file = pinnedAuditKeyFile(deps.config.home);
  const pinned = await readPinnedAuditKey(file);
  if (pinned && !pinned.key.equals(publicKey)) {
    throw new CaError(
      'config',
      `the audit key "${AUDIT_KEY_ID}" in the ${keys.backend} key store is not the pinned audit key ${file}: ` +
        'checkpoints it signed would not verify. Restore the key store (or the pinned file) that belong together',
      { rule: 'audit.pinnedKey' },
    );
  }
  if (!pinned) await writeFileAtomic(file, publicKey.export({ type: 'spki', format: 'pem' }) as string);
  const row = await auditLog.getAuditKey(pool, AUDIT_KEY_ID);
  if (!row) await auditLog.insertAuditKey(pool, { keyId: AUDIT_KEY_ID, keyBackend: keys.backend, keyAlg: AUDIT_KEY_ALG, spki: key.spki });
  else if (!row.spki.equals(Buffer.from(key.spki)))
    log.warn({ keyId: AUDIT_KEY_ID }, 'audit_keys holds another public key than the key store: verifiers trust only the pinned key file');
}

/**
 * Records expiries, then signs the chain head — unless the log no longer agrees with the
 * newest checkpoint kept outside the database (someone rewrote it: signing its head would
 * hide that). Each checkpoint goes to the outside file first, then to audit_checkpoints.
 */
async function checkpoint(deps: SigningDeps, input: CheckpointInput): Promise<CheckpointResult> {
  const { pool, keys, log, config } = deps;
  const expired = await expiredWithoutAudit(pool, 30, 1000);
  for (const c of expired) {
    await auditLog.audit(pool, {
      actor: 'system',
      action: 'cert.expire',
      object: c.serial,
      details: { notAfter: c.notAfter.toISOString(), ca: c.caName, subject: c.subject },
      key: `cert.expire:${c.serial}`,
    });
  }
  const head = await auditLog.head(pool);
  if (head.seq === 0) return { seq: 0, hash: head.hash, keyId: AUDIT_KEY_ID, created: false, expired: expired.length };
  const file = outsideCheckpointFile(config.home);
  const newest = await newestOutsideCheckpoint(file);
  if (newest && (await auditLog.entryHash(pool, newest.seq)) !== newest.hash) {
    log.error({ seq: newest.seq, file }, 'the audit log disagrees with the checkpoint kept outside the database: not signing');
    throw new CaError(
      'conflict',
      `the audit log no longer agrees with checkpoint #${newest.seq} kept outside the database (${file}): it was altered. ` +
        'No new checkpoint is signed over it; run `certflow audit verify`',
      { rule: 'audit.tampered' },
    );
  }
  if (newest?.seq === head.seq) return { seq: head.seq, hash: head.hash, keyId: newest.keyId, created: false, expired: expired.length };
  const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const signature = await keys.sign(AUDIT_KEY_ID, AUDIT_SIGN_ALG, auditLog.checkpointMessage({ ...head, signedAt }));
  const cp: SignedCheckpoint = {
    seq: head.seq,
    hash: head.hash,
    signedAt,
    keyId: AUDIT_KEY_ID,
    signAlg: AUDIT_SIGN_ALG,
    signature: Buffer.from(signature),
  };
  await appendOutsideCheckpoint(file, cp);
  const created = await auditLog.insertCheckpoint(pool, cp);
  log.info({ seq: head.seq, requester: input.requester ?? 'schedule', expired: expired.length }, 'audit checkpoint signed');
  return { seq: head.seq, hash: head.hash, keyId: AUDIT_KEY_ID, created, expired: expired.length };
}

export function createAuditActivities(deps: SigningDeps): AuditActivities {
  return {
    async signAuditCheckpoint(input) {
      try {
        return await checkpoint(deps, input);
      } catch (e) {
        throw toActivityFailure(e);
      }
    },
  };
}

/**
 * Key recovery for the console (Officer): the worker decrypts the archived key with the
 * key-archive key and encrypts it again to a one-time public key of the console, so that
 * neither the key nor anything that opens it is ever in Temporal's history in clear.
 * Audited as key.recover (once per activity).
 */
export function createKeyRecoveryActivities(deps: SigningDeps): KeyRecoveryActivities {
  return {
    async recoverKeyForRecipient(input) {
      try {
        const { pkcs8, requestId, keyId } = await recoverArchivedKey(deps.pool, deps.keys, input.serial);
        try {
          const aesKey = randomBytes(32);
          const iv = randomBytes(12);
          const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
          cipher.setAAD(archiveAad(input.serial));
          const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
          const recipient = createPublicKey({ key: Buffer.from(input.recipientSpki, 'base64'), format: 'der', type: 'spki' });
          const wrappedKey = publicEncrypt({ key: recipient, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aesKey);
          aesKey.fill(0);
          const { workflowExecution, activityId } = Context.current().info;
          await auditLog.audit(deps.pool, {
            actor: input.requester,
            action: 'key.recover',
            object: input.serial,
            details: { requestId, keyId, via: 'console' },
            requestId: workflowExecution?.workflowId,
            key: `${workflowExecution?.workflowId}/${workflowExecution?.runId}/${activityId}`,
          });
          return {
            serial: input.serial,
            requestId,
            wrappedKey: wrappedKey.toString('base64'),
            iv: iv.toString('base64'),
            ciphertext: ciphertext.toString('base64'),
            tag: cipher.getAuthTag().toString('base64'),
          };
        } finally {
          pkcs8.fill(0);
        }
      } catch (e) {
        throw toActivityFailure(e);
      }
    },
  };
}
