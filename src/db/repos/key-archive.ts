/**
 * Key archive (tables `archive_keys`, `archived_keys`): the public halves of the archive
 * keys, and server-generated private keys encrypted under them (sealed by src/ra/enrollment.ts, opened by activities/key-archive.ts).
 */
import type { Queryable } from '../pool.ts';

export interface ArchiveKeyRow {
  keyId: string;
  keyBackend: string;
  spki: Buffer;
  createdAt: Date;
}

export interface ArchivedKeyRow {
  serial: string;
  requestId: string;
  keyId: string;
  wrappedKey: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  createdAt: Date;
}

interface DbArchiveKey {
  key_id: string;
  key_backend: string;
  spki: Buffer;
  created_at: Date;
}

interface DbArchivedKey {
  serial: string;
  request_id: string;
  key_id: string;
  wrapped_key: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  created_at: Date;
}

const archiveKey = (r: DbArchiveKey): ArchiveKeyRow => ({
  keyId: r.key_id,
  keyBackend: r.key_backend,
  spki: r.spki,
  createdAt: r.created_at,
});

/** Records an archive key's public half; a row that exists already is kept as it is. */
export async function insertArchiveKey(db: Queryable, k: { keyId: string; keyBackend: string; spki: Uint8Array }): Promise<void> {
  await db.query('INSERT INTO archive_keys (key_id, key_backend, spki) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING', [
    k.keyId,
    k.keyBackend,
    Buffer.from(k.spki),
  ]);
}

export async function getArchiveKey(db: Queryable, keyId: string): Promise<ArchiveKeyRow | undefined> {
  const { rows } = await db.query<DbArchiveKey>('SELECT key_id, key_backend, spki, created_at FROM archive_keys WHERE key_id = $1', [
    keyId,
  ]);
  return rows[0] && archiveKey(rows[0]);
}

/** The archive key new archivals use: the newest one. */
export async function newestArchiveKey(db: Queryable): Promise<ArchiveKeyRow | undefined> {
  const { rows } = await db.query<DbArchiveKey>(
    'SELECT key_id, key_backend, spki, created_at FROM archive_keys ORDER BY created_at DESC, key_id DESC LIMIT 1',
  );
  return rows[0] && archiveKey(rows[0]);
}

export async function insertArchivedKey(
  db: Queryable,
  a: Omit<ArchivedKeyRow, 'createdAt' | 'wrappedKey' | 'iv' | 'ciphertext' | 'tag'> & {
    wrappedKey: Uint8Array;
    iv: Uint8Array;
    ciphertext: Uint8Array;
    tag: Uint8Array;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO archived_keys (serial, request_id, key_id, wrapped_key, iv, ciphertext, tag)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [a.serial, a.requestId, a.keyId, Buffer.from(a.wrappedKey), Buffer.from(a.iv), Buffer.from(a.ciphertext), Buffer.from(a.tag)],
  );
}

export async function getArchivedKey(db: Queryable, serial: string): Promise<ArchivedKeyRow | undefined> {
  const { rows } = await db.query<DbArchivedKey>(
    'SELECT serial, request_id, key_id, wrapped_key, iv, ciphertext, tag, created_at FROM archived_keys WHERE serial = $1',
    [serial],
  );
  const r = rows[0];
  return (
    r && {
      serial: r.serial,
      requestId: r.request_id,
      keyId: r.key_id,
      wrappedKey: r.wrapped_key,
      iv: r.iv,
      ciphertext: r.ciphertext,
      tag: r.tag,
      createdAt: r.created_at,
    }
  );
}
