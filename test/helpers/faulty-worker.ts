/**
 * `certflow worker` with a misbehaving key store, for tests (faults stay out of the
 * product): run by TestInstance.startWorker(env, { signingFaults }) as
 * `node bin/run-ts.js test/helpers/faulty-worker.ts '<SigningFaults JSON>'`. The faults hit
 * only the signatures of the issueCertificate activity (or of the activities named; not the
 * CA bootstrap), inside the production signing path, which heartbeats while it waits; and,
 * for crash tests, the moment after an activity committed (issueCertificate, validateAuthz)
 * and before its result reaches the workflow: for a local activity, before its workflow
 * task completes.
 */
import { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { setTimeout as sleep } from 'node:timers/promises';
import { notifyReady } from '../../src/cli/node-child.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { KeyStore } from '../../src/keys/types.ts';
import { startWorker } from '../../src/temporal/worker.ts';

export interface SigningFaults {
  /** A signature waits this long before the token is asked (the TBS is persisted by then: crash tests kill the worker here). */
  pauseBeforeSignMs?: number;
  /** A signature takes this long, like a busy HSM in C_Sign (longer than the heartbeat timeout). */
  slowTokenMs?: number;
  /** issueCertificate returns this much later, after its commit (crash tests kill the worker here). */
  pauseAfterIssueMs?: number;
  /** validateAuthz returns this much later, after it recorded the validation (likewise). */
  pauseAfterValidateMs?: number;
  /** The activities whose signatures misbehave (default issueCertificate; `caCertify`: a CA certificate, after its TBS is stored). */
  activities?: string[];
}

/** Activity interceptors that hold an activity's result back after it committed (SigningFaults.pauseAfter*). */
export function pauseAfterCommit(faults: SigningFaults): ActivityInterceptorsFactory[] {
  const pauses: Record<string, number | undefined> = {
    issueCertificate: faults.pauseAfterIssueMs,
    validateAuthz: faults.pauseAfterValidateMs,
  };
  return [
    (ctx) => ({
      inbound: {
        async execute(input, next) {
          const result = await next(input);
          const ms = pauses[ctx.info.activityType];
          if (ms) {
            process.stdout.write(`${JSON.stringify({ pausedAfterCommit: ctx.info.activityType, local: ctx.info.isLocal })}\n`);
            await sleep(ms);
          }
          return result;
        },
      },
    }),
  ];
}

function inActivity(types: string[]): boolean {
  try {
    return types.includes(Context.current().info.activityType);
  } catch {
    return false; // not in an activity (CA bootstrap)
  }
}

export function faultyKeyStore(keys: KeyStore, faults: SigningFaults): KeyStore {
  return {
    backend: keys.backend,
    generate: (...a) => keys.generate(...a),
    get: (...a) => keys.get(...a),
    decrypt: (...a) => keys.decrypt(...a),
    close: () => keys.close(),
    async sign(id, alg, data) {
      if (inActivity(faults.activities ?? ['issueCertificate'])) await sleep((faults.pauseBeforeSignMs ?? 0) + (faults.slowTokenMs ?? 0));
      return keys.sign(id, alg, data);
    },
  };
}

if (process.argv[1]?.endsWith('faulty-worker.ts')) {
  const faults = JSON.parse(process.argv[2] ?? '{}') as SigningFaults;
  const config = loadConfig();
  const log = createLogger('worker', config.logLevel);
  const worker = await startWorker(config, log, {
    wrapKeyStore: (keys) => faultyKeyStore(keys, faults),
    workerOptions: { interceptors: { activity: pauseAfterCommit(faults) } },
  });
  process.once('SIGTERM', () => void worker.shutdown());
  process.once('SIGINT', () => void worker.shutdown());
  notifyReady();
  await worker.done;
  process.exit(0);
}
