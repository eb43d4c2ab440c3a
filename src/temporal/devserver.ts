/**
 * Launches `temporal server start-dev` (SQLite persistence) as a child process whose pid is
 * known, so that the dev supervisor can restart it and the test runner can stop it.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config.js';
import { msToTs } from '@temporalio/common/lib/time.js';
// The SDK exports these (un-indexed) "for use in tests to register search attributes".
import { encodeSearchAttributeIndexedValueType as encodeType, _ as decodeType } from '@temporalio/common/lib/search-attributes.js';
import { spawnLogged, logTail, type ChildHandle } from '../core/child.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { assertPortFree } from '../core/net.ts';
import { SEARCH_ATTRIBUTES } from './search-attributes.ts';
import { temporalClientSdk } from './client.ts';

export interface TemporalDevServerOptions {
  /** Path of the `temporal` CLI (resolveTemporalCli). */
  cli: string;
  /** Address of the frontend, UI and the server's other listeners (default 127.0.0.1). */
  ip?: string;
  /** gRPC frontend port. */
  port: number;
  /** Web UI port; 0 or undefined runs headless. */
  uiPort?: number;
  /** SQLite file: workflows survive restarts of the server. */
  dbFile: string;
  /** Namespace to create besides "default" (default "default"). */
  namespace?: string;
  logFile: string;
  /** How long to wait for the frontend (default 60 s). */
  timeoutMs?: number;
}

export interface TemporalDevServerHandle extends ChildHandle {
  /** host:port of the gRPC frontend. */
  address: string;
  namespace: string;
  /** URL of the Web UI, if not headless. */
  uiUrl?: string;
}

export async function spawnTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServerHandle> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const address = `${ip}:${opts.port}`;
  await assertPortFree(ip, opts.port, 'the Temporal dev server');
  if (opts.uiPort) await assertPortFree(ip, opts.uiPort, 'the Temporal Web UI');
  mkdirSync(dirname(opts.dbFile), { recursive: true });
  const child = spawnLogged(opts.cli, devServerArgs({ ...opts, ip, namespace }), { logFile: opts.logFile });
  const handle: TemporalDevServerHandle = {
    ...child,
    address,
    namespace,
    uiUrl: opts.uiPort ? `http://${ip}:${opts.uiPort}` : undefined,
  };
  try {
    await untilReady(handle, opts.timeoutMs ?? 60_000);
    return handle;
  } catch (e) {
    await child.stop(5000);
    const tail = await logTail(opts.logFile, 3000);
    throw new CaError(
      'unavailable',
      `the Temporal dev server did not start on ${address}: ${errorMessage(e)}\n--- ${opts.logFile} (end) ---\n${tail}`,
      { cause: e },
    );
  }
}

function devServerArgs(o: TemporalDevServerOptions & { ip: string; namespace: string }): string[] {
  const args = ['server', 'start-dev', '--ip', o.ip, '--port', String(o.port), '--db-filename', o.dbFile];
  // The server's own messages at "warn" keep the log readable; --color never keeps it plain text.
  args.push('--log-level', 'warn', '--color', 'never');
  args.push(...(o.uiPort ? ['--ui-port', String(o.uiPort), '--ui-disable-news-fetch'] : ['--headless']));
  if (o.namespace !== 'default') args.push('--namespace', o.namespace);
  // Registered at the first start only: on a restart with an existing SQLite file the flags
  // are ignored for new names, which is why ensureSearchAttributes() runs after start too.
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  // Throughput of the single-shard dev server (measured with bench:est): the transfer queue
  // poller's default of 20 polls/s left tasks queued ~20 ms each, and SQLite's rollback
  // journal cost ~70 fsyncs per enrollment. WAL with synchronous=FULL stays durable.
  args.push('--dynamic-config-value', 'history.transferProcessorMaxPollRPS=10000');
  args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=FULL');
  return args;
}

/**
 * Waits until the frontend answers for the namespace, then makes sure the search attributes
 * exist. Fails at once if the process exits (port taken, corrupt SQLite file).
 */
async function untilReady(handle: TemporalDevServerHandle, timeoutMs: number): Promise<void> {
  await untilTemporalReady({ ...handle, what: 'the temporal process' }, timeoutMs);
}

