/**
 * All the request benchmarks in one run, each with its same-run reference, and the targets
 * of issue 18 checked against them:
 *
 *   npm run bench [-- --orders 80] [--requests 200] [--concurrency 1,16] [--cluster] [--cluster-pairs 3]
 *
 * - bench/acme.ts --target both (certflow and pebble; with --cluster: --target cluster,
 *   certflow's dev stack and `certflow cluster`, --cluster-pairs times alternately, then
 *   pebble on its own run);
 * - bench/est.ts (certflow only: no EST server of reference is installed here);
 * - bench/cmp.ts --target both (certflow and OpenSSL's mock CMP server);
 * - bench/floor.ts: Temporal's own cost for an order's and an enrollment's workflow shape,
 *   with nothing inside, on this machine (the title measures certflow against it).
 *
 * Each runs as a child process with a stack of its own, one after another (never at the
 * same time: they would measure each other). Their progress goes to stderr; the JSON
 * documents they print are gathered into one, with a `targets` section that says, per
 * target, the measured value and whether it is met. Server CPU per request is the CPU of
 * certflow's processes (worker, server, Temporal, Postgres), the benchmark client apart.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { serverSideCpu } from './measure.ts';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '80' },
    requests: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1,16' },
    cluster: { type: 'boolean', default: false },
    /** With --cluster: dev stack / cluster pairs; the CPU ratio target takes their median. */
    'cluster-pairs': { type: 'string', default: '3' },
  },
});

