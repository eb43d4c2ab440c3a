/**
 * Workflows under test with mocked activities, on Temporal's time-skipping test server: a
 * timer of 30 days or an activity's retry backoff passes in milliseconds while the test
 * waits (TestWorkflowEnvironment.createTimeSkipping, @temporalio/testing).
 *
 * createTimeSkipping() would download a native build of the test server, which cannot be
 * reached here; the same server comes from Maven Central as a Java library instead
 * (scripts/temporal-test-server: .ci/run resolves its classpath, `run` starts it), passed to
 * the environment as an existing executable. Each test file starts one server and one pair
 * of workers (main queue with the workflow bundle, signing queue) for all its tests.
 *
 * Time skipping is locked except while a test awaits a workflow's result (the environment's
 * client unlocks it then), runs inside skipping() or advance(): elsewhere time passes as on
 * a clock, so a test can look at a workflow that waits on a long timer before letting it pass.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { searchAttributeIndexedTypes } from '../../src/temporal/devserver.ts';
import { workflowBundle } from '../../src/temporal/worker.ts';
import { signingTaskQueue } from '../../workflows/api.ts';

const server = fileURLToPath(new URL('../../scripts/temporal-test-server/run', import.meta.url));
const classpath = fileURLToPath(new URL('../../.certflow/temporal-test-server/classpath.txt', import.meta.url));

function javaAvailable(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A reason to skip the workflow tests when the test server is not installed, outside CI
 * only: in CI (.ci/run installs it) they run, and fail if it is missing.
 */
export function timeSkippingSkip(): string | false {
  if (process.env.CI || (existsSync(classpath) && javaAvailable())) return false;
  return 'the Temporal test server is not installed: run the mvn step of .ci/run (needs java and maven)';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Activities = Record<string, (...args: any[]) => Promise<unknown>>;

export interface WorkflowTestEnv {
  env: TestWorkflowEnvironment;
  /** Its workflow client unlocks time skipping while awaiting a result. */
  client: Client;
  /** The main task queue of this file's workers (signing activities run on its signing queue). */
  taskQueue: string;
  /**
   * Runs `fn` with time skipping unlocked: timers and retry backoffs pass at once while
   * nothing else runs. Skipping goes on until it is locked again after `fn`, so a workflow
   * that still waits on a timer then may reach it: use this only where that does not
   * matter, else advance() by a bounded time.
   */
  skipping<T>(fn: () => Promise<T>): Promise<T>;
  /** Lets `ms` of server time pass (skipping, but waiting for activities under way), then locks time again. */
  advance(ms: number): Promise<void>;
  /** The server's (the workflows') current time, ms since the epoch. */
  now(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts a test server with certflow's search attributes and runs a worker on a fresh main
 * queue (the workflow bundle and `main` activities) and one on its signing queue (`signing`).
 */
export async function workflowTestEnv(activities: { main: Activities; signing: Activities }): Promise<WorkflowTestEnv> {
  // The workers' own log (every failed attempt the tests provoke is a WARN) only for errors.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: server } } });
  try {
    // The test server has no ListSearchAttributes: add them all (it starts with none).
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: searchAttributeIndexedTypes(),
    });
    const taskQueue = `wf-${randomBytes(4).toString('hex')}`;
    const common = { connection: env.nativeConnection, namespace: env.namespace ?? 'default' };
    const workers = [await Worker.create({ ...common, taskQueue, workflowBundle: await workflowBundle(), activities: activities.main })];
    if (Object.keys(activities.signing).length) {
      workers.push(await Worker.create({ ...common, taskQueue: signingTaskQueue(taskQueue), activities: activities.signing }));
    }
    const running = Promise.all(workers.map((w) => w.run()));
    const testService = env.connection.testService!;
    return {
      env,
      client: env.client,
      taskQueue,
      async skipping(fn) {
        await testService.unlockTimeSkipping({});
        try {
          return await fn();
        } finally {
          await testService.lockTimeSkipping({});
        }
      },
      advance: (ms) => env.sleep(ms),
      now: () => env.currentTimeMs(),
      async stop() {
        for (const w of workers) w.shutdown();
        await running;
        await env.teardown();
      },
    };
  } catch (e) {
    await env.teardown();
    throw e;
  }
}

/**
 * What a mocked activity does on one call: 'ok', 'hold' (until release()), `fail:<type>`
 * (a retryable ApplicationFailure of that type) or `final:<type>` (non-retryable).
 */
export type Step = 'ok' | 'hold' | `fail:${string}` | `final:${string}`;

/** Scripted outcomes of mocked activities, by key (a request, order or authorization id), and the attempts they saw. */
export class ActivityScript {
  /** Every call: activity, key, attempt number (the retry policy's), the server's time when it ran. */
  readonly attempts: Array<{ activity: string; key: string; attempt: number; atMs: number }> = [];
  readonly #plans = new Map<string, Step[]>();
  readonly #released = new Set<string>();
  #releaseAll = false;

  /** `now`: the server's time (WorkflowTestEnv.now, once the environment exists). */
  constructor(private readonly now: () => Promise<number>) {}

  plan(key: string, steps: Step[]): void {
    this.#plans.set(key, [...steps]);
  }

  release(key?: string): void {
    if (key === undefined) this.#releaseAll = true;
    else this.#released.add(key);
  }

  of(activity: string, key: string) {
    return this.attempts.filter((a) => a.activity === activity && a.key === key);
  }

  /**
   * Waits (real time, up to 30 s) until `activity` was called `n` times for `key`. Before
   * advance(): time skipped before the workflow reached its activity is lost for it.
   */
  async called(activity: string, key: string, n = 1): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.of(activity, key).length < n) {
      if (Date.now() > deadline) throw new Error(`${activity}(${key}) was called ${this.of(activity, key).length} times, not ${n}`);
      await sleep(20);
    }
  }

  /** Called by a mocked activity: records the attempt, then does the key's next step (default 'ok'). */
  async step(activity: string, key: string): Promise<void> {
    this.attempts.push({ activity, key, attempt: Context.current().info.attempt, atMs: await this.now() });
    const step = this.#plans.get(key)?.shift() ?? 'ok';
    if (step === 'hold') {
      // Until the test lets it go (or ends: a worker's shutdown waits for its activities).
      while (!this.#released.has(key) && !this.#releaseAll) await sleep(50);
      return;
    }
    if (step === 'ok') return;
    const [how, type] = step.split(':') as ['fail' | 'final', string];
    throw ApplicationFailure.create({ type, message: `fake ${type} fault`, nonRetryable: how === 'final' });
  }
}
