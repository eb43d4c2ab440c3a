/**
 * The design rules check themselves (docs/architecture.md, "Rules and how they are checked"):
 *  - dependency-cruiser (.dependency-cruiser.cjs): the layering between directories and no
 *    import cycles, type-only imports included;
 *  - ESLint (eslint.config.js): typescript-eslint's recommended rules, SQL only in src/db,
 *    the environment only in src/config, workflow names, ids and queues only in
 *    workflows/api.ts, workflows started and updated only in src/ra;
 *  - knip (knip.json): no unused files, exports or dependencies.
 * Each runs over the repository (`npm run lint` runs the same), with its cache in
 * node_modules/.cache (a second run looks at changed files only), and each rule is shown to
 * fail on a file that breaks it, so that a rule that stopped matching cannot pass unseen.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name: string) => join(repo, 'node_modules', '.bin', name);

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}) {
  return spawnSync(cmd, args, { cwd: opts.cwd ?? repo, input: opts.input, encoding: 'utf8', maxBuffer: 32 << 20 });
}

describe('design rules', () => {
  it('dependency-cruiser: the layering holds and there is no import cycle', () => {
    const r = run(bin('depcruise'), [
      '--cache',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'err',
      'src',
      'workflows',
      'activities',
      'bin',
      'scripts',
      'test',
      'bench',
    ]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('ESLint: typescript-eslint and the design rules report nothing', () => {
    const r = run(bin('eslint'), [
      '--cache',
      '--cache-strategy',
      'content',
      '--cache-location',
      'node_modules/.cache/eslint/',
      '--max-warnings',
      '0',
      '.',
    ]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('knip: no unused file, export or dependency', () => {
    const r = run(bin('knip'), ['--no-progress', '--cache']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('each design rule fails on code that breaks it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'certflow-rules-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  it('dependency-cruiser names every broken layering rule', () => {
    write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
    write('src/keys/store.ts', 'export const sign = 1;\n');
    write('workflows/order.ts', "import { query } from '../src/db/pool.ts';\nexport const order = query;\n");
    write(
      'src/acme/orders.ts',
      "import { sign } from '../keys/store.ts';\nimport { order } from '../../workflows/order.ts';\nexport const x = [sign, order];\n",
    );
    write('src/db/pool.ts', "import type { Deps } from '../acme/api.ts';\nexport const query = (d: Deps) => d;\n");
    write('src/acme/api.ts', "import type { query } from '../db/pool.ts';\nexport type Deps = typeof query;\n");
    const r = run(bin('depcruise'), ['--config', join(repo, '.dependency-cruiser.cjs'), '--output-type', 'json', 'src', 'workflows'], {
      cwd: dir,
    });
    const rules = new Set(
      (JSON.parse(r.stdout) as { summary: { violations: Array<{ rule: { name: string } }> } }).summary.violations.map((v) => v.rule.name),
    );
    for (const rule of [
      'no-cycles', // type-only: src/db/pool.ts <-> src/acme/api.ts
      'front-ends-never-touch-ca-keys',
      'front-ends-use-the-workflow-api-only',
      'workflows-import-only-workflow-safe-code',
      'db-knows-no-caller',
    ]) {
      assert.ok(rules.has(rule), `${rule} not reported: ${[...rules].join(', ')}`);
    }
  });

  it('ESLint reports the environment, SQL, workflow names, ids, queues and starts outside their homes', () => {
    const probe = [
      'declare const client: { workflow: { start(t: string): void } };',
      'export const home = process.env.CERTFLOW_HOME;',
      "export const sql = 'SELECT id FROM certificates';",
      "export const type = 'enrollmentWorkflow';",
      'export const id = `acme-order-${home}`;',
      'export const queue = `${home}-signing`;',
      "client.workflow.start('x');",
    ].join('\n');
    const r = run(bin('eslint'), ['--stdin', '--stdin-filename', 'src/acme/probe.ts', '--format', 'json'], { input: probe });
    const messages = (JSON.parse(r.stdout) as Array<{ messages: Array<{ line: number; ruleId: string }> }>)[0]!.messages;
    const byLine = new Map(messages.map((m) => [m.line, m.ruleId]));
    assert.equal(byLine.get(2), 'no-restricted-properties', 'process.env');
    for (const line of [3, 4, 5, 6, 7])
      assert.equal(byLine.get(line), 'no-restricted-syntax', `line ${line}: ${probe.split('\n')[line - 1]}`);
    // The same lines are allowed where they belong.
    const inConfig = run(bin('eslint'), ['--stdin', '--stdin-filename', 'src/config/probe.ts'], {
      input: 'export const home = process.env.X;\n',
    });
    assert.equal(inConfig.status, 0, inConfig.stdout);
    const inDb = run(bin('eslint'), ['--stdin', '--stdin-filename', 'src/db/repos/probe.ts'], {
      input: "export const sql = 'SELECT id FROM certificates';\n",
    });
    assert.equal(inDb.status, 0, inDb.stdout);
  });
});
