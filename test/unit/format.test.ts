/**
 * Every source file is formatted by prettier (.prettierrc.json): `npm run format` fixes what
 * this finds. Prettier's cache (node_modules/.cache/prettier, by content) makes a second run
 * look only at changed files.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));

it('prettier --check reports no unformatted file', () => {
  const r = spawnSync(
    process.execPath,
    ['node_modules/prettier/bin/prettier.cjs', '--check', '--cache', '--cache-strategy', 'content', '--log-level', 'warn', '.'],
    {
      cwd: repo,
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, `run \`npm run format\`:\n${r.stdout}${r.stderr}`);
});
