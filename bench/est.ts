/**
 * EST simpleenroll throughput and latency against a complete, durable certflow stack
 * (bench/stack.ts: embedded Postgres with fsync, Temporal dev server, one worker, one
 * server): HTTP Basic enrollments of pre-generated P-256 CSRs, with 1 and 16 parallel
 * clients by default, over keep-alive HTTPS connections.
 *
 *   npm run bench:est [-- --requests 200] [--concurrency 1,16] [--warmup 10] [--profile-requests 20] [--max-seconds 600] [--cpu-prof DIR]
 *
 * --profile-requests N: after the levels, N enrollments one at a time with every Postgres
 * statement logged: the statements, transactions and Postgres time per enrollment of the
 * server and of the worker, by statement (0: none).
 *
 * --cpu-prof DIR: V8 CPU profiles of certflow's worker and server (<pid>-0 start-up, then one
 * per level, in order; summarize with `npm run bench:profile`).
 *
 * Every request is a new enrollment (a new key, a new CSR), i.e. one enrollment workflow
 * and one certificate. Anything but 200 counts as an error: a 202 means the certificate
 * was not ready within the server's EST wait (CERTFLOW_EST_WAIT_SECONDS, default 30 s).
 * Besides latency it reports the Temporal history length of a few enrollment workflows,
 * where the time goes inside them (from the history's event times), and the CPU time the
 * worker, server, Postgres, Temporal and this client used per enrollment.
 *
 * Prints one JSON document on stdout; progress goes to stderr.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../src/pki/keygen.ts';
import https from 'node:https';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { buildCsr, parseCertsOnly } from '../src/pki/index.ts';
import {
  cpuSeconds,
  machineTicks,
  percentile,
  postgresCounters,
  postgresPerUnit,
  TICKS_PER_SEC,
  tsMs,
  type TimestampLike,
  dumpProfiles,
  profilerEnv,
} from './measure.ts';
import { startBenchStack, type BenchStack } from './stack.ts';
import { recordStatements } from './statements.ts';

const GOAL = { concurrency: 16, enrollmentsPerSec: 100 };
const REQUEST_TIMEOUT_MS = 120_000;

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1,16' },
    warmup: { type: 'string', default: '10' },
    'profile-requests': { type: 'string', default: '20' },
    'max-seconds': { type: 'string', default: '600' },
    'cpu-prof': { type: 'string' },
  },
});
const requestsPerLevel = Number(values.requests);
const levels = values.concurrency.split(',').map((s) => Number(s.trim()));
const warmup = Number(values.warmup);
const profileRequests = Number(values['profile-requests']);
const maxSeconds = Number(values['max-seconds']);
if (
  !Number.isInteger(requestsPerLevel) ||
  requestsPerLevel < 1 ||
  requestsPerLevel > 100_000 ||
  !levels.length ||
  levels.some((c) => !Number.isInteger(c) || c < 1 || c > 256) ||
  !Number.isInteger(warmup) ||
  warmup < 0 ||
  !Number.isInteger(profileRequests) ||
  profileRequests < 0 ||
  profileRequests > 1000 ||
  !(maxSeconds > 0)
) {
  console.error(
    'usage: bench/est.ts [--requests N] [--concurrency 1,16] [--warmup N] [--profile-requests N] [--max-seconds S] [--cpu-prof DIR]',
  );
  process.exit(2);
}

const progress = (msg: string) => process.stderr.write(`${msg}\n`);
/** Set on SIGINT/SIGTERM: no new requests are sent while the stack stops. */
let interrupted = false;

// ---- requests ------------------------------------------------------------------------

interface Enrollment {
  subject: string;
  key: KeyObject;
  /** base64 of the DER CSR: the EST request body. */
  body: string;
}

/** New keys and CSRs, made before any timing starts. */
function makeEnrollments(count: number, tag: string): Enrollment[] {
  return Array.from({ length: count }, (_, i) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const subject = `CN=bench-${tag}-${i}`;
    return { subject, key: privateKey, body: Buffer.from(buildCsr({ subject, privateKey })).toString('base64') };
  });
}

interface Answer {
  status: number;
  ms: number;
  body: Buffer;
  contentType?: string;
  error?: string;
}

