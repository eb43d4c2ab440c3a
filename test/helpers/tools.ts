/**
 * External programs the ACME tests drive (certbot, lego, acme-tiny, acmetool, lacme,
 * pebble-challtestsrv): where to find them, and the `skip` option for their tests — a reason
 * outside CI when one is missing, and false in CI, where the tests then run and fail loudly
 * instead of passing by skipping (the same rule as test/helpers/estclient.ts). .ci/run
 * installs them from Debian (`apt-get install certbot lego pebble acme-tiny acmetool lacme`).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

export const ACME_TINY: ExternalTool = {
  name: 'acme-tiny',
  envVar: 'CERTFLOW_TEST_ACME_TINY',
  hint: 'install the Debian package: apt-get install acme-tiny (as .ci/run does)',
};

export const ACMETOOL: ExternalTool = {
  name: 'acmetool',
  envVar: 'CERTFLOW_TEST_ACMETOOL',
  hint: 'install the Debian package: apt-get install acmetool (as .ci/run does)',
};

export const LACME: ExternalTool = {
  name: 'lacme',
  envVar: 'CERTFLOW_TEST_LACME',
  hint: 'install the Debian packages: apt-get install lacme lacme-accountd (as .ci/run does)',
};

export const LACME_ACCOUNTD: ExternalTool = {
  name: 'lacme-accountd',
  envVar: 'CERTFLOW_TEST_LACME_ACCOUNTD',
  hint: 'install the Debian package: apt-get install lacme-accountd (as .ci/run does)',
};

export const CHALLTESTSRV: ExternalTool = {
  name: 'pebble-challtestsrv',
  envVar: 'CERTFLOW_TEST_CHALLTESTSRV',
  hint: 'install the Debian package: apt-get install pebble (as .ci/run does)',
};

export const PROMTOOL: ExternalTool = {
  name: 'promtool',
  envVar: 'CERTFLOW_TEST_PROMTOOL',
  hint: 'install the Debian package: apt-get install prometheus (as .ci/run does; only its promtool is used)',
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
 *
 * `group`: the program runs in a process group of its own, for programs that fork helpers
 * (lacme: its webserver, ACME client and lacme-accountd). At the limit the group gets SIGTERM
 * (the program's own cleanup), then SIGKILL 5 s later; whatever of the group is still alive
 * 3 s after the program exited is killed too, with a note on stderr, so no helper outlives a
 * test.
 */
export function runProgram(
  bin: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; group?: boolean } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    /** Signals the program (its whole group with `group`); false when nothing was there to signal. */
    const signal = (sig: NodeJS.Signals | 0): boolean => {
      try {
        if (opts.group && child.pid) process.kill(-child.pid, sig);
        else if (sig !== 0) child.kill(sig);
        return true;
      } catch {
        return false;
      }
    };
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      if (!opts.group) return void signal('SIGKILL');
      signal('SIGTERM');
      killTimer = setTimeout(() => signal('SIGKILL'), 5_000);
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}\n[cannot run ${bin}: ${e.message}]` });
    });
    // On exit, not close: a helper left behind may hold the program's stdout open. Helpers
    // the program ended may still be exiting (or be zombies until init reaps them): they get
    // a grace period before they count as left behind.
    const groupGone = new Promise<boolean>((done) => {
      if (!opts.group) return done(false);
      child.once('exit', async () => {
        for (let i = 0; i < 30 && signal(0); i++) await sleep(100);
        done(signal(0) && signal('SIGKILL'));
      });
    });
    child.once('close', async (code, sig) => {
      clearTimeout(timer);
      const leftBehind = await groupGone;
      clearTimeout(killTimer);
      if (timedOut) stderr += `\n[killed after ${(opts.timeoutMs ?? 120_000) / 1000} s]`;
      else if (leftBehind) stderr += `\n[${bin} exited and left processes of its group behind; killed them]`;
      resolve({ code: timedOut ? 124 : (code ?? (sig ? 128 : 1)), stdout, stderr });
    });
  });
}
