import { existsSync, linkSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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

/**
 * A file created once with `content()`, never replaced: two processes creating it at the
 * same time both end up reading the first one's (link() of a complete temp file fails when
 * the name exists). For the private keys that several servers share.
 */
export async function createOnce(file: string, content: () => string, mode = 0o600): Promise<string> {
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.new`;
    await writeFileAtomic(tmp, content(), mode);
    try {
      linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return readFile(file, 'utf8');
}
