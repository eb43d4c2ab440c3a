/**
 * Key archival for EST server-side key generation (RFC 7030 4.4). Runs in the front end,
 * which holds only the archive key's public half: the PKCS#8 is encrypted with a fresh
 * AES-256-GCM key, and that key is wrapped with RSA-OAEP-SHA256 under the newest archive
 * key (archive_keys, created by the worker's bootstrap). Unwrapping needs the CA key store
 * (`certflow keys recover`).
 */
import { constants as cryptoConstants, createCipheriv, createDecipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as keyArchive from '../db/repos/key-archive.ts';
import type { KeyStore } from '../keys/types.ts';

/** The archive key's id in the key store. */
export const ARCHIVE_KEY_ID = 'certflow-archive';

/** Additional authenticated data: binds the ciphertext to its certificate. */
export function archiveAad(serial: string): Buffer {
  return Buffer.from(`certflow-archive\n${serial}`, 'utf8');
}

export async function archiveKey(db: Queryable, a: { serial: string; requestId: string; pkcs8: Uint8Array }): Promise<void> {
  const archive = await keyArchive.newestArchiveKey(db);
  if (!archive) {
    throw new CaError('unavailable', 'no key-archive key exists yet (the worker creates it at start); the key was not handed out');
  }
  const aesKey = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
  cipher.setAAD(archiveAad(a.serial));
  const ciphertext = Buffer.concat([cipher.update(a.pkcs8), cipher.final()]);
  const tag = cipher.getAuthTag();
  const publicKey = createPublicKey({ key: archive.spki, format: 'der', type: 'spki' });
  const wrappedKey = publicEncrypt({ key: publicKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aesKey);
  aesKey.fill(0);
  await keyArchive.insertArchivedKey(db, {
    serial: a.serial,
    requestId: a.requestId,
    keyId: archive.keyId,
    wrappedKey,
    iv,
    ciphertext,
    tag,
  });
}

/**
 * The inverse of archiveKey, where the key store is (the worker, `certflow keys recover`):
 * the archived PKCS#8 of a certificate, and the request it came with. Wipe it after use.
 */
export async function recoverArchivedKey(
  db: Queryable,
  keys: KeyStore,
  serial: string,
): Promise<{ pkcs8: Buffer; requestId: string; keyId: string }> {
  const row = await keyArchive.getArchivedKey(db, serial);
  if (!row) {
    const cert = await certificates.get(db, serial);
    throw new CaError(
      'notFound',
      cert
        ? `certificate ${serial} has no archived key (only EST serverkeygen on labels with archiveServerKeys archives keys)`
        : `no certificate with serial ${serial}`,
    );
  }
  const archive = await keyArchive.getArchiveKey(db, row.keyId);
  if (archive && archive.keyBackend !== keys.backend) {
    throw new CaError(
      'config',
      `archive key "${row.keyId}" is in the ${archive.keyBackend} key store, but CERTFLOW_KEY_BACKEND=${keys.backend}`,
    );
  }
  if (!(await keys.get(row.keyId))) throw new CaError('config', `the archive key "${row.keyId}" is not in the ${keys.backend} key store`);
  const aesKey = Buffer.from(await keys.decrypt(row.keyId, 'rsa-oaep-sha256', row.wrappedKey));
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey, row.iv);
    decipher.setAAD(archiveAad(row.serial));
    decipher.setAuthTag(row.tag);
    return { pkcs8: Buffer.concat([decipher.update(row.ciphertext), decipher.final()]), requestId: row.requestId, keyId: row.keyId };
  } catch (e) {
    throw new CaError('internal', `the archived key of ${serial} does not decrypt (corrupted or tampered with): ${errorMessage(e)}`, {
      cause: e,
    });
  } finally {
    aesKey.fill(0);
  }
}