export interface TemporalReadyTarget {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** The server process, when it is ours: its exit ends the wait at once. */
  exited?: Promise<number | null>;
  /** Names the process in the error message. */
  what: string;
  /** Registers the namespace with this retention when it does not exist (a fresh cluster). */
  registerNamespaceDays?: number;
  /** mTLS (a cluster's frontend). */
  tls?: TLSConfig;
}

/**
 * Waits until the frontend answers for the namespace (registering it first where asked),
 * then makes sure certflow's search attributes exist. Returns what it created and the
 * cluster's number of history shards (the one it was created with, whatever a config says now).
 */
export async function untilTemporalReady(
  target: TemporalReadyTarget,
  timeoutMs: number,
): Promise<{ created: string[]; historyShards: number }> {
  let exitCode: number | null | undefined;
  void target.exited?.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  // Kept across attempts: a namespace registered by one attempt can still be unknown to the
  // frontend's cache in the next (it refreshes every few seconds).
  const created: string[] = [];
  let historyShards = 0;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${target.what} exited with code ${exitCode}`);
    try {
      await withConnection(target.address, target.tls, Math.min(5000, deadline - Date.now()), async (connection) => {
        if (
          target.registerNamespaceDays !== undefined &&
          (await registerNamespace(connection, target.namespace, target.registerNamespaceDays))
        ) {
          created.push(`namespace ${target.namespace}`);
        }
        await connection.workflowService.describeNamespace({ namespace: target.namespace });
        created.push(...(await ensureSearchAttributes(connection, target.namespace)));
        historyShards = (await connection.workflowService.getClusterInfo({})).historyShardCount ?? 0;
      });
      // Each service caches namespaces and their search attributes (refreshed every 2 s): a
      // workflow started at once could still be refused. Let all of them see the new ones.
      if (created.length) await sleep(5000);
      return { created, historyShards };
    } catch (e) {
      if (CaError.is(e, 'config')) throw e;
      lastError = e;
      await sleep(250);
    }
  }
  throw new Error(`no answer within ${Math.round(timeoutMs / 1000)} s (last error: ${errorMessage(lastError)})`);
}

/** gRPC status codes (the frontend's answers). */
const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;

/** Registers `namespace` unless it exists; true when it was created. */
async function registerNamespace(connection: Connection, namespace: string, retentionDays: number): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return false;
  } catch (e) {
    if ((e as { code?: number }).code !== GRPC_NOT_FOUND) throw e;
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      description: 'certflow',
      workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
    });
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === GRPC_ALREADY_EXISTS) return false;
    throw e;
  }
}

async function withConnection<T>(
  address: string,
  tls: TLSConfig | undefined,
  timeoutMs: number,
  fn: (c: Connection) => Promise<T>,
): Promise<T> {
  const { Connection } = await temporalClientSdk();
  const connection = await Connection.connect({ address, tls, connectTimeout: Math.max(timeoutMs, 500) });
  try {
    return await connection.withDeadline(Date.now() + Math.max(timeoutMs, 500), () => fn(connection));
  } finally {
    await connection.close();
  }
}

/** The SDK's names of the types in SEARCH_ATTRIBUTES. */
const SDK_TYPES = {
  Keyword: SearchAttributeType.KEYWORD,
  KeywordList: SearchAttributeType.KEYWORD_LIST,
  Text: SearchAttributeType.TEXT,
} as const;

/** certflow's search attributes with their types as OperatorService.AddSearchAttributes takes them. */
export function searchAttributeIndexedTypes(): Record<string, number> {
  return Object.fromEntries(Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => [name, encodeType(SDK_TYPES[type])!]));
}

/**
 * Registers the missing certflow search attributes in `namespace` and returns their names
 * (idempotent: [] when all exist). One with the right name but another type is a
 * configuration error: workflows would fail to upsert it. Works against any Temporal
 * cluster whose frontend allows OperatorService calls, not only the dev server.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing: Record<string, number> = {};
  for (const [name, wanted] of Object.entries(searchAttributeIndexedTypes())) {
    const type = SEARCH_ATTRIBUTES[name as keyof typeof SEARCH_ATTRIBUTES];
    const actual = existing.customAttributes?.[name];
    if (actual === undefined || actual === null) missing[name] = wanted;
    else if (actual !== wanted) {
      throw new CaError(
        'config',
        `search attribute ${name} exists in namespace ${namespace} with type ${decodeType(actual) ?? actual}, not ${type}`,
        { rule: 'temporal.searchAttribute' },
      );
    }
  }
  if (Object.keys(missing).length) {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  }
  return Object.keys(missing);
}
