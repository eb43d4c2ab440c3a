/**
 * The format of the key archive (EST server-side key generation with archiveServerKeys):
 * which key of the key store archived keys are wrapped to, and what binds an archived key
 * to its certificate. Sealing: src/ra/enrollment.ts (front end side, public key only);
 * opening: activities/key-archive.ts (where the key store is).
 */

/** The archive key's id in the key store. */
export const ARCHIVE_KEY_ID = 'certflow-archive';

/** Additional authenticated data: binds the ciphertext to its certificate. */
export function archiveAad(serial: string): Buffer {
  return Buffer.from(`certflow-archive\n${serial}`, 'utf8');
}
