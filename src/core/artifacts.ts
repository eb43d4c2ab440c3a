/**
 * What the CA signs, kept for the reference linters (issue 11, item 4): when a worker runs
 * with CERTFLOW_ARTIFACTS_DIR set (the test runner sets it), every certificate, CRL and
 * OCSP response it signs is written there as `<kind>-<sha256>.der`, and scripts/test.js
 * runs zlint and pkilint over them after the suite. Off unless the process opted in.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ArtifactKind = 'cert' | 'ca' | 'crl' | 'ocsp';

let dir: string | undefined;

/** Turns recording on in this process when config.artifactsDir (CERTFLOW_ARTIFACTS_DIR) is set (the worker calls it). */
export function enableArtifactRecording(artifactsDir: string | undefined): void {
  dir = artifactsDir;
  if (dir) mkdirSync(dir, { recursive: true });
}

export function recordArtifact(kind: ArtifactKind, der: Uint8Array): void {
  if (!dir) return;
  try {
    writeFileSync(join(dir, `${kind}-${createHash('sha256').update(der).digest('hex').slice(0, 32)}.der`), der);
  } catch {
    // a test aid: never fails a signature
  }
}
