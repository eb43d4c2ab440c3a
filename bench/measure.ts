/**
 * Measurement helpers shared by the benchmarks (bench/est.ts, bench/acme.ts, ...): a POST of
 * bytes, percentiles, CPU accounting from Linux /proc, Postgres commit and WAL counters, Temporal event times.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

// ---- requests --------------------------------------------------------------------------

/**
 * POSTs `body` as `contentType` to http://127.0.0.1:`port``path` through `agent`; resolves
 * with the status and the answer's bytes, or status 0 and `error` when the exchange failed
 * or took longer than `timeoutMs`. Never rejects.
 */
export function postBytes(
  agent: http.Agent,
  port: number,
  path: string,
  contentType: string,
  body: Uint8Array,
  timeoutMs = 120_000,
): Promise<{ status: number; body: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, path, method: 'POST', headers: { 'Content-Type': contentType, 'Content-Length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: e.message }));
    req.end(body);
  });
}

// ---- statistics ------------------------------------------------------------------------

/** The p-th percentile (nearest rank) of ascending `sorted`; `ifEmpty` when there is nothing. */
export function percentile(sorted: number[], p: number, ifEmpty = NaN): number {
  if (!sorted.length) return ifEmpty;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

// ---- CPU accounting (Linux /proc) ------------------------------------------------------

export const TICKS_PER_SEC = 100; // USER_HZ on Linux

export interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks: own CPU plus that of waited-for children. */
  ticks: number;
}

export function readProcStats(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return stats;
  }
  for (const name of entries) {
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      stats.set(Number(name), { ppid, ticks });
    } catch {
      // the process ended meanwhile
    }
  }
  return stats;
}

/** `root` and its live descendants (at most 10,000 processes). */
export function descendants(stats: Map<number, { ppid: number }>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  const out: number[] = [];
  const seen = new Set<number>();
  const todo = [root];
  while (todo.length && out.length < 10_000) {
    const pid = todo.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds of each named process and its live descendants (Postgres backends), and of
 * this process (`benchClient`).
 */
export function cpuSeconds(pids: Record<string, number>): Record<string, number> {
  const stats = readProcStats();
  const result: Record<string, number> = {};
  for (const [name, root] of Object.entries(pids)) {
    result[name] = descendants(stats, root).reduce((sum, pid) => sum + (stats.get(pid)?.ticks ?? 0), 0) / TICKS_PER_SEC;
  }
  const self = process.cpuUsage();
  result.benchClient = (self.user + self.system) / 1e6;
  return result;
}

/** The server side's share of a cpuSeconds()-shaped record: every process but the benchmark client. */
export function serverSideCpu(cpu: Record<string, number>): number {
  return Object.entries(cpu).reduce((sum, [name, v]) => (name === 'benchClient' ? sum : sum + v), 0);
}

/** Busy and total CPU time of the whole machine (first line of /proc/stat), in ticks. */
export function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

// ---- Postgres ----------------------------------------------------------------------------

/** Runs `fn` with a connected client of `url`, ended afterwards. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface PostgresCounters {
  commits: number;
  walSyncs: number;
  walBytes: number;
}

/** Commits in the certflow database and WAL syncs of the server (pg_stat_wal, Postgres 14+). */
export async function postgresCounters(databaseUrl: string): Promise<PostgresCounters | undefined> {
  try {
    return await withPg(databaseUrl, async (c) => {
      const { rows } = await c.query(
        'SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS commits, ' +
          'wal_sync::float8 AS "walSyncs", wal_bytes::float8 AS "walBytes" FROM pg_stat_wal',
      );
      return rows[0] as PostgresCounters;
    });
  } catch {
    return undefined;
  }
}

/**
 * Commits, WAL flushes (fsync) and WAL KiB per unit of work (an enrollment, an order) between
 * two postgresCounters() snapshots; null when either is missing.
 */
export function postgresPerUnit(
  before: PostgresCounters | undefined,
  after: PostgresCounters | undefined,
  units: number,
): { commits: number; walSyncs: number; walKiB: number } | null {
  const round = (x: number, digits: number) => Number(x.toFixed(digits));
  return before && after
    ? {
        commits: round((after.commits - before.commits) / Math.max(units, 1), 1),
        walSyncs: round((after.walSyncs - before.walSyncs) / Math.max(units, 1), 2),
        walKiB: round((after.walBytes - before.walBytes) / 1024 / Math.max(units, 1), 1),
      }
    : null;
}

// ---- Temporal event times ------------------------------------------------------------------

export interface TimestampLike {
  seconds?: { toNumber(): number } | number | string | null;
  nanos?: number | null;
}

/** Milliseconds since the epoch of a protobuf Timestamp (NaN for none). */
export function tsMs(t: TimestampLike | null | undefined): number {
  if (!t) return NaN;
  const s = t.seconds;
  const secs = s == null ? 0 : typeof s === 'object' ? s.toNumber() : Number(s);
  return secs * 1000 + (t.nanos ?? 0) / 1e6;
}

// ---- V8 CPU profiles of the certflow processes (--cpu-prof DIR) ---------------------------------

/**
 * A module for NODE_OPTIONS=--import (--cpu-prof itself is not allowed there): profiles the
 * main thread from the start; each SIGWINCH writes (SIGUSR2 would stop a Temporal worker) <dir>/<pid>-<n>.cpuprofile and starts anew.
 */
export function writeProfilerPreload(tmp: string, outDir: string): string {
  const file = join(tmp, 'cpu-profiler.mjs');
  writeFileSync(
    file,
    `import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
if (isMainThread) {
  const session = new Session();
  session.connect();
  let n = 0;
  const start = () => session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 500 }, () => session.post('Profiler.start')));
  start();
  process.on('SIGWINCH', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) {
        mkdirSync(${JSON.stringify(outDir)}, { recursive: true });
        writeFileSync(${JSON.stringify(outDir)} + '/' + process.pid + '-' + n++ + '.cpuprofile', JSON.stringify(result.profile));
      }
      start();
    });
  });
}
`,
  );
  return file;
}

export async function dumpProfiles(pids: number[]): Promise<void> {
  if (!pids.length) return;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGWINCH');
    } catch {
      /* gone */
    }
  }
  await sleep(1500);
}

/**
 * The environment that makes a bench stack's certflow processes write V8 CPU profiles into
 * `outDir` (`--cpu-prof DIR` of bench:acme, bench:est, bench:cmp): <pid>-0 from the start
 * to the first dumpProfiles(), then one file per dump.
 */
export function profilerEnv(outDir: string): { NODE_OPTIONS: string } {
  const dir = mkdtempSync(join(tmpdir(), 'certflow-bench-prof-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const preload = writeProfilerPreload(dir, outDir);
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim() };
}
