/**
 * What the CA signs, kept for the reference linters (issue 11, item 4): when a worker runs
 * with CERTFLOW_ARTIFACTS_DIR set (the test runner sets it), every certificate, CRL and
 * OCSP response it signs is written there as `<kind>-<sha256>.der`, and scripts/test.js
 * runs zlint and pkilint over them after the suite. Off unless the process opted in.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ArtifactKind = 'cert' | 'ca' | 'crl' | 'ocsp';

let dir: string | undefined;

/** Turns recording on in this process when config.artifactsDir (CERTFLOW_ARTIFACTS_DIR) is set (the worker calls it). */
export function enableArtifactRecording(artifactsDir: string | undefined): void {
  dir = artifactsDir;
  if (dir) mkdirSync(dir, { recursive: true });
}

/**
 * Writes `der` as `<kind>-<hash>.der`, through a temporary name and a rename: the crash
 * tests kill workers with SIGKILL, and one killed between creating the file and writing it
 * left an empty artifact that pkilint then failed on. The temporary name starts with a dot,
 * which no linter takes for a kind.
 */
export function recordArtifact(kind: ArtifactKind, der: Uint8Array): void {
  if (!dir) return;
  try {
    const name = `${kind}-${createHash('sha256').update(der).digest('hex').slice(0, 32)}.der`;
    const tmp = join(dir, `.${name}.${process.pid}`);
    writeFileSync(tmp, der);
    renameSync(tmp, join(dir, name));
  } catch {
    // a test aid: never fails a signature
  }
}
