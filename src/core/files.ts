import { mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file atomically (temp file + rename, parent directories created): a crash never
 * leaves a half-written certificate or key behind.
 */
export async function writeFileAtomic(file: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, file);
}

/**
 * A lock between processes that install something into the same place (a venv, a build):
 * mkdir is atomic, so whoever creates the directory holds the lock. A lock older than
 * `staleMs` was left by a killed process and is removed. Release with rmSync(lock).
 */
export function tryLockDir(lock: string, staleMs: number): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const since = statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
    if (since !== undefined && Date.now() - since > staleMs) rmSync(lock, { recursive: true, force: true });
    return false;
  }
}
