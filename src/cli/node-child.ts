/**
 * Runs `certflow <command>` as a child process (worker, server) whose readiness arrives
 * over the IPC channel, with its output appended to a log file.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildHandle } from './supervisor.ts';
import { runCommand } from '../core/child.ts';

const bin = fileURLToPath(new URL('../../bin/certflow.js', import.meta.url));

export interface ReadyMessage {
  type: 'ready';
  [k: string]: unknown;
}

/** Tells a supervising parent (if any) that this process is ready. */
export function notifyReady(info: Record<string, unknown> = {}): void {
  process.send?.({ type: 'ready', ...info } satisfies ReadyMessage);
}

function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export async function spawnCertflow(args: {
  command: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  readyTimeoutMs: number;
  /** What node runs instead of `bin/certflow.js <command>` (tests: a worker with injected faults). */
  argv?: string[];
}): Promise<ChildHandle & { ready: ReadyMessage }> {
  const fd = openSync(args.logFile, 'a');
  const child = spawn(process.execPath, args.argv ?? [bin, ...args.command], {
    env: args.env,
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `certflow ${args.command.join(' ')} not ready after ${args.readyTimeoutMs / 1000} s; log ${args.logFile}:\n${tail(args.logFile)}`,
          ),
        ),
      args.readyTimeoutMs,
    );
    child.on('message', (m: ReadyMessage) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `certflow ${args.command.join(' ')} exited (code ${code}) before it was ready; log ${args.logFile}:\n${tail(args.logFile)}`,
        ),
      );
    });
  }).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    pid: child.pid,
    exited,
    ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a one-shot `certflow <command>` to completion; resolves with its output, fails with its end. */
export function runCertflow(command: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return runCommand(process.execPath, [bin, ...command], { env, what: `certflow ${command.join(' ')}` });
}
