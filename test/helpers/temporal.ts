/**
 * A client of the run's Temporal server (scripts/test.js starts it), for tests that look at
 * or steer workflows and schedules directly.
 */
import { Client, Connection } from '@temporalio/client';
import { temporalAddress, temporalNamespace } from './stack.ts';

/** Runs `fn` with a client of the test namespace; the connection is closed afterwards. */
export async function withTemporal<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    return await fn(new Client({ connection, namespace: temporalNamespace() }));
  } finally {
    await connection.close();
  }
}
