/**
 * Schema migrations: src/db/migrations/NNN_name.sql, applied in version order, each in its
 * own transaction together with its row in schema_migrations. Every process runs migrate()
 * at start (server, worker, CLI), so concurrent runs are expected: a transaction-scoped
 * advisory lock serializes them, and whoever gets the lock second sees the first one's rows
 * and skips what is already applied.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool, PoolClient } from 'pg';
import { CaError } from '../core/errors.ts';
import { withTransaction, type Queryable } from './pool.ts';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** One key for all certflow migrations of a database (hashtext of a fixed name). */
export const MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('certflow:schema_migrations'))";

export interface Migration {
  version: number;
  /** File name without ".sql", e.g. "001_ca_core". */
  name: string;
  sql: string;
  /** sha256 (hex) of the SQL with normalized line endings. */
  checksum: string;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string | null;
}

/** Reads and orders the migration files; rejects malformed names and duplicate versions. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql'))) {
    const m = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/.exec(file);
    if (!m) throw new CaError('config', `migration file ${join(dir, file)} is not named NNN_name.sql`);
    // CRLF from a Windows checkout must not look like a changed migration.
    const sql = readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n');
    migrations.push({ version: Number(m[1]), name: file.slice(0, -4), sql, checksum: sha256(sql) });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new CaError('config', `migrations ${migrations[i - 1]!.name} and ${migrations[i]!.name} have the same version`);
    }
  }
  return migrations;
}

/**
 * Applies the pending migrations. Returns the names applied by this call (empty when the
 * schema was up to date, or another process applied them first).
 */
export async function migrate(
  pool: Pool,
  log: (msg: string) => void = () => {},
  opts: { dir?: string; upTo?: number } = {},
): Promise<{ applied: string[] }> {
  // upTo: stop after this version (a backup is restored into the schema it was taken from).
  const migrations = loadMigrations(opts.dir).filter((m) => opts.upTo === undefined || m.version <= opts.upTo);
  // Nothing to do (the usual start): no lock, no DDL — which a runtime login could not run anyway.
  if (!(await pendingMigrations(pool, migrations, log)).length) return { applied: [] };
  await withTransaction(pool, async (client) => {
    await lock(client);
    await ensureTable(client);
    verifyApplied(migrations, await appliedRows(client), log);
  });
  const applied: string[] = [];
  for (const migration of migrations) {
    if (await applyOne(pool, migration, log)) applied.push(migration.name);
  }
  return { applied };
}

/** Applies one migration unless it is recorded already (checked under the lock). */
async function applyOne(pool: Pool, migration: Migration, log: (msg: string) => void): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    await lock(client);
    const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
    if (done.rowCount) return false;
    log(`applying migration ${migration.name}`);
    try {
      // No parameters: the simple query protocol runs a file of several statements.
      await client.query(migration.sql);
    } catch (e) {
      throw new CaError('internal', `migration ${migration.name} failed: ${(e as Error).message}`, { cause: e });
    }
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      migration.checksum,
    ]);
    return true;
  });
}

/**
 * The migrations not applied yet, read without a lock or DDL (a runtime login may call
 * it). An applied migration whose file changed is refused as in migrate().
 */
export async function pendingMigrations(
  db: Queryable,
  migrations = loadMigrations(),
  log: (msg: string) => void = () => {},
): Promise<Migration[]> {
  const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!rows[0]?.t) return migrations;
  const applied = await appliedRows(db);
  verifyApplied(migrations, applied, log);
  const done = new Set(applied.map((r) => r.version));
  return migrations.filter((m) => !done.has(m.version));
}

async function lock(client: PoolClient): Promise<void> {
  // Migrations may run longer than the pool's statement timeout, and so may the wait for
  // another process's migration: lift the limit for this transaction only.
  await client.query('SET LOCAL statement_timeout = 0');
  await client.query(MIGRATION_LOCK_SQL);
}

async function ensureTable(client: PoolClient): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

async function appliedRows(client: Queryable): Promise<AppliedRow[]> {
  const { rows } = await client.query<AppliedRow>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
  return rows;
}

/**
 * An applied migration whose file changed means the database and the code disagree about
 * the schema: stop with a message naming the file instead of running on.
 */
function verifyApplied(migrations: Migration[], applied: AppliedRow[], log: (msg: string) => void): void {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (!file) {
      // A newer certflow migrated this database; older code may still run during a rollout.
      log(`database has migration ${row.name}, which this version of certflow does not know`);
      continue;
    }
    if (row.checksum && row.checksum !== file.checksum) {
      throw new CaError(
        'config',
        `migration ${file.name} was changed after it was applied to this database ` +
          `(recorded sha256 ${row.checksum.slice(0, 12)}…, file ${file.checksum.slice(0, 12)}…): ` +
          'restore the original file and put the change into a new migration',
        { rule: 'migration.checksum', details: { version: row.version } },
      );
    }
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
