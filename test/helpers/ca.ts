/**
 * Helpers of the CA lifecycle tests: CLI calls that must succeed (parsed --json output),
 * files of PEM certificates, and recording a finished workflow's history for the replay
 * tests when CERTFLOW_RECORD_HISTORIES=1.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { CaOperationResult } from '../../activities/types.ts';
import { runTool, type CliResult, type TestInstance } from './certflow.ts';
import { clientEnv, type AcmeStack } from './acme.ts';
import { CERTBOT, requireTool, runProgram } from './tools.ts';
import { withTemporal } from './temporal.ts';

/** Runs `certflow --json <args>` and returns the parsed output; fails the test on a non-zero exit. */
export async function cliJson<T = CaOperationResult & { workflowId: string }>(
  cf: TestInstance,
  args: string[],
  input?: string,
): Promise<T> {
  const r = await cf.cli(['--json', ...args], input === undefined ? undefined : { input });
  assert.equal(r.code, 0, `certflow ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** Runs the CLI expecting it to fail with `code` and a message matching `message`. */
export async function cliFails(cf: TestInstance, args: string[], code: number, message: RegExp): Promise<CliResult> {
  const r = await cf.cli(args);
  assert.equal(r.code, code, `certflow ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r;
}

/** Writes PEM text to a file in the instance's home and returns its path. */
export async function pemFile(cf: TestInstance, name: string, pem: string): Promise<string> {
  const file = join(cf.home, name);
  await writeFile(file, pem);
  return file;
}

/** `openssl verify`; returns the result (tests assert on code and output). */
export function opensslVerify(args: string[]): Promise<CliResult> {
  return runTool('openssl', ['verify', ...args]);
}

/** With CERTFLOW_RECORD_HISTORIES=1: writes the finished workflow's history to test/replay/histories/<name>.json. */
export async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (process.env.CERTFLOW_RECORD_HISTORIES !== '1') return;
  await withTemporal(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    await handle.result().catch(() => undefined);
    const file = fileURLToPath(new URL(`../replay/histories/${name}.json`, import.meta.url));
    await writeFile(file, historyToJSON(await handle.fetchHistory()) + '\n');
  });
}

/**
 * `certbot certonly --standalone` for one name against `stack`'s ACME directory (an alias
 * when given), its state under `dir`; the certificate ends in `<dir>/config/live/<name>/`.
 */
export function certbotCertonly(
  stack: AcmeStack,
  dir: string,
  name: string,
  opts: { alias?: string; extra?: string[] } = {},
): Promise<CliResult> {
  return runProgram(
    requireTool(CERTBOT),
    [
      'certonly',
      '--standalone',
      '--http-01-port',
      String(stack.http01Port),
      '--http-01-address',
      '127.0.0.1',
      '-d',
      name,
      '--cert-name',
      name,
      ...(opts.extra ?? []),
      '--config-dir',
      join(dir, 'config'),
      '--work-dir',
      join(dir, 'work'),
      '--logs-dir',
      join(dir, 'logs'),
      '--server',
      stack.directoryUrl(opts.alias),
      '--non-interactive',
      '--agree-tos',
      '-m',
      'test@example.test',
      '--no-eff-email',
    ],
    { env: clientEnv(stack, { REQUESTS_CA_BUNDLE: stack.root }), timeoutMs: 120_000 },
  );
}
