#!/usr/bin/env node
// Test runner (`npm test`): starts ONE embedded Postgres and ONE headless Temporal dev server
// for the whole run, runs node's test runner on test/**/*.test.ts with their addresses in
// the environment, then stops both servers and exits with the tests' exit code.
//
//   node scripts/test.js                              all tests
//   node scripts/test.js test/component/db.test.ts    some files or directories
//   node scripts/test.js test/unit                    (`npm run test:unit`) no servers at all
//   node scripts/test.js --test-name-pattern=x        flags starting with "--" go to `node --test`
//
// The test directories: test/unit needs no server (no Postgres, Temporal, sockets or server
// processes), so a run of only those starts none; test/component needs Postgres or Temporal
// (or starts a server of its own: the workflow tests' time-skipping test server, the VA's
// challenge responders) but not certflow's processes; test/integration and test/security run
// certflow's servers and workers against real clients; test/replay replays recorded histories.
//
// Tests reach the servers through CERTFLOW_TEST_DATABASE_URL (admin URL: create a database
// per test file, see test/helpers/stack.ts) and CERTFLOW_TEST_TEMPORAL_ADDRESS.
// Server logs are kept in a temp directory when a run fails, and removed otherwise.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const { preparePostgres, spawnPostgres } = await import('../src/db/embedded.ts');
const { resolveTemporalCli } = await import('../src/temporal/cli.ts');
const { spawnTemporalDevServer } = await import('../src/temporal/devserver.ts');
const { freePort } = await import('../src/core/net.ts');
const { createTemplateDatabase } = await import('../test/helpers/stack.ts');
const { compile } = await import('../bin/bundle.js');

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => process.stderr.write(`test: ${msg}\n`);
/** Tests that need no server: a run of only these starts neither Postgres nor Temporal. */
const SERVERLESS_DIRS = ['test/unit/', 'test/replay/'];

/** Files named *.test.ts under `dir`, sorted, skipping node_modules and dot directories. */
function collect(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules') found.push(...collect(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found.sort();
}

/**
 * Started first: the longest single processes of a run (eslint, dependency-cruiser and knip
 * over the whole repository; prettier). In name order they started last and a full run
 * ended with the design rules alone on the machine for ~15 s.
 */
const FIRST = ['test/unit/design-rules.test.ts', 'test/unit/format.test.ts'];

function testFiles(args) {
  const targets = args.length ? args : [join(repo, 'test')];
  const files = targets.flatMap((t) => {
    const path = resolve(t);
    if (!existsSync(path)) throw new Error(`no such test file or directory: ${t}`);
    return statSync(path).isDirectory() ? collect(path) : [path];
  });
  const first = (f) => FIRST.includes(relative(repo, f));
  return [...files.filter(first), ...files.filter((f) => !first(f))];
}

/** Starts both servers at once; if one fails, the other is stopped before rethrowing. */
async function startServers(work) {
  const started = Date.now();
  const postgres = (async () => {
    say('starting Postgres...');
    // Root's mkdtemp directory is 0700; the server runs as the "postgres" user and must reach its data dir.
    chmodSync(work, 0o755);
    await preparePostgres({ home: work }, { ephemeral: true, log: say });
    const port = await freePort();
    const pg = await spawnPostgres({ home: work }, { port, logFile: join(work, 'postgres.log'), ephemeral: true, log: say });
    say(`Postgres ready on 127.0.0.1:${port} (${seconds(started)})`);
    return pg;
  })();
  const temporal = (async () => {
    say('starting Temporal...');
    const cli = await resolveTemporalCli({ home: join(repo, '.certflow'), log: say });
    const port = await freePort();
    const server = await spawnTemporalDevServer({
      cli,
      ip: '127.0.0.1',
      port,
      dbFile: join(work, 'temporal.sqlite'),
      namespace: 'default',
      logFile: join(work, 'temporal.log'),
    });
    say(`Temporal ready on ${server.address} (${seconds(started)})`);
    return server;
  })();
  const [pg, tp] = await Promise.allSettled([postgres, temporal]);
  const servers = [pg, tp].filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = [pg, tp].find((r) => r.status === 'rejected');
  if (failed) {
    await stopAll(servers);
    throw failed.reason;
  }
  return { postgres: pg.value, temporal: tp.value, servers };
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

async function stopAll(servers) {
  await Promise.all(servers.map((s) => s.stop().catch((e) => say(`stopping pid ${s.pid}: ${e.message}`))));
}

/**
 * Every process of the run carries this variable (the tests pass their environment on), so
 * that what a test file left behind can be found after the run: a file killed at its time
 * limit cannot stop the servers and workers it started, nor can one that crashed.
 */
const RUN_MARKER = 'CERTFLOW_TEST_RUNNER_PID';

/** Stops the processes of this run still alive once the tests and servers are done (Linux: /proc). */
function stopStrays() {
  if (!existsSync('/proc')) return;
  const mark = `${RUN_MARKER}=${process.pid}`;
  const strays = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark)) continue;
      strays.push({ pid, name: readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').slice(0, 3).join(' ').trim() });
    } catch {
      // Gone already, or not ours to read.
    }
  }
  for (const p of strays) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  if (strays.length)
    say(`stopped ${strays.length} process(es) the tests left running: ${strays.map((p) => `${p.pid} ${p.name}`).join('; ')}`);
}

