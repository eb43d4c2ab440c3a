/**
 * `npm run fuzz -- [--cases 20000] [--seed 1] [--concurrency 4]`: the front-end fuzzer
 * (test/fuzz/engine.ts) for long runs, against a complete stack of its own (bench/stack.ts:
 * embedded Postgres, Temporal dev server, worker, server in a temp directory). Prints a JSON
 * report; exits 1 when any answer was a 5xx, a dropped connection or an error outside the
 * protocol's format, or when a certflow process died.
 */
import { parseArgs } from 'node:util';
import { startBenchStack } from '../../bench/stack.ts';
import { runFuzz } from './engine.ts';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '20000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    concurrency: { type: 'string', default: '4' },
  },
});
const cases = Number(values.cases);
const seed = Number(values.seed);
const say = (m: string) => process.stderr.write(`fuzz: ${m}\n`);

const stack = await startBenchStack({ env: { CERTFLOW_EST_WAIT_SECONDS: '5' } });
let failed: boolean;
try {
  const password = 'fuzzing password 123';
  const added = await stack.cli(['est-client', 'add', '--name', 'fuzzer', '--password', password]);
  if (added.code !== 0) throw new Error(`est-client add: ${added.stderr}`);
  say(`seed ${seed}, ${cases} cases per front end against https://localhost:${stack.httpsPort}`);
  const started = Date.now();
  const report = await runFuzz(
    { httpsBase: `https://localhost:${stack.httpsPort}`, rootPem: stack.rootPem, estUser: 'fuzzer', estPassword: password },
    { seed, cases, concurrency: Number(values.concurrency), progress: (done, total) => say(`${done}/${total}`) },
  );
  const alive = Object.entries(stack.pids).filter(([, pid]) => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
  const health = await fetch(`http://127.0.0.1:${stack.httpPort}/healthz`).then(
    (r) => r.status,
    () => 0,
  );
  process.stdout.write(
    `${JSON.stringify({ ...report, seconds: Math.round((Date.now() - started) / 1000), deadProcesses: alive.map(([n]) => n), healthz: health }, null, 2)}\n`,
  );
  failed = report.failures.length > 0 || alive.length > 0 || health !== 200;
  say(
    failed ? `FAILED: ${report.failures.length} bad answers, dead processes: ${alive.map(([n]) => n).join(', ') || 'none'}` : 'no failures',
  );
} finally {
  await stack.stop();
}
process.exit(failed ? 1 : 0);
