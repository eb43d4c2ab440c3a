/**
 * Two database logins (docs/operations.md, "Database roles"):
 *
 * - the OWNER login runs the migrations and owns every table, trigger and function;
 * - the RUNTIME login of servers, workers, the console and the CLI owns nothing. It reads
 *   and writes the tables it works with, but may only append to the audit log and its
 *   checkpoints and keys (SELECT, INSERT) and only advance the chain head (UPDATE, which a
 *   trigger limits to one entry forward). Not being the owner, it cannot disable the
 *   append-only triggers, TRUNCATE, ALTER or DROP a table.
 *
 * grantRuntime() gives the runtime login exactly these privileges after the migrations
 * (idempotent: it records what it granted and does nothing while that is current).
 * runtimeLoginProblems() says when a process runs with a login that could rewrite the log.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { withTransaction, type Queryable } from './pool.ts';
import { MIGRATION_LOCK_SQL } from './migrate.ts';

/** What the runtime login may do per table; every other table: read and write rows. */
const RUNTIME_TABLE_PRIVILEGES: Readonly<Record<string, string>> = {
  audit_log: 'SELECT, INSERT',
  audit_checkpoints: 'SELECT, INSERT',
  audit_keys: 'SELECT, INSERT',
  audit_head: 'SELECT, UPDATE',
  schema_migrations: 'SELECT',
  runtime_grants: 'SELECT',
  // Profile versions are appended, never rewritten: the history an audit entry's diff refers to.
  managed_profiles: 'SELECT, INSERT',
};
const DEFAULT_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE';

/** The tables whose owner could rewrite the audit log (runtimeLoginProblems checks them). */
const AUDIT_TABLES = ['audit_log', 'audit_checkpoints', 'audit_keys', 'audit_head'] as const;

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function tablesOf(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/**
 * Grants the runtime login `role` its privileges on every table of the schema (run with
 * the owner login, after the migrations). Serialized with migrations by their advisory
 * lock; returns false when the grants recorded for `role` were current already.
 */
export async function grantRuntime(owner: Pool, role: string): Promise<boolean> {
  return withTransaction(owner, async (tx) => {
    await tx.query('SET LOCAL statement_timeout = 0');
    await tx.query(MIGRATION_LOCK_SQL);
    const tables = await tablesOf(tx);
    const plan = tables.map((t) => `${t}:${RUNTIME_TABLE_PRIVILEGES[t] ?? DEFAULT_PRIVILEGES}`);
    const planHash = createHash('sha256').update(plan.join('\n')).digest('hex');
    // The record alone could come from another database (a restored backup): the privilege must be there too.
    const done = await tx.query(
      "SELECT 1 FROM runtime_grants WHERE role = $1 AND plan_hash = $2 AND has_table_privilege($1, 'audit_log', 'INSERT')",
      [role, planHash],
    );
    if (done.rowCount) return false;
    const r = ident(role);
    await tx.query(`GRANT USAGE ON SCHEMA ${ident(await schemaOf(tx))} TO ${r}`);
    await tx.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${ident(await schemaOf(tx))} FROM ${r}`);
    for (const t of tables) await tx.query(`GRANT ${RUNTIME_TABLE_PRIVILEGES[t] ?? DEFAULT_PRIVILEGES} ON ${ident(t)} TO ${r}`);
    await tx.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${ident(await schemaOf(tx))} TO ${r}`);
    await tx.query(
      `INSERT INTO runtime_grants (role, plan_hash) VALUES ($1, $2)
       ON CONFLICT (role) DO UPDATE SET plan_hash = EXCLUDED.plan_hash, granted_at = now()`,
      [role, planHash],
    );
    return true;
  });
}

async function schemaOf(db: PoolClient): Promise<string> {
  const { rows } = await db.query<{ s: string }>('SELECT current_schema() AS s');
  return rows[0]!.s;
}

/** The login a connection runs as. */
export async function currentLogin(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ u: string }>('SELECT current_user AS u');
  return rows[0]!.u;
}

/**
 * Why this connection's login could rewrite the audit log: it is a superuser, or owns (or
 * is a member of the owner of) an audit table. Empty when it is a proper runtime login.
 */
export async function runtimeLoginProblems(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ login: string; superuser: boolean; owned: string[] }>(
    `SELECT current_user AS login,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
            coalesce((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[]) AND pg_has_role(current_user, c.relowner, 'USAGE')),
                     '{}') AS owned`,
    [AUDIT_TABLES],
  );
  const r = rows[0]!;
  if (r.superuser) return [`the database login "${r.login}" is a superuser: it can disable the audit log's triggers and rewrite it`];
  if (r.owned.length)
    return [`the database login "${r.login}" owns ${r.owned.join(', ')}: it can disable their triggers and rewrite the audit log`];
  return [];
}

/**
 * Creates (or updates) a login role without any special attribute: the runtime login of
 * an embedded Postgres and of the test stack. Run on a superuser connection.
 */
export async function ensureLoginRole(adminUrl: string, name: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`;
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    if (!rowCount) {
      const created = await client.query(`CREATE ROLE ${client.escapeIdentifier(name)} ${attrs}`).then(
        () => true,
        (e: { code?: string }) => {
          if (e.code !== '42710') throw e; // created meanwhile by another process
          return false;
        },
      );
      if (created) return;
    }
    await client.query(`ALTER ROLE ${client.escapeIdentifier(name)} ${attrs}`);
  } finally {
    await client.end();
  }
}
