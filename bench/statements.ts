/**
 * Postgres statements per request, for the benchmarks' profiles: every statement logged
 * (log_min_duration_statement=0) while `run` makes its requests, then counted by text and
 * by the process that sent it (the server or the worker, from the client port of each
 * backend). The stack's Postgres writes its log to `<home>/postgres.log` (bench/stack.ts).
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendants, readProcStats, withPg } from './measure.ts';

/** What of a stack the profile needs (bench/stack.ts's BenchStack has it). */
export interface StatementStack {
  home: string;
  databaseUrl: string;
  pids: { server: number; worker: number };
}

/** Per process (server, worker): statements, transactions and Postgres time per request, by statement text. */
export type StatementProfile = Record<string, Record<string, number | Record<string, number>>>;

/**
 * Runs `run` with every statement logged and returns its result and the statements per
 * request, `units` requests of the kind `unit` ('Order' gives statementsPerOrder, ...).
 */
export async function recordStatements<T>(
  stack: StatementStack,
  unit: string,
  run: () => Promise<{ result: T; units: number }>,
): Promise<{ result: T; postgres: StatementProfile }> {
  const logFile = join(stack.home, 'postgres.log');
  const owners = await backendOwners(stack);
  await setStatementLogging(stack, true);
  const offset = statSync(logFile).size;
  let done: { result: T; units: number };
  try {
    done = await run();
    // Connections opened during the run (pools grow on demand).
    for (const [pid, owner] of await backendOwners(stack)) owners.set(pid, owner);
  } finally {
    await setStatementLogging(stack, false);
  }
  return { result: done.result, postgres: statementProfile(readFrom(logFile, offset), owners, done.units, unit) };
}

/** Local TCP port -> pid, for the sockets of the given processes (and their descendants). */
function socketOwners(pids: Record<string, number>): Map<number, string> {
  const stats = readProcStats();
  const inodeOwner = new Map<string, string>();
  for (const [name, root] of Object.entries(pids)) {
    for (const pid of descendants(stats, root)) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          if (m) inodeOwner.set(m[1]!, name);
        } catch {
          /* closed meanwhile */
        }
      }
    }
  }
  const portOwner = new Map<number, string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const owner = inodeOwner.get(f[9]!);
      if (owner) portOwner.set(parseInt(f[1]!.split(':')[1]!, 16), owner);
    }
  }
  return portOwner;
}

/** Postgres backend pid -> owning process name (server, worker, bench). */
async function backendOwners(stack: StatementStack): Promise<Map<number, string>> {
  const ports = socketOwners({ server: stack.pids.server, worker: stack.pids.worker });
  return withPg(stack.databaseUrl, async (c) => {
    const { rows } = await c.query<{ pid: number; port: number | null; me: boolean }>(
      'SELECT pid, client_port AS port, pid = pg_backend_pid() AS me FROM pg_stat_activity WHERE datname = current_database()',
    );
    const owners = new Map<number, string>();
    for (const r of rows) owners.set(r.pid, r.me ? 'bench' : (r.port != null && ports.get(r.port)) || 'other');
    return owners;
  });
}

async function setStatementLogging(stack: StatementStack, on: boolean): Promise<void> {
  await withPg(stack.databaseUrl, async (c) => {
    if (on) {
      await c.query('ALTER SYSTEM SET log_min_duration_statement = 0');
      await c.query("ALTER SYSTEM SET log_line_prefix = '%m [%p] '");
      await c.query('ALTER SYSTEM SET log_parameter_max_length = 0');
    } else {
      await c.query('ALTER SYSTEM RESET log_min_duration_statement');
      await c.query('ALTER SYSTEM RESET log_line_prefix');
      await c.query('ALTER SYSTEM RESET log_parameter_max_length');
    }
    await c.query('SELECT pg_reload_conf()');
  });
  await sleep(300); // backends pick up the new settings between statements
}

function readFrom(file: string, offset: number): string {
  const size = statSync(file).size;
  if (size <= offset) return '';
  const buf = Buffer.alloc(size - offset);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}

/** Short, parameter-free text of a statement, for grouping. */
function statementKey(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim().slice(0, 90);
}

function statementProfile(log: string, owners: Map<number, string>, units: number, unit: string): StatementProfile {
  const line = /^\S+ \S+ \S+ \[(\d+)\] LOG:\s+duration: ([\d.]+) ms\s+(parse|bind|execute|statement)[^:]*: (.*)$/;
  const queries: Record<string, Record<string, number>> = {};
  const dbMs: Record<string, number> = {};
  const commits: Record<string, number> = {};
  // A statement whose text spans lines goes on in tab-indented lines (most of certflow's
  // start with a line break): its key is read from all of them.
  const entries: Array<{ pid: number; ms: number; phase: string; text: string }> = [];
  for (const l of log.split('\n')) {
    const m = line.exec(l);
    if (m) entries.push({ pid: Number(m[1]), ms: Number(m[2]), phase: m[3]!, text: m[4]! });
    else if (l.startsWith('\t') && entries.length) entries[entries.length - 1]!.text += `\n${l}`;
  }
  for (const { pid, ms, phase, text } of entries) {
    const sql = statementKey(text);
    // The benchmark's own connections (counters, ALTER SYSTEM) are not the server's.
    const owner = /^(ALTER SYSTEM|SELECT pg_reload_conf|SELECT pid, client_port)/.test(sql) ? 'bench' : (owners.get(pid) ?? 'other');
    dbMs[owner] = (dbMs[owner] ?? 0) + ms;
    if (phase === 'parse' || phase === 'bind') continue;
    (queries[owner] ??= {})[sql] = ((queries[owner] ??= {})[sql] ?? 0) + 1;
    if (/^COMMIT/i.test(sql)) commits[owner] = (commits[owner] ?? 0) + 1;
  }
  const per = (n: number) => Number((n / Math.max(units, 1)).toFixed(2));
  return Object.fromEntries(
    Object.entries(queries)
      .filter(([owner]) => owner !== 'bench')
      .map(([owner, byText]) => [
        owner,
        {
          [`statementsPer${unit}`]: per(Object.values(byText).reduce((a, b) => a + b, 0)),
          [`explicitTransactionsPer${unit}`]: per(commits[owner] ?? 0),
          [`postgresMsPer${unit}`]: per(dbMs[owner] ?? 0),
          byStatement: Object.fromEntries(
            Object.entries(byText)
              .sort((a, b) => b[1] - a[1])
              .map(([sql, n]) => [sql, per(n)]),
          ),
        },
      ]),
  );
}
