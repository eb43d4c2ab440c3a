/**
 * The whole repository type-checks under strict TypeScript (tsx runs it without checking).
 * Incremental: tsc keeps what it learnt in node_modules/.cache, so a second run checks only what changed.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));

it('tsc --noEmit (strict) reports no errors', () => {
  const r = spawnSync(
    process.execPath,
    [
      'node_modules/typescript/bin/tsc',
      '-p',
      '.',
      '--noEmit',
      '--incremental',
      '--tsBuildInfoFile',
      'node_modules/.cache/tsc/tsconfig.tsbuildinfo',
    ],
    { cwd: repo, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
