import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import { embeddedDatabaseUrl } from './embedded.ts';
import { migrate } from './migrate.ts';
import { createPool, waitForDatabase } from './pool.ts';

/** DATABASE_URL, or the dev stack's embedded Postgres. */
export function databaseUrl(config: Config): string {
  return config.databaseUrl ?? embeddedDatabaseUrl(config, config.embeddedPostgresPort);
}

/** Connects (waiting for the server), applies pending migrations, returns the pool. */
export async function openDatabase(config: Config, log: Logger, opts: { migrate?: boolean } = {}): Promise<Pool> {
  const url = databaseUrl(config);
  await waitForDatabase(url, 30_000);
  const pool = createPool(url);
  if (opts.migrate !== false) {
    const { applied } = await migrate(pool, (m: string) => log.info(m));
    if (applied.length) log.info({ applied }, 'database migrated');
  }
  return pool;
}
