/**
 * Dev-mode process supervision: every child's pid is in $CERTFLOW_HOME/run/<name>.pid, and
 * a child that dies unexpectedly is restarted with exponential backoff (logged), so that
 * `kill -9` of any one of them is survived.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from '../core/child.ts';
import { CaError } from '../core/errors.ts';

export interface ChildHandle {
  pid: number | undefined;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface ChildSpec {
  name: string;
  /** Starts the child and resolves once it is ready to serve. */
  start(): Promise<ChildHandle>;
}

export type Say = (msg: string) => void;

export class Supervisor {
  private readonly children: Array<{ spec: ChildSpec; handle?: ChildHandle; restart?: () => void }> = [];
  private stopping = false;

  constructor(
    private readonly runDir: string,
    private readonly say: Say,
  ) {}

  /**
   * Refuses to start while another stack on the same home runs (its children's pid files
   * name live processes): both would use the same data directory and ports.
   */
  refuseIfRunning(names: string[], what: string): void {
    const running = names.filter((name) => {
      const file = join(this.runDir, `${name}.pid`);
      return existsSync(file) && processAlive(Number(readFileSync(file, 'utf8').trim()));
    });
    if (running.length) {
      throw new CaError(
        'conflict',
        `${what} is running on this CERTFLOW_HOME (${running.map((n) => `run/${n}.pid`).join(', ')}): stop it first`,
      );
    }
  }

  /** Stops processes a previous, killed supervisor left running (their pid files remain). */
  async reapStale(names: string[]): Promise<void> {
    for (const name of names) {
      const file = join(this.runDir, `${name}.pid`);
      if (!existsSync(file)) continue;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0 && processAlive(pid)) {
        this.say(`stopping ${name} (pid ${pid}) left over from an earlier run`);
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 100 && processAlive(pid); i++) await sleep(100);
        if (processAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      await rm(file, { force: true });
    }
  }

  /** Starts a child, waits for it to be ready, and keeps it running until stopAll(). */
  async add(spec: ChildSpec): Promise<void> {
    await mkdir(this.runDir, { recursive: true });
    const entry: { spec: ChildSpec; handle?: ChildHandle } = { spec };
    this.children.push(entry);
    entry.handle = await this.launch(spec);
    void this.watch(entry);
  }

  private async launch(spec: ChildSpec): Promise<ChildHandle> {
    const handle = await spec.start();
    if (handle.pid) await writeFile(join(this.runDir, `${spec.name}.pid`), `${handle.pid}\n`);
    return handle;
  }

  private async watch(entry: { spec: ChildSpec; handle?: ChildHandle; restart?: () => void }): Promise<void> {
    let backoff = 1000;
    for (;;) {
      const startedAt = Date.now();
      const code = await entry.handle!.exited;
      if (this.stopping) return;
      if (entry.restart) {
        // Stopped on purpose by restart(): started again at once.
        const done = entry.restart;
        entry.restart = undefined;
        entry.handle = await this.launch(entry.spec).catch((e: unknown) => {
          this.say(`${entry.spec.name} failed to restart: ${(e as Error).message}`);
          return { pid: undefined, exited: Promise.resolve(null), stop: async () => {} };
        });
        if (entry.handle.pid) this.say(`${entry.spec.name} restarted (pid ${entry.handle.pid})`);
        done();
        continue;
      }
      this.say(
        `${entry.spec.name} exited unexpectedly (${code === null ? 'killed by a signal' : `code ${code}`}); restarting in ${backoff / 1000} s`,
      );
      if (Date.now() - startedAt > 60_000) backoff = 1000; // it ran a while: not a crash loop
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 30_000);
      if (this.stopping) return;
      try {
        entry.handle = await this.launch(entry.spec);
        this.say(`${entry.spec.name} restarted (pid ${entry.handle.pid})`);
      } catch (e) {
        this.say(`${entry.spec.name} failed to restart: ${(e as Error).message}`);
        entry.handle = { pid: undefined, exited: Promise.resolve(null), stop: async () => {} };
      }
    }
  }

  /** Stops a child and starts it again; resolves once the new one is ready (or failed to start). */
  async restart(name: string): Promise<void> {
    const entry = this.children.find((c) => c.spec.name === name);
    if (!entry?.handle || this.stopping) return;
    const restarted = new Promise<void>((resolve) => (entry.restart = resolve));
    await entry.handle.stop();
    await restarted;
  }

  /** Stops children in reverse start order. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const entry of [...this.children].reverse()) {
      this.say(`stopping ${entry.spec.name}`);
      await entry.handle?.stop().catch(() => {});
      await rm(join(this.runDir, `${entry.spec.name}.pid`), { force: true });
    }
  }
}