const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** Runs one benchmark script; resolves with the JSON document it printed on stdout. */
function run(script: string, args: string[]): Promise<Record<string, unknown>> {
  progress(`${script} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/run-ts.js', script, ...args], {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      try {
        resolve(JSON.parse(out.slice(out.indexOf('{'))) as Record<string, unknown>);
      } catch (e) {
        reject(new Error(`${script} printed no JSON document: ${(e as Error).message}`));
      }
    });
  });
}

type Cpu = Record<string, number>;
/** CPU ms per request of the server side: every process but the benchmark client (and a reference's own). */
const serverCpu = (cpu: Cpu | undefined) => (cpu ? Math.round(serverSideCpu(cpu) * 10) / 10 : null);

interface Target {
  target: string;
  goal: string;
  measured: number | null;
  met: boolean | null;
}
const target = (name: string, goal: string, measured: number | null | undefined, ok: (v: number) => boolean): Target => ({
  target: name,
  goal,
  measured: measured ?? null,
  met: measured === null || measured === undefined ? null : ok(measured),
});

interface AcmeLevel {
  concurrency: number;
  certflow?: { ordersPerSec: number; p50Ms: number; errors: number; cpuMsPerOrder: Cpu };
  pebble?: { ordersPerSec: number; errors: number; cpuMsPerOrder: Cpu };
  cluster?: { ordersPerSec: number; errors: number; cpuMsPerOrder: Cpu };
  ratio?: number;
  clusterToDevCpuRatio?: number | null;
}
interface EstLevel {
  concurrency: number;
  enrollmentsPerSec: number;
  errors: number;
  cpuMsPerEnrollment: Cpu;
}
interface CmpRow {
  target: string;
  mode: string;
  concurrency: number;
  perSecond: number;
  errors: number;
  cpuMsPerTransaction: Cpu;
}

const started = new Date().toISOString();
const loadAtStart = loadavg()[0];
const conc = ['--concurrency', values.concurrency];
const acme = await run('bench/acme.ts', [
  '--orders',
  values.orders,
  ...conc,
  ...(values.cluster ? ['--target', 'cluster', '--pairs', values['cluster-pairs']] : ['--target', 'both']),
]);
const acmePebble = values.cluster ? await run('bench/acme.ts', ['--orders', values.orders, ...conc, '--target', 'pebble']) : undefined;
const est = await run('bench/est.ts', ['--requests', values.requests, ...conc]);
const cmp = await run('bench/cmp.ts', ['--requests', String(Math.min(Number(values.requests), 100)), ...conc, '--target', 'both']);
const floor = await run('bench/floor.ts', ['--concurrency', '16']);

const acmeLevels = (acme.summary as { levels: AcmeLevel[] }).levels;
const pebbleLevels = acmePebble ? (acmePebble.summary as { levels: AcmeLevel[] }).levels : acmeLevels;
const a1 = acmeLevels.find((l) => l.concurrency === 1);
const a16 = acmeLevels.find((l) => l.concurrency === 16);
const p16 = pebbleLevels.find((l) => l.concurrency === 16)?.pebble;
const e16 = (est.levels as EstLevel[]).find((l) => l.concurrency === 16);
const c16 = (cmp.results as CmpRow[]).find((r) => r.target === 'certflow' && r.mode === 'implicit' && r.concurrency === 16);
const acmeErrors = acmeLevels.reduce((n, l) => n + (l.certflow?.errors ?? 0) + (l.cluster?.errors ?? 0), 0);

const targets: Target[] = [
  target('ACME server CPU per order, c=16 (ms)', '<= 60', serverCpu(a16?.certflow?.cpuMsPerOrder), (v) => v <= 60),
  target(
    'ACME orders/s c=16 against pebble in the same run',
    '>= 0.6',
    a16?.certflow && p16 ? Math.round((a16.certflow.ordersPerSec / p16.ordersPerSec) * 1000) / 1000 : null,
    (v) => v >= 0.6,
  ),
  target('ACME p50 c=1 (ms)', '<= 80', a1?.certflow?.p50Ms, (v) => v <= 80),
  target('ACME errors', '0', acmeErrors, (v) => v === 0),
  target('EST server CPU per enrollment, c=16 (ms)', '<= 35', serverCpu(e16?.cpuMsPerEnrollment), (v) => v <= 35),
  target('EST enrollments/s, c=16', '>= 50', e16?.enrollmentsPerSec, (v) => v >= 50),
  target('CMP implicit server CPU per transaction, c=16 (ms)', '<= 35', serverCpu(c16?.cpuMsPerTransaction), (v) => v <= 35),
  target('CMP implicit transactions/s, c=16', '>= 50', c16?.perSecond, (v) => v >= 50),
  // The title: CPU per request within 1.5x of what Temporal alone needs for the
  // request's workflow shape on this machine (bench/floor.ts, same run, same concurrency).
  ...(
    [
      ['ACME server CPU per order against the floor of an order (ratio)', serverCpu(a16?.certflow?.cpuMsPerOrder), 'order'],
      ['EST server CPU per enrollment against the floor of an enrollment (ratio)', serverCpu(e16?.cpuMsPerEnrollment), 'enrollment'],
      [
        'CMP implicit server CPU per transaction against the floor of an enrollment (ratio)',
        serverCpu(c16?.cpuMsPerTransaction),
        'enrollment',
      ],
    ] as const
  ).map(([name, cpu, shape]) => {
    const base = (floor[shape] as { cpuMsPerWorkflow: { total: number } } | undefined)?.cpuMsPerWorkflow.total;
    return target(name, '<= 1.5', cpu !== null && base ? Math.round((cpu / base) * 100) / 100 : null, (v) => v <= 1.5);
  }),
];

process.stdout.write(
  JSON.stringify(
    {
      benchmark: 'certflow-requests',
      started,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage1mAtStart: loadAtStart },
      note: 'the machine may be shared: compare CPU per request and the ratios to the same-run references, not absolute rates',
      targets: values.cluster
        ? [
            ...targets,
            target('ACME cluster CPU per order against the dev stack, c=16 (ratio)', '<= 1.3', a16?.clusterToDevCpuRatio, (v) => v <= 1.3),
          ]
        : targets,
      acme,
      ...(acmePebble ? { acmePebble } : {}),
      est,
      cmp,
      floor,
    },
    null,
    1,
  ) + '\n',
);