function post(agent: https.Agent, port: number, auth: string, body: string): Promise<Answer> {
  const start = performance.now();
  return new Promise((resolve) => {
    const done = (a: Omit<Answer, 'ms'>) => resolve({ ...a, ms: performance.now() - start });
    const req = https.request(
      {
        agent,
        host: '127.0.0.1',
        servername: 'localhost', // SNI and the name checked in the server's certificate
        port,
        method: 'POST',
        path: '/.well-known/est/simpleenroll',
        headers: {
          Host: `localhost:${port}`,
          Authorization: auth,
          'Content-Type': 'application/pkcs10',
          'Content-Length': Buffer.byteLength(body),
        },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentType: res.headers['content-type'] }));
        res.on('error', (e) => done({ status: 0, body: Buffer.alloc(0), error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (e) => done({ status: 0, body: Buffer.alloc(0), error: e.message }));
    req.end(body);
  });
}

/** The issued certificate must be for the request's key and subject: a benchmark of wrong answers is worthless. */
function checkAnswer(e: Enrollment, a: Answer): string | undefined {
  if (a.status !== 200) return undefined;
  try {
    if (a.contentType !== 'application/pkcs7-mime; smime-type=certs-only') return `content type ${a.contentType}`;
    const certs = parseCertsOnly(Buffer.from(a.body.toString('ascii'), 'base64'));
    if (certs.length !== 1) return `${certs.length} certificates in the answer`;
    const cert = new X509Certificate(certs[0]!);
    if (!cert.subject.split('\n').includes(e.subject)) return `subject ${cert.subject}, expected ${e.subject}`;
    if (!cert.checkPrivateKey(e.key)) return "the certificate is not for the request's key";
    return undefined;
  } catch (err) {
    return `unreadable answer: ${(err as Error).message}`;
  }
}

// ---- one concurrency level ---------------------------------------------------------------

interface LevelResult {
  concurrency: number;
  requests: number;
  errors: number;
  enrollmentsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  seconds: number;
  statusCounts: Record<string, number>;
  notSent: number;
  wrongAnswers: number;
  firstErrors: string[];
  /** CPU milliseconds per successful enrollment, per process (with its children: Postgres backends). */
  cpuMsPerEnrollment: Record<string, number>;
  /** Share of the machine's CPU (all cores) that was busy during the level. */
  machineCpuBusy: number | null;
  /** Cores' worth of CPU used by processes outside the benchmark during the level (noise on a shared machine). */
  otherProcessesCpuCores: number | null;
  /** Transactions committed in the certflow database, WAL flushes (fsync) and WAL volume per enrollment. */
  postgresPerEnrollment: { commits: number; walSyncs: number; walKiB: number } | null;
  /** Wall-clock time of the timed requests (ms since the epoch); not printed. */
  window?: { from: number; to: number };
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** `concurrency` clients, each sending its next request when the previous one answered. */
async function runRequests(
  agent: https.Agent,
  stack: BenchStack,
  auth: string,
  work: Enrollment[],
  concurrency: number,
  deadline: number,
): Promise<Array<Answer | undefined>> {
  const answers: Array<Answer | undefined> = new Array(work.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < work.length && performance.now() < deadline && !interrupted) {
        const i = next++;
        answers[i] = await post(agent, stack.httpsPort, auth, work[i]!.body);
      }
    }),
  );
  return answers;
}

