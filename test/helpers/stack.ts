/**
 * Access to the servers that scripts/test.js starts once per run. Each test file gets its
 * own database (created here, migrated, dropped by the caller), so files cannot see each
 * other's rows even though they share one Postgres. As in production, the database is
 * migrated by its owner (the test server's superuser) and certflow's processes use the
 * runtime login "certflow_app", which owns nothing (src/db/roles.ts).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Pool } from 'pg';
import { ensureDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { grantRuntime } from '../../src/db/roles.ts';

export interface TestDatabase {
  /** URL of the fresh database as its owner (the superuser of the test server): migrations, restores. */
  url: string;
  /**
   * URL of the same database as the runtime login (no superuser, owns nothing), with the
   * privileges src/db/roles.ts grants it: what the servers and workers of an instance use.
   */
  appUrl: string;
  /** Pool on it as the owner (closed by drop()). */
  pool: Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests through \`npm test\` (or \`node scripts/test.js <file>\`), ` +
        'which starts Postgres and Temporal for them (not for test/unit: a test that needs a server belongs in test/component)',
    );
  }
  return value;
}

/** Admin URL (database "postgres") of the shared test server. */
export function testDatabaseAdminUrl(): string {
  return requireEnv('CERTFLOW_TEST_DATABASE_URL');
}

/** The same server's URL for another database (as the owner, or as the runtime login). */
function databaseUrlFor(database: string, login: 'owner' | 'runtime' = 'owner'): string {
  return withDatabase(login === 'owner' ? testDatabaseAdminUrl() : requireEnv('CERTFLOW_TEST_DATABASE_APP_URL'), database);
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Migrations by the owner (`pool`), then the runtime login of `appUrl` granted its privileges (src/db/roles.ts). */
async function migrateAsOwner(pool: Pool, appUrl: string): Promise<void> {
  await migrate(pool);
  await grantRuntime(pool, decodeURIComponent(new URL(appUrl).username));
}

/**
 * Makes the database every migrated test database is copied from, once per run
 * (scripts/test.js): migrated by its owner, the runtime login granted its privileges.
 * Copying it (CREATE DATABASE ... TEMPLATE) takes a fraction of the time and CPU of
 * running every migration again for each test file.
 */
export async function createTemplateDatabase(adminUrl: string, appUrl: string): Promise<string> {
  const name = 'certflow_test_template';
  await ensureDatabase(adminUrl, name);
  const pool = createPool(withDatabase(adminUrl, name));
  try {
    await migrateAsOwner(pool, appUrl);
  } finally {
    // A template with an open connection cannot be copied.
    await pool.end();
  }
  return name;
}

/**
 * A new, uniquely named database on the shared test server, migrated by its owner (unless
 * migrate: false): a copy of the run's template database when there is one.
 */
export async function testDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `certflow_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const template = opts.migrate !== false ? process.env.CERTFLOW_TEST_DATABASE_TEMPLATE : undefined;
  if (template) await adminStatement((c) => `CREATE DATABASE ${c.escapeIdentifier(name)} TEMPLATE ${c.escapeIdentifier(template)}`);
  else await ensureDatabase(testDatabaseAdminUrl(), name);
  const url = databaseUrlFor(name);
  const appUrl = databaseUrlFor(name, 'runtime');
  const pool = createPool(url);
  if (opts.migrate !== false && !template) await migrateAsOwner(pool, appUrl);
  let dropped = false;
  return {
    url,
    appUrl,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end();
      // FORCE: a pool another helper opened on the database must not make the drop fail.
      await adminStatement((c) => `DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
    },
  };
}

/** Runs one statement (CREATE/DROP DATABASE: not inside a transaction or pool) on the server's admin database. */
async function adminStatement(sql: (client: pg.Client) => string): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseAdminUrl() });
  await client.connect();
  try {
    await client.query(sql(client));
  } finally {
    await client.end();
  }
}

/** host:port of the shared Temporal dev server. */
export function temporalAddress(): string {
  return requireEnv('CERTFLOW_TEST_TEMPORAL_ADDRESS');
}

/** Namespace of the shared Temporal dev server (its search attributes are registered there). */
export function temporalNamespace(): string {
  return process.env.CERTFLOW_TEST_TEMPORAL_NAMESPACE || 'default';
}
