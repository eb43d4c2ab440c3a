/**
 * Temporal's floor in the same run: what a workflow of each request's shape costs on this
 * machine with nothing inside it, on a Temporal dev server started as certflow starts its own
 * (src/temporal/devserver.ts: the same flags), with the client and the worker in this one
 * process:
 *
 *   npm run bench:floor [-- --workflows 200] [--concurrency 16]
 *
 * - enrollment (shape B): start, one workflow task with one local activity, result;
 * - order (shape H): start, a challenge Update and a finalize Update each running a local
 *   activity in its workflow task, result.
 *
 * CPU per workflow of the Temporal server and of this process, read from /proc. Absolute
 * figures move with the machine; bench/index.ts divides certflow's CPU per request by these,
 * measured minutes apart. Prints one JSON document on stdout; progress goes to stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { freePort } from '../src/core/net.ts';
import { resolveTemporalCli } from '../src/temporal/cli.ts';
import { spawnTemporalDevServer } from '../src/temporal/devserver.ts';
import { cpuSeconds, percentile } from './measure.ts';

const { values } = parseArgs({
  options: {
    workflows: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '30' },
  },
});
const count = Number(values.workflows);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
if (![count, concurrency, warmup].every(Number.isInteger) || count < 1 || concurrency < 1 || warmup < 0) {
  console.error('usage: bench/floor.ts [--workflows N] [--concurrency C] [--warmup N]');
  process.exit(2);
}
const progress = (msg: string) => process.stderr.write(`floor: ${msg}\n`);
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const TASK_QUEUE = 'floor';

const home = mkdtempSync(join(tmpdir(), 'certflow-bench-floor-'));
Runtime.install({ logger: new DefaultLogger('WARN') });
const temporal = await spawnTemporalDevServer({
  cli: await resolveTemporalCli({ home: join(fileURLToPath(new URL('..', import.meta.url)), '.certflow'), log: progress }),
  port: await freePort(),
  dbFile: join(home, 'temporal.sqlite'),
  logFile: join(home, 'temporal.log'),
});
try {
  const native = await NativeConnection.connect({ address: temporal.address });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  const worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./floor-workflows.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    }),
    activities: { nothing: async () => 'done' },
  });
  let seq = 0;
  const shapes = {
    enrollment: (id: string) => client.workflow.execute('floorEnrollment', { workflowId: id, taskQueue: TASK_QUEUE }),
    order: async (id: string) => {
      const h = await client.workflow.start('floorOrder', { workflowId: id, taskQueue: TASK_QUEUE });
      if ((await h.executeUpdate<string, []>('challenge')) !== 'ready') throw new Error('challenge');
      if ((await h.executeUpdate<string, []>('finalize')) !== 'valid') throw new Error('finalize');
      return h.result();
    },
  };
  const batch = async (run: (id: string) => Promise<unknown>, n: number) => {
    const latencies: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, n) }, async () => {
        while (next < n) {
          next++;
          const start = performance.now();
          await run(`floor-${process.pid}-${seq++}`);
          latencies.push(performance.now() - start);
        }
      }),
    );
    return latencies.sort((a, b) => a - b);
  };
  const results: Record<string, object> = {};
  await worker.runUntil(async () => {
    for (const [name, run] of Object.entries(shapes)) {
      await batch(run, warmup);
      progress(`${count} ${name} workflows at concurrency ${concurrency} ...`);
      // benchClient: this process, the worker and the client (the dev server is its child, apart).
      const pids = { temporal: temporal.pid! };
      const before = cpuSeconds(pids);
      const start = performance.now();
      const latencies = await batch(run, count);
      const seconds = (performance.now() - start) / 1000;
      const after = cpuSeconds(pids);
      const ms = (k: 'temporal' | 'benchClient') => round(((after[k]! - before[k]!) * 1000) / count);
      results[name] = {
        workflowsPerSec: round(count / seconds),
        p50Ms: round(percentile(latencies, 50)),
        cpuMsPerWorkflow: { temporal: ms('temporal'), node: ms('benchClient'), total: round(ms('temporal') + ms('benchClient')) },
      };
      progress(`${name}: ${JSON.stringify(results[name])}`);
    }
  });
  await native.close();
  await connection.close();
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'temporal-floor', settings: { workflows: count, concurrency, warmup, temporal: 'dev server, certflow flags' }, ...results }, null, 2)}\n`,
  );
} finally {
  await temporal.stop(5000);
  rmSync(home, { recursive: true, force: true });
}
