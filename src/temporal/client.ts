import type * as ClientSdk from '@temporalio/client';
import type { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/index.ts';
import type { ApplicationFailure } from '@temporalio/common';
import { CaError, errorMessage, isRequestEnding, type ErrorKind } from '../core/errors.ts';
import { temporalTlsOptions } from './tls.ts';

export interface TemporalClient {
  client: Client;
  connection: Connection;
  close(): Promise<void>;
}

let sdk: Promise<typeof ClientSdk> | undefined;
/**
 * @temporalio/client, loaded on first use rather than imported: loading it costs about half
 * a second of CPU, which every CLI command that never talks to Temporal (users, clients,
 * profiles, `--help`) would otherwise pay.
 */
export function temporalClientSdk(): Promise<typeof ClientSdk> {
  sdk ??= import('@temporalio/client');
  return sdk;
}

/** Connects to the Temporal frontend, failing with a clear 'unavailable' error after `timeoutMs`. */
export async function connectTemporal(config: Pick<Config, 'temporal'>, timeoutMs = 10_000): Promise<TemporalClient> {
  const { Client, Connection } = await temporalClientSdk();
  try {
    const connection = await Connection.connect({
      address: config.temporal.address,
      connectTimeout: timeoutMs,
      tls: temporalTlsOptions(config.temporal.tls),
    });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    return { client, connection, close: () => connection.close() };
  } catch (e) {
    throw new CaError('unavailable', `cannot reach Temporal at ${config.temporal.address}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Runs `fn` with a deadline; a call that does not answer in time fails as 'unavailable'. */
export async function withDeadline<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new CaError('unavailable', `${what} did not answer within ${Math.round(ms / 1000)} s`));
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `e instanceof ApplicationFailure`, answered as the SDK answers it (a marker symbol its
 * error classes carry, so that the check holds across realms) without importing
 * @temporalio/common's runtime here for one instanceof (test/unit/temporal-failures.test.ts).
 */
export function isApplicationFailure(e: unknown): e is ApplicationFailure {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[Symbol.for('__temporal_isApplicationFailure')] === true;
}

/**
 * A workflow that failed because of a requester mistake carries the CaError kind as the
 * ApplicationFailure type (see activities/failures.ts): turn it back into a CaError.
 */
export function unwrapWorkflowFailure(e: unknown): unknown {
  let cause: unknown = e;
  while (cause instanceof Error && cause.cause) cause = cause.cause;
  if (isApplicationFailure(cause) && cause.type && isRequestEnding(cause.type)) {
    return new CaError(cause.type as ErrorKind, cause.message);
  }
  return e;
}
