import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { EMBEDDED_DATABASE, embeddedDatabaseUrl } from './embedded.ts';
import { migrate, pendingMigrations } from './migrate.ts';
import { createPool, waitForDatabase, type PoolOptions } from './pool.ts';
import { currentLogin, ensureLoginRole, grantRuntime, runtimeLoginProblems } from './roles.ts';

/** The runtime login: DATABASE_URL, or the dev stack's embedded Postgres as "certflow_app". */
export function databaseUrl(config: Config): string {
  return config.databaseUrl ?? embeddedDatabaseUrl(config, config.embeddedPostgresPort, EMBEDDED_DATABASE, 'runtime');
}

/**
 * The owner login (migrations): CERTFLOW_DATABASE_OWNER_URL, or the embedded server's
 * "postgres"; undefined with an external DATABASE_URL alone (that login is then the owner).
 */
export function ownerDatabaseUrl(config: Config): string | undefined {
  if (config.databaseOwnerUrl) return config.databaseOwnerUrl;
  return config.databaseUrl ? undefined : embeddedDatabaseUrl(config, config.embeddedPostgresPort);
}

/**
 * Limits for a process that answers requests: a database that does not answer makes a
 * request fail within a few seconds (503), never hang.
 */
export const FRONT_END_POOL: PoolOptions = { statementTimeoutMs: 5000, queryTimeoutMs: 6000, connectionTimeoutMs: 3000 };

/**
 * Applies pending migrations as the owner login and grants the runtime login its
 * privileges (src/db/roles.ts). Without an owner login the runtime login migrates (one
 * login for both); when it may not, the error says how to run them.
 */
export async function migrateDatabase(config: Config, log: (msg: string) => void): Promise<string[]> {
  const runtimeUrl = databaseUrl(config);
  const ownerUrl = ownerDatabaseUrl(config) ?? runtimeUrl;
  // Own pool with the default limits: waiting for another process's migration lock may take long.
  const owner = createPool(ownerUrl, { max: 2 });
  try {
    let applied: string[] = [];
    try {
      ({ applied } = await migrate(owner, log));
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
      if (ownerUrl === runtimeUrl && code === '42501') {
        const pending = await pendingMigrations(owner).catch(() => []);
        throw new CaError(
          'config',
          `the database needs migration ${pending.map((m) => m.name).join(', ')}, which the login of DATABASE_URL may not apply: ` +
            'run `certflow migrate` with CERTFLOW_DATABASE_OWNER_URL set to the owner login (docs/operations.md, "Database roles")',
          { rule: 'db.migrate.privileges', cause: e },
        );
      }
      throw e;
    }
    if (ownerUrl !== runtimeUrl) {
      const runtime = createPool(runtimeUrl, { max: 1 });
      try {
        const [role, ownerRole] = await Promise.all([currentLogin(runtime), currentLogin(owner)]);
        if (role !== ownerRole && (await grantRuntime(owner, role))) log(`granted the runtime login "${role}" its privileges`);
      } finally {
        await runtime.end().catch(() => {});
      }
    }
    return applied;
  } finally {
    await owner.end().catch(() => {});
  }
}

/**
 * Creates the runtime login of DATABASE_URL (its name and password), or brings an existing
 * one to that password and to no special attribute, with the owner login
 * (CERTFLOW_DATABASE_OWNER_URL, which must be allowed to create roles): for deployments
 * that make both logins themselves, as docker-compose.yml's `migrate` job does
 * (`certflow migrate --create-runtime-login`). Returns the login's name.
 */
export async function createRuntimeLogin(config: Config): Promise<string> {
  const rule = { rule: 'db.runtimeLogin' };
  if (!config.databaseUrl || !config.databaseOwnerUrl) {
    throw new CaError(
      'config',
      'creating the runtime login needs DATABASE_URL (the login to create, with its password) and CERTFLOW_DATABASE_OWNER_URL (a login that may create roles)',
      rule,
    );
  }
  const runtime = new URL(config.databaseUrl);
  const name = decodeURIComponent(runtime.username);
  const password = decodeURIComponent(runtime.password);
  if (!name || !password)
    throw new CaError('config', 'DATABASE_URL must name the runtime login and its password (postgres://<login>:<password>@…)', rule);
  if (name === decodeURIComponent(new URL(config.databaseOwnerUrl).username)) {
    throw new CaError(
      'config',
      `DATABASE_URL and CERTFLOW_DATABASE_OWNER_URL both use the login "${name}": the runtime login must be another one`,
      rule,
    );
  }
  await waitForDatabase(config.databaseOwnerUrl, 30_000);
  await ensureLoginRole(config.databaseOwnerUrl, name, password).catch((e: unknown) => {
    if ((e as { code?: string }).code !== '42501') throw e;
    throw new CaError(
      'config',
      `the owner login may not create the runtime login "${name}": give it CREATEROLE, or create "${name}" yourself (docs/operations.md, "Database roles")`,
      { ...rule, cause: e },
    );
  });
  return name;
}

/** Connects (waiting for the server), applies pending migrations, returns the pool of the runtime login. */
export async function openDatabase(config: Config, log: Logger, opts: { migrate?: boolean; pool?: PoolOptions } = {}): Promise<Pool> {
  const url = databaseUrl(config);
  await waitForDatabase(url, 30_000);
  if (opts.migrate !== false) {
    const applied = await migrateDatabase(config, (m: string) => log.info(m));
    if (applied.length) log.info({ applied }, 'database migrated');
  }
  const pool = createPool(url, {
    ...opts.pool,
    onIdleError: (err) => log.warn({ err: errorMessage(err) }, 'a database connection failed (it is replaced)'),
  });
  if (opts.migrate !== false) {
    for (const problem of await runtimeLoginProblems(pool).catch(() => [])) {
      log.warn({ problem }, 'the runtime database login is not separated from the owner (docs/operations.md, "Database roles")');
    }
  }
  return pool;
}
