import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { embeddedDatabaseUrl } from './embedded.ts';
import { migrate } from './migrate.ts';
import { createPool, waitForDatabase, type PoolOptions } from './pool.ts';

/** DATABASE_URL, or the dev stack's embedded Postgres. */
export function databaseUrl(config: Config): string {
  return config.databaseUrl ?? embeddedDatabaseUrl(config, config.embeddedPostgresPort);
}

/**
 * Limits for a process that answers requests: a database that does not answer makes a
 * request fail within a few seconds (503), never hang.
 */
export const FRONT_END_POOL: PoolOptions = { statementTimeoutMs: 5000, queryTimeoutMs: 6000, connectionTimeoutMs: 3000 };

/** Connects (waiting for the server), applies pending migrations, returns the pool. */
export async function openDatabase(config: Config, log: Logger, opts: { migrate?: boolean; pool?: PoolOptions } = {}): Promise<Pool> {
  const url = databaseUrl(config);
  await waitForDatabase(url, 30_000);
  if (opts.migrate !== false) {
    // Own pool with the default limits: waiting for another process's migration lock may take long.
    const migrationPool = createPool(url, { max: 2 });
    try {
      const { applied } = await migrate(migrationPool, (m: string) => log.info(m));
      if (applied.length) log.info({ applied }, 'database migrated');
    } finally {
      await migrationPool.end().catch(() => {});
    }
  }
  return createPool(url, {
    ...opts.pool,
    onIdleError: (err) => log.warn({ err: errorMessage(err) }, 'a database connection failed (it is replaced)'),
  });
}