/** The shell's convention: 128 + signal number. */
function exitCodeFor(signal) {
  return signal === 'SIGTERM' ? 143 : 130;
}

/**
 * The test files compiled to JavaScript (bin/bundle.js's compile(): one code-split bundle of
 * all of them), so that each file's process loads plain modules instead of transpiling and
 * resolving ~100 modules through tsx's loader hooks (about a second of CPU per file).
 * Returns the compiled paths in the same order, or undefined when esbuild fails (the files
 * then run through tsx). `outdir` lies inside the repository so that Node finds the packages.
 */
async function compileTests(files, outdir) {
  const names = files.map((f) => relative(repo, f).replace(/\.ts$/, ''));
  try {
    await compile(Object.fromEntries(names.map((n, i) => [n, files[i]])), outdir);
    return names.map((n) => join(outdir, `${n}.js`));
  } catch (e) {
    say(`cannot compile the tests (running them through tsx): ${e.message}`);
    return undefined;
  }
}

function runTests(files, nodeFlags, env, serverless) {
  // One file per core for serverless runs (test/unit, test/replay: CPU-bound), two more than
  // that for runs with servers: most of an integration file's time is spent waiting on child
  // processes, clients, timers and heartbeats (a full run: 1042 s with 3 files at once, 958 s
  // with 4, both beside the same other load), and every file has its own database, task
  // queue, ports and CERTFLOW_HOME, so files never see each other's state (4 on the 2-core
  // CI machines). `--test-concurrency=N` overrides.
  const cores = Math.max(2, availableParallelism());
  const concurrency = nodeFlags.some((f) => f.startsWith('--test-concurrency'))
    ? []
    : [`--test-concurrency=${serverless ? cores : cores + 2}`];
  // A time limit for every file and test: a file that hangs (a deadlocked process waits for
  // ever and node --test has no other limit) fails after 10 minutes, with the rest of the run
  // reported, instead of holding CI until its own limit. The longest file takes ~1.5 minutes.
  const timeout = nodeFlags.some((f) => f.startsWith('--test-timeout')) ? [] : ['--test-timeout=600000'];
  // Compiled files: stack traces name the TypeScript sources.
  const loader = files.every((f) => f.endsWith('.js')) ? ['--enable-source-maps'] : ['--import', 'tsx'];
  const args = [...loader, '--test', ...concurrency, ...timeout, '--test-reporter=spec', ...nodeFlags, ...files];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: repo });
  const exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0)));
    child.once('error', (e) => {
      say(`cannot run node --test: ${e.message}`);
      resolveExit(1);
    });
  });
  return { child, exited };
}

async function main() {
  const argv = process.argv.slice(2);
  const nodeFlags = argv.filter((a) => a.startsWith('--'));
  let files;
  try {
    files = testFiles(argv.filter((a) => !a.startsWith('--')));
  } catch (e) {
    say(e.message);
    return 2;
  }
  if (!files.length) {
    say('no test files found');
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'certflow-test-'));
  const artifacts = join(work, 'artifacts');
  const compiledDir = join(repo, 'node_modules', '.cache', 'certflow', `tests-${process.pid}`);
  const serverless = files.every((f) => SERVERLESS_DIRS.some((d) => relative(repo, f).startsWith(d)));
  let servers = [];
  let tests;
  let interrupted;
  // Ctrl-C reaches the whole process group (tests and servers) by itself; a SIGTERM sent to
  // this process alone is forwarded. Either way, fall through to the cleanup below.
  const onSignal = (signal) => {
    interrupted = signal;
    say(`${signal}: stopping`);
    tests?.child.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 1;
  try {
    const env = { ...process.env, CERTFLOW_ARTIFACTS_DIR: artifacts, [RUN_MARKER]: String(process.pid) };
    // Tests reach only loopback addresses and trust only the CAs they make. Node 20 parses
    // NODE_EXTRA_CA_CERTS when a process starts: set machine-wide to the system's bundle (as
    // on these machines), that is ~90 ms of CPU in each of the ~700 Node processes of a run.
    delete env.NODE_EXTRA_CA_CERTS;
    if (serverless) say('only test/unit and test/replay: no Postgres, no Temporal');
    else {
      const stack = await startServers(work);
      servers = stack.servers;
      if (interrupted) return exitCodeFor(interrupted);
      Object.assign(env, {
        CERTFLOW_TEST_DATABASE_URL: stack.postgres.adminUrl,
        // The runtime login (no superuser, owns nothing): test/helpers/stack.ts grants it its privileges per database.
        CERTFLOW_TEST_DATABASE_APP_URL: stack.postgres.appUrl,
        CERTFLOW_TEST_TEMPORAL_ADDRESS: stack.temporal.address,
        CERTFLOW_TEST_TEMPORAL_NAMESPACE: stack.temporal.namespace,
        // Migrated once; each test file's database is a copy of it.
        CERTFLOW_TEST_DATABASE_TEMPLATE: await createTemplateDatabase(stack.postgres.adminUrl, stack.postgres.appUrl),
      });
    }
    say(`running ${files.length} test file(s): ${files.map((f) => relative(repo, f)).join(' ')}`);
    const compiled = await compileTests(files, compiledDir);
    tests = runTests(compiled ?? files, nodeFlags, env, serverless);
    code = await tests.exited;
    if (interrupted) return exitCodeFor(interrupted);
    const lint = await lintArtifacts(artifacts);
    if (code === 0 && !lint) code = 1;
    return code;
  } catch (e) {
    say(`cannot start the test stack: ${e?.message ?? e}`);
    return 1;
  } finally {
    rmSync(compiledDir, { recursive: true, force: true });
    await stopAll(servers);
    stopStrays();
    if (code === 0 && !interrupted) rmSync(work, { recursive: true, force: true });
    else say(`server logs kept in ${work}`);
  }
}

