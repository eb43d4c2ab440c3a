/**
 * Key archival for EST server-side key generation (RFC 7030 4.4). Runs in the front end,
 * which holds only the archive key's public half: the PKCS#8 is encrypted with a fresh
 * AES-256-GCM key, and that key is wrapped with RSA-OAEP-SHA256 under the newest archive
 * key (archive_keys, created by the worker's bootstrap). Unwrapping needs the CA key store
 * (`certflow keys recover`).
 */
import { constants as cryptoConstants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as keyArchive from '../db/repos/key-archive.ts';

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
  await keyArchive.insertArchivedKey(db, { serial: a.serial, requestId: a.requestId, keyId: archive.keyId, wrappedKey, iv, ciphertext, tag });
}
