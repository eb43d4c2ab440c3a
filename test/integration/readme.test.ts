/**
 * The README's shell examples work as written (issue 11, item 10): every fenced block whose
 * info string is `sh runnable` runs, in document order and in one working directory (later
 * blocks use files of earlier ones), under `bash -euo pipefail` against a test stack. Only
 * what differs between that stack and a dev stack is rewritten: the default ports 8443 and
 * 8080 become the stack's, `npx certflow` runs this checkout's bin/certflow.js, and
 * `.certflow` in the working directory is the stack's CERTFLOW_HOME.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certflowBin, createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The `sh runnable` blocks of a Markdown text, with the line each starts on. */
function runnableBlocks(markdown: string): Array<{ line: number; code: string }> {
  const blocks: Array<{ line: number; code: string }> = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```sh\s+runnable\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const line = i + 2; // 1-based number of the block's first line
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(indent));
    blocks.push({ line, code: body.join('\n') });
  }
  return blocks;
}

describe('README examples', () => {
  let cf: TestInstance;
  let cwd: string;
  const blocks = runnableBlocks(readFileSync(README, 'utf8'));

  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    await cf.startServer();
    cwd = await mkdtemp(join(tmpdir(), 'certflow-readme-'));
    await symlink(cf.home, join(cwd, '.certflow'));
  });
  after(async () => {
    await cf?.cleanup();
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('has runnable blocks, the EST cacerts pipeline among them', () => {
    assert.ok(blocks.length >= 3, `${blocks.length} runnable blocks`);
    assert.ok(blocks.some((b) => /\/\.well-known\/est\/cacerts \| base64 -d \| openssl pkcs7/.test(b.code)));
  });

  for (const [n, block] of blocks.entries()) {
    it(`runs block ${n + 1} (README.md line ${block.line}): ${block.code.split('\n')[0]!.slice(0, 70)}`, async () => {
      const script = block.code
        .replaceAll('https://localhost:8443', `https://localhost:${cf.httpsPort}`)
        .replaceAll('http://localhost:8080', `http://localhost:${cf.httpPort}`)
        .replaceAll('npx certflow', `"${process.execPath}" "${certflowBin}"`);
      const r = await runTool('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { ...cf.env, PATH: process.env.PATH } });
      assert.equal(r.code, 0, `README.md line ${block.line} failed:\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    });
  }
});
