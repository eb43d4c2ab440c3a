/**
 * The certflow worker: bootstraps the CA hierarchy on first start, then polls both task
 * queues — `certflow` (workflows, storage and validation activities) and `certflow-signing`
 * (the request workflows that sign, with the same activities run locally, and the signing
 * activities, the only code using CA keys).
 */
import {
  NativeConnection,
  Worker,
  bundleWorkflowCode,
  type WorkerOptions as TemporalWorkerOptions,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';
import type { Queryable } from '../db/pool.ts';
import { createRevocationActivities, createSigningActivities, createStorageActivities } from '../../activities/index.ts';
import { createAcmeActivities } from '../../activities/acme.ts';
import { createAuditActivities, createKeyRecoveryActivities, ensureAuditKey } from '../../activities/audit.ts';
import { startOcspSigner } from '../../activities/ocsp-signer.ts';
import { createValidationActivities } from '../../activities/validation.ts';
import { createNotificationActivities } from '../../activities/notifications.ts';
import { createCaActivities, createCaWatchActivities } from '../../activities/ca.ts';
import { ensureHierarchy } from '../ca/bootstrap.ts';
import { writeTrustFiles } from '../ca/trust-files.ts';
import { unknownCaReferences } from '../ra/ca-references.ts';
import { loadManagedProfiles, watchManagedProfiles } from '../ra/profiles.ts';
import { caUrls } from '../ca/urls.ts';
import type { Config } from '../config/index.ts';
import { enableArtifactRecording } from '../core/artifacts.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { databaseUrl, openDatabase } from '../db/open.ts';
import { lockSession, unlockSession } from '../db/locks.ts';
import * as cas from '../db/repos/cas.ts';
import * as keyArchive from '../db/repos/key-archive.ts';
import { ARCHIVE_KEY_ID } from '../core/key-archive.ts';
import { openKeyStore } from '../keys/index.ts';
import { connectTemporal } from './client.ts';
import { ensureSchedules } from './schedules.ts';
import { temporalTlsOptions } from './tls.ts';
import type { KeyStore } from '../keys/types.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const workflowsPath = join(repo, 'workflows', 'index.ts');
const bundleCacheDir = join(repo, 'node_modules', '.cache', 'certflow');

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;
/**
 * The workflow bundle, built once per process and kept on disk for the next process that
 * runs the same code (webpack takes seconds; every worker start, and every test file with a
 * worker, would build it again): node_modules/.cache/certflow/workflow-bundle-<key>.json,
 * where the key hashes every file the bundle may take code from (workflows/, activities/,
 * src/), the SDK's version and package-lock.json, so any change of them builds a new one.
 * The cache is only a cache: where it cannot be written, the bundle is built each time.
 */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= cachedBundle();
  return bundlePromise;
}

