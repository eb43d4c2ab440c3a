/**
 * Opening the key archive, where the CA key store is: the worker's key recovery activity
 * and `certflow keys recover` (which runs where the key store is, like `certflow worker`).
 * Archived keys are sealed by src/ra/enrollment.ts (archiveServerKey).
 */
import { createDecipheriv } from 'node:crypto';
import type { Config } from '../src/config/index.ts';
import { CaError, errorMessage } from '../src/core/errors.ts';
import { archiveAad } from '../src/core/key-archive.ts';
import type { Queryable } from '../src/db/pool.ts';
import * as certificates from '../src/db/repos/certificates.ts';
import * as keyArchive from '../src/db/repos/key-archive.ts';
import { openKeyStore } from '../src/keys/index.ts';
import type { KeyStore } from '../src/keys/types.ts';

/** The archived PKCS#8 of a certificate, and the request it came with. Wipe it after use. */
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

/** recoverArchivedKey with this machine's key store, opened for the call (`certflow keys recover`). */
export async function recoverWithLocalKeyStore(config: Config, db: Queryable, serial: string) {
  const store = await openKeyStore(config, { warn: () => undefined });
  try {
    return await recoverArchivedKey(db, store, serial);
  } finally {
    await store.close();
  }
}