/**
 * The reference linters over everything the workers signed during the run (issue 11,
 * item 4): zlint (RFC 5280 lints) over every certificate, pkilint over every certificate,
 * CRL and OCSP response. Both are installed by .ci/run (zlint into .certflow/go/bin,
 * pkilint into .certflow/venv); without them the check is skipped outside CI and fails in
 * CI. Returns false when a linter found an error.
 */
async function lintArtifacts(dir) {
  const files = existsSync(dir) ? readdirSync(dir).sort() : [];
  if (!files.length) return true;
  const zlint = [join(repo, '.certflow/go/bin/zlint')].find((p) => existsSync(p));
  const python = join(repo, '.certflow/venv/bin/python');
  const hasPkilint = existsSync(python) && spawnOk(python, ['-c', 'import pkilint']);
  if (!zlint || !hasPkilint) {
    say(`lint: ${files.length} signed objects not linted: ${!zlint ? 'zlint' : 'pkilint'} is not installed (.ci/run installs it)`);
    return !process.env.CI;
  }
  // After the tests the machine is idle: pkilint (~5 ms of CPU per object, a few thousand
  // objects) runs in one process per core, zlint beside them.
  const shards = Math.max(2, availableParallelism());
  // Resolves with { stdout }; a failed run rejects with an error carrying its stdout.
  const run = (cmd, args) => promisify(execFile)(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const pkilint = Promise.all(
    Array.from({ length: shards }, (_, i) =>
      run(python, [join(repo, 'scripts/lint-artifacts.py'), dir, `${i}/${shards}`]).then(
        ({ stdout }) => ({ ok: true, stdout }),
        (e) => ({ ok: false, stdout: String(e.stdout ?? e.message) }),
      ),
    ),
  );
  let zlintErrors = 0;
  const certs = files.filter((f) => f.startsWith('cert-'));
  // zlint lints the files it is given one after the other, a JSON line each: a few hundred per call.
  for (let i = 0; i < certs.length; i += 200) {
    const batch = certs.slice(i, i + 200);
    const { stdout } = await run(zlint, ['-format', 'der', '-includeSources', 'RFC5280', ...batch.map((f) => join(dir, f))]);
    const lines = stdout.trim().split('\n');
    if (lines.length !== batch.length) throw new Error(`zlint answered ${lines.length} lines for ${batch.length} certificates`);
    batch.forEach((f, k) => {
      const bad = Object.entries(JSON.parse(lines[k])).filter(([, r]) => r.result === 'error' || r.result === 'fatal');
      if (bad.length) {
        zlintErrors++;
        say(`lint: zlint ${f}: ${bad.map(([name, r]) => `${name}${r.details ? ` (${r.details})` : ''}`).join(', ')}`);
      }
    });
  }
  say(`lint: zlint (RFC 5280): ${certs.length} certificates, ${zlintErrors} with errors`);
  let ok = zlintErrors === 0;
  // Each shard prints its findings, then its JSON summary as the last line.
  const total = { pkilint: {}, errors: 0, localhostOrWildcardFindings: 0 };
  for (const shard of await pkilint) {
    const lines = shard.stdout.trim().split('\n');
    let summary;
    try {
      summary = JSON.parse(lines.at(-1));
    } catch {
      summary = undefined;
    }
    if (!shard.ok || !summary) {
      process.stderr.write(`${shard.stdout}\n`);
      ok = false;
    }
    if (!summary) continue;
    for (const [kind, n] of Object.entries(summary.pkilint)) total.pkilint[kind] = (total.pkilint[kind] ?? 0) + n;
    total.errors += summary.errors;
    total.localhostOrWildcardFindings += summary.localhostOrWildcardFindings;
  }
  say(`lint: ${JSON.stringify(total)}`);
  if (total.errors) say('lint: pkilint found errors');
  if (!ok) say(`lint: the signed objects are kept in ${dir}`);
  return ok;
}

function spawnOk(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// exit() rather than exitCode: a handle leaked by a library must not keep the runner alive.
process.exit(await main());
