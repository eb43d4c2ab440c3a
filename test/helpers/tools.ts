/**
 * External programs the ACME tests drive (certbot, lego, pebble-challtestsrv): where to find
 * them, and the `skip` option for their tests — a reason outside CI when one is missing, and
 * false in CI, where the tests then run and fail loudly instead of passing by skipping
 * (the same rule as test/helpers/estclient.ts). .ci/run installs them from Debian
 * (`apt-get install certbot lego pebble`).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliResult } from './certflow.ts';

export interface ExternalTool {
  /** Executable name, looked up on $PATH. */
  name: string;
  /** Environment variable that may name the binary explicitly. */
  envVar: string;
  /** How to get it. */
  hint: string;
  /** Directories searched besides $PATH (a project-local venv). */
  dirs?: string[];
}

export const CERTBOT: ExternalTool = {
  name: 'certbot',
  envVar: 'CERTFLOW_TEST_CERTBOT',
  hint: 'install the Debian package: apt-get install certbot (as .ci/run does)',
};

export const LEGO: ExternalTool = {
  name: 'lego',
  envVar: 'CERTFLOW_TEST_LEGO',
  hint: 'install the Debian package: apt-get install lego (as .ci/run does)',
};

export const CHALLTESTSRV: ExternalTool = {
  name: 'pebble-challtestsrv',
  envVar: 'CERTFLOW_TEST_CHALLTESTSRV',
  hint: 'install the Debian package: apt-get install pebble (as .ci/run does)',
};

export const CHECK_JSONSCHEMA: ExternalTool = {
  name: 'check-jsonschema',
  envVar: 'CERTFLOW_TEST_CHECK_JSONSCHEMA',
  hint: 'install the PyPI package into the project venv: .certflow/venv/bin/pip install check-jsonschema (as .ci/run does)',
  dirs: [fileURLToPath(new URL('../../.certflow/venv/bin', import.meta.url))],
};

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $<envVar>, else `name` on $PATH (and /usr/bin, /usr/sbin); undefined when not found. */
function toolPath(tool: ExternalTool): string | undefined {
  const explicit = process.env[tool.envVar];
  if (explicit) return executable(explicit) ? explicit : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin', ...(tool.dirs ?? [])];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, tool.name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

function missing(tool: ExternalTool): string {
  const explicit = process.env[tool.envVar];
  return explicit
    ? `${tool.name} not found: ${tool.envVar}=${explicit} is not executable`
    : `${tool.name} not found on $PATH (or set ${tool.envVar}); ${tool.hint}`;
}

/** The binary, or an error that says how to get it. */
export function requireTool(tool: ExternalTool): string {
  const path = toolPath(tool);
  if (!path) throw new Error(missing(tool));
  return path;
}

/**
 * The `skip` option for tests needing `tools`: a reason outside CI when one is missing,
 * false in CI (CI=true) so that a missing tool fails the run.
 */
export function toolsSkip(...tools: ExternalTool[]): string | false {
  if (process.env.CI) return false;
  const absent = tools.filter((t) => !toolPath(t));
  return absent.length ? absent.map(missing).join('; ') : false;
}

/**
 * Runs a program with a time limit; never throws for a non-zero exit (tests look at
 * `code`). A program killed at the limit gets code 124 and a note on stderr.
 */
export function runProgram(
  bin: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}\n[cannot run ${bin}: ${e.message}]` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[killed after ${(opts.timeoutMs ?? 120_000) / 1000} s]`;
      resolve({ code: timedOut ? 124 : (code ?? (signal ? 128 : 1)), stdout, stderr });
    });
  });
}