async function runLevel(
  stack: BenchStack,
  auth: string,
  concurrency: number,
  warm: Enrollment[],
  work: Enrollment[],
): Promise<LevelResult> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: stack.rootPem });
  try {
    if (warm.length) {
      progress(`concurrency ${concurrency}: ${warm.length} warm-up enrollments ...`);
      const answers = await runRequests(
        agent,
        stack,
        auth,
        warm,
        Math.min(concurrency, warm.length),
        performance.now() + maxSeconds * 1000,
      );
      const bad = answers.filter((a) => a?.status !== 200);
      if (bad.length) progress(`  warm-up: ${bad.length} not 200 (${bad.map((a) => a?.status ?? 'not sent').join(', ')})`);
    }
    progress(`concurrency ${concurrency}: ${work.length} enrollments ...`);
    const pgBefore = await postgresCounters(stack.databaseUrl);
    const cpuBefore = cpuSeconds(stack.pids);
    const machineBefore = machineTicks();
    const start = performance.now();
    const wallStart = Date.now();
    const answers = await runRequests(agent, stack, auth, work, concurrency, start + maxSeconds * 1000);
    const elapsed = (performance.now() - start) / 1000;
    const wallEnd = Date.now();
    const machineAfter = machineTicks();
    const cpuAfter = cpuSeconds(stack.pids);
    // Backends publish their statistics at most once a second: both snapshots lag a little,
    // which makes the per-enrollment Postgres numbers approximate.
    await new Promise((r) => setTimeout(r, 1000));
    const pgAfter = await postgresCounters(stack.databaseUrl);

    const statusCounts: Record<string, number> = {};
    const firstErrors: string[] = [];
    let ok = 0;
    let wrongAnswers = 0;
    let notSent = 0;
    answers.forEach((a, i) => {
      if (!a) {
        notSent++;
        return;
      }
      statusCounts[String(a.status)] = (statusCounts[String(a.status)] ?? 0) + 1;
      if (a.status === 200) {
        const wrong = checkAnswer(work[i]!, a);
        if (wrong) {
          wrongAnswers++;
          if (firstErrors.length < 5) firstErrors.push(`200 with a wrong answer: ${wrong}`);
        } else ok++;
      } else if (firstErrors.length < 5) {
        firstErrors.push(`${a.status}: ${(a.error ?? a.body.toString('utf8')).trim().slice(0, 200)}`);
      }
    });
    const sent = answers.filter((a): a is Answer => a !== undefined);
    const latencies = sent.map((a) => a.ms).sort((x, y) => x - y);
    const cpuMsPerEnrollment: Record<string, number> = {};
    for (const name of Object.keys(cpuAfter))
      cpuMsPerEnrollment[name] = round(((cpuAfter[name]! - (cpuBefore[name] ?? 0)) * 1000) / Math.max(ok, 1));
    const busy =
      machineBefore && machineAfter && machineAfter.total > machineBefore.total
        ? round((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total), 2)
        : null;
    // CPU the machine spent outside the benchmarked processes (other jobs on a shared machine).
    const ours = Object.keys(cpuAfter).reduce((sum, k) => sum + cpuAfter[k]! - (cpuBefore[k] ?? 0), 0);
    const otherCores =
      machineBefore && machineAfter
        ? round(Math.max(0, (machineAfter.busy - machineBefore.busy) / TICKS_PER_SEC - ours) / elapsed, 2)
        : null;
    const result: LevelResult = {
      concurrency,
      requests: work.length,
      // Requests the time limit left unsent count as errors too.
      errors: work.length - ok,
      enrollmentsPerSec: round(ok / elapsed),
      p50Ms: round(percentile(latencies, 50, 0)),
      p99Ms: round(percentile(latencies, 99, 0)),
      maxMs: round(latencies.at(-1) ?? 0),
      meanMs: round(latencies.reduce((a, b) => a + b, 0) / Math.max(latencies.length, 1)),
      seconds: round(elapsed, 2),
      statusCounts,
      notSent,
      wrongAnswers,
      firstErrors,
      cpuMsPerEnrollment,
      machineCpuBusy: busy,
      otherProcessesCpuCores: otherCores,
      postgresPerEnrollment: postgresPerUnit(pgBefore, pgAfter, ok),
      window: { from: wallStart, to: wallEnd },
    };
    progress(
      `concurrency ${concurrency}: ${result.enrollmentsPerSec}/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ` +
        `max ${result.maxMs} ms, ${result.errors} errors ${JSON.stringify(statusCounts)}, machine CPU busy ${busy ?? '?'} ` +
        `(other processes: ${otherCores ?? '?'} cores)`,
    );
    return result;
  } finally {
    agent.destroy();
  }
}

// ---- Temporal histories ----------------------------------------------------------------------

/** "workflowTaskScheduled" from the event's `...EventAttributes` field. */
function eventName(event: object): string {
  for (const [key, value] of Object.entries(event)) {
    if (key.endsWith('EventAttributes') && value) return key.slice(0, -'EventAttributes'.length);
  }
  return 'unknown';
}

interface PhaseReport {
  sampledWorkflows: number;
  /** Event sequence of one enrollment with the median time since the previous event (ms). */
  eventSequence: Array<{ event: string; medianMsSincePrevious: number }>;
  /** Median phases of an enrollment, derived from the histories' event times. */
  phasesMedianMs: Record<string, number>;
}

interface HistoryReport {
  historyEventsPerEnrollment: number | null;
  sampledWorkflows: Array<{ workflowId: string; events: number }>;
  /** Per concurrency level: where the time goes inside the enrollment workflows. */
  byConcurrency: Record<string, PhaseReport>;
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? round(percentile(s, 50)) : NaN;
};

