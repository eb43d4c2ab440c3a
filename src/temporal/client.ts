import { Client, Connection, type ConnectionLike } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import type { Config } from '../config/index.ts';
import { ApplicationFailure } from '@temporalio/common';
import { CaError, errorMessage, isRequestEnding, type ErrorKind } from '../core/errors.ts';
import { temporalTlsOptions } from './tls.ts';

export interface TemporalClient {
  client: Client;
  connection: ConnectionLike;
  close(): Promise<void>;
}

/**
 * Connects to the Temporal frontend, failing with a clear 'unavailable' error after `timeoutMs`.
 *
 * `native`: through the SDK's Rust core (NativeConnection, as the worker connects) instead
 * of grpc-js; for long-lived processes that make many calls (`certflow server`: a call costs
 * the process about a fifth of the CPU; issue 18). Such a connection ignores abort signals:
 * calls that must end at a deadline go through callWithin().
 */
export async function connectTemporal(
  config: Pick<Config, 'temporal'>,
  timeoutMs = 10_000,
  opts: { native?: boolean } = {},
): Promise<TemporalClient> {
  const { address } = config.temporal;
  const tls = temporalTlsOptions(config.temporal.tls);
  try {
    let connection: ConnectionLike;
    if (opts.native) {
      installRuntime();
      connection = await withDeadline(`Temporal at ${address}`, timeoutMs, () => NativeConnection.connect({ address, tls }));
    } else {
      connection = await Connection.connect({ address, connectTimeout: timeoutMs, tls });
    }
    const client = new Client({ connection, namespace: config.temporal.namespace });
    return { client, connection, close: () => connection.close() };
  } catch (e) {
    throw new CaError('unavailable', `cannot reach Temporal at ${address}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * The SDK's Rust runtime of a process that runs no worker: without the signal handlers it
 * installs by default (the process's own handlers stop it). A worker process (or a second
 * connection) finds it installed already.
 */
function installRuntime(): void {
  try {
    Runtime.install({ shutdownSignals: [] });
  } catch {
    /* installed already */
  }
}

/**
 * A Temporal call with a deadline, as withDeadline(): the caller gets CaError('unavailable')
 * after `ms`, and the call itself ends too, whatever the connection (grpc-js is aborted; a
 * native connection, which ignores abort signals, gets the call's own deadline a moment later).
 */
export function callWithin<T>(client: Client, what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  return withDeadline(what, ms, (signal) => client.withDeadline(Date.now() + ms + 1000, () => client.withAbortSignal(signal, fn)));
}

/** The errors withDeadline() made (a deadline passed), told apart from the call's own failures. */
const expired = new WeakSet<Error>();

/** Runs `fn` with a deadline; a call that does not answer in time fails as 'unavailable'. */
export async function withDeadline<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      const e = new CaError('unavailable', `${what} did not answer within ${Math.round(ms / 1000)} s`);
      expired.add(e);
      reject(e);
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `e` is withDeadline()'s: the deadline passed before the call answered. */
export function deadlinePassed(e: unknown): boolean {
  return e instanceof Error && expired.has(e);
}

/**
 * A workflow that failed because of a requester mistake carries the CaError kind as the
 * ApplicationFailure type (see activities/failures.ts): turn it back into a CaError.
 */
export function unwrapWorkflowFailure(e: unknown): unknown {
  let cause: unknown = e;
  while (cause instanceof Error && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type && isRequestEnding(cause.type)) {
    return new CaError(cause.type as ErrorKind, cause.message);
  }
  return e;
}
