/**
 * Logical dump and load of certflow's database for backups (src/admin/backup.ts): plain
 * SQL over the normal connection, so no pg_dump of a matching version is needed.
 * Every table is read as JSON lines (row_to_json) inside ONE repeatable-read, read-only
 * transaction — a consistent snapshot — and loaded with json_populate_recordset into a
 * database migrated to the same schema, in one transaction, foreign keys checked at the end.
 */
import type { Pool, PoolClient } from 'pg';
import { CaError } from '../core/errors.ts';
import { withTransaction } from './pool.ts';
import * as auditLog from './repos/audit.ts';

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

export interface DumpSink {
  begin(meta: Record<string, unknown>): Promise<void>;
  data(bytes: Buffer): Promise<void>;
  end(): Promise<void>;
}

export interface DumpSummary {
  tables: Array<{ name: string; rows: number }>;
  sequences: Array<{ name: string; value: string | null }>;
  auditHead: { seq: number; hash: string };
  certificates: number;
}

async function userTables(db: PoolClient): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r'
       AND c.relname NOT IN ('schema_migrations', 'runtime_grants') ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

export async function appliedMigrations(pool: Pool): Promise<Array<{ version: number; name: string; checksum: string | null }>> {
  const { rows } = await pool.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
  return rows;
}

/** Streams every table (one entry each: {kind: 'table', name}) from one consistent snapshot. */
export async function dumpDatabase(pool: Pool, sink: DumpSink): Promise<DumpSummary> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query('SET LOCAL statement_timeout = 0');
    const tables: DumpSummary['tables'] = [];
    for (const table of await userTables(client)) {
      await sink.begin({ kind: 'table', name: table });
      await client.query(`DECLARE dump NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM ${ident(table)} t`);
      let rows = 0;
      for (;;) {
        const { rows: batch } = await client.query<{ j: string }>('FETCH 2000 FROM dump');
        if (!batch.length) break;
        rows += batch.length;
        await sink.data(Buffer.from(batch.map((r) => `${r.j}\n`).join(''), 'utf8'));
      }
      await client.query('CLOSE dump');
      await sink.end();
      tables.push({ name: table, rows });
    }
    const { rows: sequences } = await client.query<{ name: string; value: string | null }>(
      'SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1',
    );
    const auditHead = await auditLog.head(client);
    const { rows: n } = await client.query<{ n: string }>('SELECT count(*) AS n FROM certificates');
    await client.query('COMMIT');
    return { tables, sequences, auditHead, certificates: Number(n[0]!.n) };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

export async function assertEmptyDatabase(pool: Pool): Promise<void> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`,
  );
  if (rows[0]!.n > 0)
    throw new CaError('conflict', 'the target database is not empty: restore into a new, empty database', {
      rule: 'backup.databaseNotEmpty',
    });
}

export interface TableSource {
  name: string;
  /** The table's JSON lines, in chunks that may split lines anywhere. */
  chunks: AsyncIterable<Buffer>;
}

/**
 * Replaces the contents of every table with the tables `next()` yields (until it yields
 * undefined), in one transaction: foreign keys are dropped first and re-added (so checked)
 * at the end, user triggers (the audit log's append-only guard) are off meanwhile.
 * Returns the rows loaded per table.
 */
export async function loadTables(pool: Pool, next: () => Promise<TableSource | undefined>): Promise<Record<string, number>> {
  return withTransaction(pool, async (tx) => {
    await tx.query('SET LOCAL statement_timeout = 0');
    const tables = await userTables(tx);
    const { rows: fks } = await tx.query<{ table: string; name: string; def: string }>(
      `SELECT c.conrelid::regclass::text AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
       JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = current_schema() AND c.contype = 'f'`,
    );
    for (const fk of fks) await tx.query(`ALTER TABLE ${fk.table} DROP CONSTRAINT ${ident(fk.name)}`);
    for (const t of tables) await tx.query(`ALTER TABLE ${ident(t)} DISABLE TRIGGER USER`);
    await tx.query(`TRUNCATE ${tables.map(ident).join(', ')}`);
    const counts: Record<string, number> = {};
    for (let source = await next(); source; source = await next()) {
      const table = source.name;
      if (!tables.includes(table))
        throw new CaError('malformed', `the backup has table "${table}", which this schema does not`, { rule: 'backup.schema' });
      let rest = '';
      let batch: string[] = [];
      let n = 0;
      const flush = async () => {
        if (!batch.length) return;
        await tx.query(`INSERT INTO ${ident(table)} SELECT * FROM json_populate_recordset(NULL::${ident(table)}, $1::json)`, [
          `[${batch.join(',')}]`,
        ]);
        n += batch.length;
        batch = [];
      };
      for await (const chunk of source.chunks) {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          batch.push(line);
          if (batch.length >= 1000) await flush();
        }
      }
      if (rest) batch.push(rest);
      await flush();
      counts[table] = n;
    }
    for (const t of tables) await tx.query(`ALTER TABLE ${ident(t)} ENABLE TRIGGER USER`);
    for (const fk of fks) await tx.query(`ALTER TABLE ${fk.table} ADD CONSTRAINT ${ident(fk.name)} ${fk.def}`);
    return counts;
  });
}

export async function restoreSequences(pool: Pool, sequences: DumpSummary['sequences']): Promise<void> {
  for (const s of sequences) if (s.value !== null) await pool.query('SELECT setval($1::regclass, $2::bigint)', [ident(s.name), s.value]);
}