/** Phases of one enrollment history: queue and run times of its workflow tasks and of the signing activity. */
function historyPhases(named: Array<{ event: string; ms: number }>): Record<string, number> {
  const phases: Record<string, number> = {};
  const first = (name: string, from = 0) => named.findIndex((e, i) => i >= from && e.event === name);
  let wft = 0;
  for (let i = first('workflowTaskScheduled'); i >= 0; i = first('workflowTaskScheduled', i + 1)) {
    const started = first('workflowTaskStarted', i);
    const completed = first('workflowTaskCompleted', i);
    if (started < 0 || completed < 0) break;
    wft++;
    // Scheduled -> started: the task waits for a worker poll; started -> completed: the
    // worker runs the workflow code (and its local activities) and answers.
    phases[`workflowTask${wft}.queuedMs`] = named[started]!.ms - named[i]!.ms;
    phases[`workflowTask${wft}.runMs`] = named[completed]!.ms - named[started]!.ms;
  }
  const scheduled = first('activityTaskScheduled');
  const started = first('activityTaskStarted');
  const completed = first('activityTaskCompleted');
  if (scheduled >= 0 && started >= 0 && completed >= 0) {
    phases['signingActivity.queuedMs'] = named[started]!.ms - named[scheduled]!.ms;
    phases['signingActivity.runMs'] = named[completed]!.ms - named[started]!.ms;
  }
  phases.workflowTotalMs = (named.at(-1)?.ms ?? NaN) - (named[0]?.ms ?? NaN);
  return phases;
}

function phaseReport(sequences: Array<Array<{ event: string; ms: number }>>): PhaseReport {
  const phases: Record<string, number[]> = {};
  for (const seq of sequences) {
    for (const [k, v] of Object.entries(historyPhases(seq))) (phases[k] ??= []).push(v);
  }
  // The most common event sequence, with the median gap of each step.
  const key = (seq: Array<{ event: string }>) => seq.map((e) => e.event).join(',');
  const counts = new Map<string, number>();
  for (const seq of sequences) counts.set(key(seq), (counts.get(key(seq)) ?? 0) + 1);
  const common = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const same = sequences.filter((s) => key(s) === common);
  return {
    sampledWorkflows: sequences.length,
    eventSequence: (same[0] ?? []).map((e, i) => ({
      event: e.event,
      medianMsSincePrevious: i === 0 ? 0 : median(same.map((s) => s[i]!.ms - s[i - 1]!.ms)),
    })),
    phasesMedianMs: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])),
  };
}

/** `work` one at a time, every Postgres statement logged (--profile-requests). */
async function statementPass(stack: BenchStack, auth: string, work: Enrollment[]) {
  progress(`profile: ${work.length} enrollments one at a time, every Postgres statement logged ...`);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: stack.rootPem });
  try {
    const { result: answers, postgres } = await recordStatements(stack, 'Enrollment', async () => {
      const answers = await runRequests(agent, stack, auth, work, 1, performance.now() + maxSeconds * 1000);
      return { result: answers, units: answers.filter((a) => a?.status === 200).length };
    });
    return { enrollments: work.length, errors: answers.filter((a) => a?.status !== 200).length, postgres };
  } finally {
    agent.destroy();
  }
}

/**
 * Lists the enrollment workflows, fetches the histories of up to `perLevel` of each level's
 * timed requests (by start time), and the lengths of the first `lengthSamples`.
 */
