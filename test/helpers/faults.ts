/**
 * Fault injection for outage tests: a Postgres of the test's own (so that it can be
 * stopped with SIGSTOP and killed with SIGKILL without touching the run's shared one), and
 * a TCP proxy in front of a service that can refuse connections or swallow them (a
 * service that accepts but never answers).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmodSync } from 'node:fs';
import { preparePostgres, spawnPostgres, type PostgresHandle } from '../../src/db/embedded.ts';
import { processAlive } from '../../src/core/child.ts';
import { freePort } from '../../src/core/net.ts';

/** The pids of `pid` and all its descendants (from /proc). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

function signalTree(pid: number, signal: NodeJS.Signals): number {
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      process.kill(p, signal);
      n++;
    } catch {
      // gone already
    }
  }
  return n;
}

export interface OwnPostgres {
  port: number;
  /** URL of the `certflow` database. */
  url: string;
  /** SIGSTOP to the postmaster and every backend: connections hang, nothing answers. */
  freeze(): void;
  thaw(): void;
  /** SIGKILL to the postmaster and every backend (after a freeze too). */
  kill(): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A durable (fsync on) Postgres of this test alone, in a temp directory. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const home = await mkdtemp(join(tmpdir(), 'certflow-ownpg-'));
  chmodSync(home, 0o755); // the server runs as "postgres" when the tests run as root
  await preparePostgres({ home }, {});
  const port = await freePort();
  const spawn = () => spawnPostgres({ home }, { port, logFile: join(home, 'postgres.log') });
  let handle: PostgresHandle = await spawn();
  return {
    port,
    url: handle.url,
    freeze: () => void signalTree(handle.pid, 'SIGSTOP'),
    thaw: () => void signalTree(handle.pid, 'SIGCONT'),
    async kill() {
      const pids = processTree(handle.pid);
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await handle.exited;
      // Backends of a killed postmaster may linger a moment holding the shared memory.
      for (let i = 0; i < 50 && pids.some(processAlive); i++) await sleep(100);
    },
    async restart() {
      for (let attempt = 0; ; attempt++) {
        try {
          handle = await spawn();
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          await sleep(1000);
        }
      }
    },
    async stop() {
      signalTree(handle.pid, 'SIGCONT');
      await handle.stop(10_000).catch(() => {});
      await rm(home, { recursive: true, force: true });
    },
  };
}

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export interface TcpProxy {
  /** host:port clients connect to. */
  address: string;
  /** forward: a working service; refuse: connection refused; blackhole: connections accepted, nothing answered. */
  set(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `target` ("host:port"). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, portText] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)];
  const port = await freePort();
  const sockets = new Set<Socket>();
  let mode: ProxyMode = 'forward';
  let server: Server | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        track(client);
        if (mode === 'blackhole') return; // accepted, never answered
        const upstream = createConnection({ host, port: Number(portText) });
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  const unlisten = () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await listen();
  return {
    address: `127.0.0.1:${port}`,
    async set(next) {
      if (next === mode) return;
      const wasListening = mode !== 'refuse';
      mode = next;
      dropAll();
      if (next === 'refuse') await unlisten();
      else if (!wasListening) await listen();
    },
    async close() {
      dropAll();
      if (mode !== 'refuse') await unlisten();
    },
  };
}
