/**
 * bin/compile-cache.js: V8's compiled code of CommonJS modules, kept on disk for the next
 * certflow process. Each case runs real node processes over modules in a temporary directory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Module } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const compileCache = new URL('../../bin/compile-cache.js', import.meta.url).href;
// Node >= 22.1 caches by itself; bin/compile-cache.js then only turns that on.
const ownCache = !(Module as unknown as { enableCompileCache?: unknown }).enableCompileCache;

interface Run {
  result: unknown;
  counts: { cached: number; compiled: number };
}

describe('the compile cache', { skip: !ownCache && 'this Node caches compiled code itself' }, () => {
  let dir: string;
  let cacheDir: string;
  /** One process: enables the cache, require()s main.cjs and awaits its run(). */
  const run = (): Run =>
    JSON.parse(execFileSync(process.execPath, [join(dir, 'driver.mjs'), cacheDir, join(dir, 'main.cjs')], { encoding: 'utf8' })) as Run;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'certflow-compile-cache-'));
    cacheDir = join(dir, 'cache');
    writeFileSync(
      join(dir, 'driver.mjs'),
      `import { enableCompileCache } from ${JSON.stringify(compileCache)};
import { createRequire } from 'node:module';
const counts = enableCompileCache(process.argv[2]);
const result = await createRequire(import.meta.url)(process.argv[3]).run();
console.log(JSON.stringify({ result, counts }));
`,
    );
    writeFileSync(
      join(dir, 'main.cjs'),
      `const { value } = require('./dep.cjs');
const path = require('node:path');
exports.run = async () => ({
  value,
  dirname: __dirname,
  filename: path.basename(__filename),
  resolved: path.basename(require.resolve('./dep.cjs')),
  cachedModule: require.cache[require.resolve('./dep.cjs')].exports.value,
  imported: (await require('./late.cjs').load()).esm,
  required: require('./esm.mjs').esm,
});
`,
    );
    writeFileSync(join(dir, 'dep.cjs'), `exports.value = 'one';\n`);
    // A module with import() and an ES module: both left to Node's own compiler.
    writeFileSync(join(dir, 'late.cjs'), `exports.load = () => import('./esm.mjs');\n`);
    writeFileSync(join(dir, 'esm.mjs'), `export const esm = 'esm';\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a later process runs the modules from the stored code, with the same require, __dirname and results', () => {
    const first = run();
    const expected = {
      value: 'one',
      dirname: dir,
      filename: 'main.cjs',
      resolved: 'dep.cjs',
      cachedModule: 'one',
      imported: 'esm',
      required: 'esm',
    };
    assert.deepEqual(first.result, expected);
    assert.deepEqual(first.counts, { cached: 0, compiled: 2 }, 'main.cjs and dep.cjs compiled; late.cjs (import()) left to Node');
    assert.equal(readdirSync(cacheDir).filter((f) => f.endsWith('.bin')).length, 1);
    const second = run();
    assert.deepEqual(second.result, expected);
    assert.deepEqual(second.counts, { cached: 2, compiled: 0 });
  });

  it('a file changed to other content of the same length is compiled again, never run from the old code', () => {
    writeFileSync(join(dir, 'dep.cjs'), `exports.value = 'two';\n`);
    const changed = run();
    assert.equal((changed.result as { value: string }).value, 'two');
    assert.deepEqual(changed.counts, { cached: 1, compiled: 1 });
    assert.deepEqual(run().counts, { cached: 2, compiled: 0 });
  });

  it('a damaged cache file is ignored and replaced', () => {
    const [file] = readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));
    writeFileSync(join(cacheDir, file!), 'not a cache');
    const damaged = run();
    assert.equal((damaged.result as { value: string }).value, 'two');
    assert.deepEqual(damaged.counts, { cached: 0, compiled: 2 });
    assert.deepEqual(run().counts, { cached: 2, compiled: 0 });
  });
});