async function cachedBundle(): Promise<WorkflowBundleWithSourceMap> {
  const file = join(bundleCacheDir, `workflow-bundle-${await bundleKey()}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as WorkflowBundleWithSourceMap;
  } catch {
    // Not built yet for this code.
  }
  const bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  try {
    await mkdir(bundleCacheDir, { recursive: true });
    // Written aside and renamed: a process reading it never sees half a file.
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, JSON.stringify({ code: bundle.code, sourceMap: bundle.sourceMap }));
    await rename(partial, file);
    // Bundles of older code are never read again.
    for (const old of await readdir(bundleCacheDir)) {
      if (old.startsWith('workflow-bundle-') && old.endsWith('.json') && join(bundleCacheDir, old) !== file) {
        await rm(join(bundleCacheDir, old), { force: true });
      }
    }
  } catch {
    // A read-only installation: no cache, the bundle is built by each process.
  }
  return bundle;
}

async function bundleKey(): Promise<string> {
  const hash = createHash('sha256');
  const sdk = createRequire(import.meta.url)('@temporalio/worker/package.json') as { version: string };
  hash.update(`@temporalio ${sdk.version}\n`);
  // The versions of every other package the bundle may take code from.
  hash.update(await readFile(join(repo, 'package-lock.json')).catch(() => ''));
  for (const dir of ['workflows', 'activities', 'src']) {
    const files = (await readdir(join(repo, dir), { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      // parentPath: Node >= 20.12; path before that.
      .map((e) => join(e.parentPath ?? (e as { path?: string }).path, e.name))
      .sort();
    for (const f of files) hash.update(`${relative(repo, f)}\n`).update(await readFile(f));
  }
  return hash.digest('hex').slice(0, 32);
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (msg: string) => console.warn(msg),
  error: (msg: string) => console.error(msg),
};

/** Creates the CA hierarchy if needed (under a Postgres advisory lock) and writes root.pem / chain.pem. */
export async function bootstrapCa(config: Config, pool: Pool, keys: KeyStore, log: Logger): Promise<void> {
  const client = await pool.connect();
  try {
    await lockSession(client, 'certflow:ca-bootstrap');
    const result = await ensureHierarchy({
      ca: config.ca,
      keys,
      store: {
        get: async (name) => (await cas.get(client, name)) ?? undefined,
        insert: async (ca) => {
          await cas.insert(client, ca);
        },
      },
      urls: (name) => caUrls(config, name),
      log: (msg) => log.info(msg),
    });
    await writeTrustFiles(config, await cas.issuingChain(client, result.issuing.name, { includeRoot: true }));
    if (result.created.length) log.info({ created: result.created }, 'CA hierarchy created');
    await ensureArchiveKey(
      client,
      keys,
      log,
      [...config.est.labels.values()].some((l) => l.archiveServerKeys),
    );
  } finally {
    await unlockSession(client, 'certflow:ca-bootstrap').catch(() => {});
    client.release();
  }
}

/**
 * The key-archive key (EST serverkeygen with archiveServerKeys): an RSA-3072 decryption key
 * in the key store, whose public half the front end encrypts to. Created at the first start
 * whose configuration has a label that archives keys (`wanted`); a configuration without one
 * needs none, and an RSA-3072 key costs ~0.7 s of CPU to generate. Once it exists it is
 * checked at every start. A key left by a start that crashed before recording it is reused.
 */
async function ensureArchiveKey(db: Queryable, keys: KeyStore, log: Logger, wanted: boolean): Promise<void> {
  const existing = await keys.get(ARCHIVE_KEY_ID);
  if (existing && existing.alg !== 'rsa-3072') {
    throw new CaError(
      'config',
      `key "${ARCHIVE_KEY_ID}" exists in the ${keys.backend} key store with algorithm ${existing.alg}, not rsa-3072`,
    );
  }
  const row = await keyArchive.getArchiveKey(db, ARCHIVE_KEY_ID);
  if (!existing && !row && !wanted) return;
  const key = existing ?? (await keys.generate(ARCHIVE_KEY_ID, 'rsa-3072', 'decrypt'));
  if (!existing) log.info({ keyId: ARCHIVE_KEY_ID, keyBackend: keys.backend }, 'key-archive key created');
  if (!row) {
    await keyArchive.insertArchiveKey(db, { keyId: ARCHIVE_KEY_ID, keyBackend: keys.backend, spki: key.spki });
  } else if (!row.spki.equals(Buffer.from(key.spki)) || row.keyBackend !== keys.backend) {
    throw new CaError('config', `the key "${ARCHIVE_KEY_ID}" in the ${keys.backend} key store does not match archive_keys`);
  }
}

export interface RunningWorker {
  /** Resolves when both workers stopped (after shutdown() or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export interface WorkerOptions {
  /** Wraps the key store the worker signs with (tests inject slow or stalling tokens here: test/helpers/faulty-worker.ts). */
  wrapKeyStore?: (keys: KeyStore) => KeyStore;
  /** Options of both Temporal workers (tests add activity interceptors here: test/helpers/faulty-worker.ts). */
  workerOptions?: Pick<TemporalWorkerOptions, 'interceptors'>;
}

export async function startWorker(config: Config, log: Logger, opts: WorkerOptions = {}): Promise<RunningWorker> {
  enableArtifactRecording(config.artifactsDir);
  const pool = await openDatabase(config, log);
  await loadManagedProfiles(config, pool, log);
  const profileWatch = watchManagedProfiles(config, { url: databaseUrl(config), pool, log });
  const opened = await openKeyStore(config, { warn: (m) => log.warn(m) });
  const keys = opts.wrapKeyStore ? opts.wrapKeyStore(opened) : opened;
  await bootstrapCa(config, pool, keys, log);
  await ensureAuditKey({ config, pool, keys, log });
  for (const r of await unknownCaReferences(config, pool)) log.error({ path: r.path, ca: r.name }, r.message);

  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: config.temporal.address, tls: temporalTlsOptions(config.temporal.tls) });
  } catch (e) {
    throw new CaError('unavailable', `cannot reach Temporal at ${config.temporal.address}: ${errorMessage(e)}`, { cause: e });
  }
  const common = { connection, namespace: config.temporal.namespace, workflowBundle: await workflowBundle(), ...opts.workerOptions };
  // Storage (read-model projections, run as local activities) and ACME validation.
  const requestActivities = {
    ...createStorageActivities({ pool }),
    ...createAcmeActivities({ config, pool, log }),
    ...createValidationActivities({ config, log }),
  };
  const main = await Worker.create({
    ...common,
    taskQueue: config.temporal.taskQueue,
    activities: {
      ...requestActivities,
      ...createNotificationActivities({ config, pool, log }),
      ...createCaWatchActivities({ config, pool, log }),
    },
  });
  // The signing queue runs the request workflows that sign (WORKFLOWS' onSigningQueue): their
  // projections, validations and signing are local activities of this worker.
  const signing = await Worker.create({
    ...common,
    taskQueue: config.temporal.signingTaskQueue,
    activities: {
      ...requestActivities,
      ...createSigningActivities({ config, pool, keys, log }),
      ...createRevocationActivities({ config, pool, keys, log }),
      ...createAuditActivities({ config, pool, keys, log }),
      ...createKeyRecoveryActivities({ config, pool, keys, log }),
      ...createCaActivities({ config, pool, keys, log }),
    },
  });
  const temporal = await connectTemporal(config);
  try {
    await ensureSchedules(temporal.client, config);
  } finally {
    await temporal.close();
  }
  // Signs the OCSP responses of newly issued certificates, off the issuance path.
  const ocsp = startOcspSigner({ config, pool, keys, log, databaseUrl: databaseUrl(config) });
  log.info({ taskQueues: [config.temporal.taskQueue, config.temporal.signingTaskQueue], keyBackend: keys.backend }, 'worker polling');

  const done = Promise.all([main.run(), signing.run()]).finally(async () => {
    await ocsp.close().catch(() => {});
    await profileWatch.close().catch(() => {});
    await connection.close().catch(() => {});
    await keys.close().catch(() => {});
    await pool.end().catch(() => {});
  });
  return {
    done: done.then(() => undefined),
    async shutdown() {
      for (const w of [main, signing]) if (w.getState() === 'RUNNING') w.shutdown();
      await done.catch(() => {});
    },
  };
}