async function histories(
  stack: BenchStack,
  windows: Array<{ concurrency: number; from: number; to: number }>,
  lengthSamples: number,
  perLevel: number,
): Promise<HistoryReport> {
  const connection = await Connection.connect({ address: stack.temporalAddress, tls: stack.temporalTls });
  try {
    const client = new Client({ connection, namespace: stack.temporalNamespace });
    const listed: Array<{ workflowId: string; start: number }> = [];
    for await (const wf of client.workflow.list({ query: "WorkflowType = 'enrollmentWorkflow'" })) {
      if (wf.workflowId.startsWith('est-')) listed.push({ workflowId: wf.workflowId, start: wf.startTime.getTime() });
      if (listed.length >= 20_000) break;
    }
    const fetchNamed = async (workflowId: string) => {
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      return events.map((e) => ({ event: eventName(e), ms: tsMs(e.eventTime as TimestampLike) }));
    };
    const sampledWorkflows: HistoryReport['sampledWorkflows'] = [];
    for (const { workflowId } of listed.slice(0, lengthSamples)) {
      sampledWorkflows.push({ workflowId, events: (await fetchNamed(workflowId)).length });
    }
    const byConcurrency: Record<string, PhaseReport> = {};
    for (const w of windows) {
      // Leave out the first and last requests of a level: they ran in a half-loaded system.
      const inWindow = listed.filter((l) => l.start >= w.from && l.start <= w.to).sort((a, b) => a.start - b.start);
      const trimmed = inWindow.length > 3 * w.concurrency ? inWindow.slice(w.concurrency, -w.concurrency) : inWindow;
      const step = Math.max(1, Math.floor(trimmed.length / perLevel));
      const chosen = trimmed.filter((_, i) => i % step === 0).slice(0, perLevel);
      const sequences = [];
      for (const { workflowId } of chosen) sequences.push(await fetchNamed(workflowId));
      byConcurrency[String(w.concurrency)] = phaseReport(sequences);
    }
    const lengths = sampledWorkflows.map((s) => s.events).sort((a, b) => a - b);
    return { historyEventsPerEnrollment: lengths.length ? percentile(lengths, 50) : null, sampledWorkflows, byConcurrency };
  } finally {
    await connection.close();
  }
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const loadAtStart = round(loadavg()[0] ?? 0, 2);
  const total = levels.length * (warmup + requestsPerLevel);
  progress(`generating ${total} P-256 keys and CSRs ...`);
  const t = performance.now();
  const perLevel = levels.map((_, l) => {
    const all = makeEnrollments(warmup + requestsPerLevel, `${tag}-${l}`);
    return { warm: all.slice(0, warmup), work: all.slice(warmup) };
  });
  const profileWork = makeEnrollments(profileRequests, `${tag}-profile`);
  progress(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const stack = await startBenchStack(values['cpu-prof'] ? { env: profilerEnv(values['cpu-prof']) } : {});
  const profiled = values['cpu-prof'] ? [stack.pids.worker, stack.pids.server] : [];
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    interrupted = true;
    progress(`${signal}: stopping the stack`);
    void stack.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const name = 'bench-client';
    const password = randomBytes(18).toString('base64url');
    const added = await stack.cli(['est-client', 'add', '--name', name, '--password', password]);
    if (added.code !== 0) throw new Error(`est-client add failed: ${added.stderr}`);
    const auth = `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;

    const results: LevelResult[] = [];
    await dumpProfiles(profiled);
    for (const [l, concurrency] of levels.entries()) {
      if (interrupted) return;
      results.push(await runLevel(stack, auth, concurrency, perLevel[l]!.warm, perLevel[l]!.work));
      await dumpProfiles(profiled);
    }
    if (interrupted) return;
    const profile = profileRequests ? await statementPass(stack, auth, profileWork) : undefined;
    if (interrupted) return;
    progress('reading enrollment workflow histories ...');
    const windows = results.map((r) => ({ concurrency: r.concurrency, ...r.window! }));
    for (const r of results) delete r.window;
    const hist = await histories(stack, windows, 5, 30).catch((e: Error) => {
      progress(`cannot read histories: ${e.message}`);
      return undefined;
    });
    const atGoal = results.find((r) => r.concurrency === GOAL.concurrency);
    const report = {
      benchmark: 'est-simpleenroll',
      durable: true,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage1mAtStart: loadAtStart },
      settings: {
        requestsPerLevel,
        warmupPerLevel: warmup,
        maxSecondsPerLevel: maxSeconds,
        keyType: 'ec-p256',
        postgres: 'embedded, fsync=on, synchronous_commit=on',
        temporal: 'dev server (SQLite file)',
        processes: '1 worker, 1 server',
      },
      levels: results,
      historyEventsPerEnrollment: hist?.historyEventsPerEnrollment ?? null,
      history: hist ?? null,
      profile: profile ?? null,
      goal: `${GOAL.enrollmentsPerSec} enrollments/s at concurrency ${GOAL.concurrency}`,
      goalMet: atGoal ? atGoal.errors === 0 && atGoal.enrollmentsPerSec >= GOAL.enrollmentsPerSec : null,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    if (!stopping) {
      progress('stopping the stack ...');
      await stack.stop();
    }
  }
}

await main();
