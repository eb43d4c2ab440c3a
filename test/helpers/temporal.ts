/**
 * A client of the run's Temporal server (scripts/test.js starts it), for tests that look at
 * or steer workflows and schedules directly.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { findGo } from '../../src/temporal/server-build.ts';
import { temporalAddress, temporalNamespace } from './stack.ts';

/** Where `npm run cluster -- build` keeps the Temporal server and UI builds the tests run ($CERTFLOW_TEMPORAL_SERVER_DIR). */
export const temporalBuildDir =
  process.env.CERTFLOW_TEMPORAL_SERVER_DIR || join(fileURLToPath(new URL('../..', import.meta.url)), '.certflow', 'temporal-server');

/**
 * Whether a test that needs `what` (a build in temporalBuildDir) is skipped, and why: it runs
 * when the build is there; in CI with Go it runs too, and its before() fails saying the
 * build is missing (.ci/run builds it where Go is installed); else it is skipped with how to
 * build it.
 */
export async function temporalBuildSkip(built: boolean, what: string): Promise<string | false> {
  if (built) return false;
  if (!(await findGo()))
    return `skipped: no Go on PATH, and ${what} is not built in ${temporalBuildDir} (install Go, then \`npm run cluster -- build\`; .ci/run does it)`;
  if (process.env.CI) return false;
  return `skipped: ${what} is not built in ${temporalBuildDir}; run \`npm run cluster -- build\` once (about 5 minutes)`;
}

/** Runs `fn` with a client of the test namespace; the connection is closed afterwards. */
export async function withTemporal<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    return await fn(new Client({ connection, namespace: temporalNamespace() }));
  } finally {
    await connection.close();
  }
}
