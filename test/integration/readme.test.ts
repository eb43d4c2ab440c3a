/**
 * The documentation's shell examples work as written: every fenced block whose info string
 * is `sh runnable`, in README.md and in docs/*.md, runs under `bash -euo pipefail` against
 * a test stack (worker, server and console). The blocks of one file run in document order
 * and in one working directory of their own (later blocks use files of earlier ones). Only
 * what differs between that stack and a dev stack is rewritten: the default ports 8443,
 * 8080 and 8444 become the stack's, `npx certflow` runs this checkout's bin/certflow.js, and
 * `.certflow` in the working directory is the stack's CERTFLOW_HOME.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certflowBin, createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** README.md, then docs/*.md in name order: the files whose runnable blocks are run. */
const DOCS = [
  'README.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

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

const files = DOCS.map((file) => ({ file, blocks: runnableBlocks(readFileSync(join(repo, file), 'utf8')) })).filter((f) => f.blocks.length);

describe('runnable examples of README.md and docs/*.md', () => {
  let cf: TestInstance;
  const dirs = new Map<string, string>();

  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    await Promise.all([cf.startServer(), cf.startAdmin()]);
  });
  after(async () => {
    await cf?.cleanup();
    for (const dir of dirs.values()) await rm(dir, { recursive: true, force: true });
  });

  /** The working directory of a file's blocks, with `.certflow` pointing at the stack's home. */
  async function cwdOf(file: string): Promise<string> {
    let dir = dirs.get(file);
    if (!dir) {
      dir = await mkdtemp(join(tmpdir(), 'certflow-docs-'));
      await symlink(cf.home, join(dir, '.certflow'));
      dirs.set(file, dir);
    }
    return dir;
  }

  it('the README has runnable blocks, the EST cacerts pipeline among them; so do the protocol docs', () => {
    const readme = files.find((f) => f.file === 'README.md')?.blocks ?? [];
    assert.ok(readme.length >= 3, `${readme.length} runnable blocks in README.md`);
    assert.ok(readme.some((b) => /\/\.well-known\/est\/cacerts \| base64 -d \| openssl pkcs7/.test(b.code)));
    for (const doc of ['docs/est.md', 'docs/cmp.md', 'docs/cli.md'])
      assert.ok(
        files.some((f) => f.file === doc),
        `${doc} has runnable blocks`,
      );
  });

  for (const { file, blocks } of files) {
    for (const [n, block] of blocks.entries()) {
      it(`runs block ${n + 1} (${file} line ${block.line}): ${block.code.split('\n')[0]!.slice(0, 70)}`, async () => {
        const ports: Record<string, number> = { '8443': cf.httpsPort, '8080': cf.httpPort, '8444': cf.adminPort };
        const script = block.code
          .replace(/\b(localhost|127\.0\.0\.1):(8443|8080|8444)\b/g, (_, host: string, port: string) => `${host}:${ports[port]}`)
          .replaceAll('npx certflow', `"${process.execPath}" "${certflowBin}"`);
        const r = await runTool('bash', ['-euo', 'pipefail', '-c', script], {
          cwd: await cwdOf(file),
          env: { ...cf.env, PATH: process.env.PATH },
        });
        assert.equal(r.code, 0, `${file} line ${block.line} failed:\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      });
    }
  }
});
