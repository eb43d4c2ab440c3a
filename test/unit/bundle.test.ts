/**
 * bin/bundle.js: what a certflow process loads before its command runs. Every CLI call pays
 * for it (a full `npm test` makes ~400), so the bundle is checked to keep out what a command
 * does not need.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const bundle = new URL('../../bin/bundle.js', import.meta.url).href;

/** Loads the CLI's code as bin/certflow.js does, and lists the modules Node loaded. */
function loadedModules(): { builtins: string[]; files: string[] } {
  const script = `
const { cliMain } = await import(${JSON.stringify(bundle)});
await cliMain();
const { createRequire } = await import('node:module');
const files = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ builtins: process.moduleLoadList, files }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as {
    builtins: string[];
    files: string[];
  };
}

describe('the CLI bundle', () => {
  it("loads neither undici (pg's Cloudflare check), @temporalio/workflow (the workflow API's definitions) nor pino (loggers) with the command tree", () => {
    const { builtins, files } = loadedModules();
    assert.deepEqual(
      builtins.filter((m) => m.includes('undici')),
      [],
    );
    assert.deepEqual(
      files.filter((f) => f.includes('@temporalio/workflow') || /node_modules[\\/]pino[\\/]/.test(f)),
      [],
    );
    // pg is in the bundle: none of its files is loaded from node_modules.
    assert.deepEqual(
      files.filter((f) => /node_modules[\\/](pg|pg-[a-z-]+|commander)[\\/]/.test(f)),
      [],
    );
  });

  it("`certflow --version` and `-V` print package.json's version and exit 0", () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const cli = new URL('../../bin/certflow.js', import.meta.url).pathname;
    for (const flag of ['--version', '-V']) assert.equal(execFileSync(process.execPath, [cli, flag], { encoding: 'utf8' }), `${version}\n`);
  });
});
