/**
 * A database that cannot be reached fails requests as CaError 'unavailable' (503 with
 * Retry-After, a retried activity), never as an internal error: nothing listening, a
 * connection the server terminated under a pooled client, the same inside a transaction.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { CaError } from '../../src/core/errors.ts';
import { freePort } from '../../src/core/net.ts';
import { createPool, isDatabaseUnavailable, withTransaction } from '../../src/db/pool.ts';
import { testDatabase, testDatabaseAdminUrl, type TestDatabase } from '../helpers/stack.ts';

const isUnavailable = (e: unknown) => CaError.is(e, 'unavailable') && /the database is unavailable/.test((e as Error).message);

describe('database unavailable', () => {
  let db: TestDatabase;
  before(async () => {
    db = await testDatabase({ migrate: false });
  });
  after(() => db?.drop());

  async function terminate(pid: number): Promise<void> {
    const admin = new pg.Client({ connectionString: testDatabaseAdminUrl() });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.end();
    }
  }

  it('no server on the port: pool.query and pool.connect fail as unavailable', async () => {
    const pool = createPool(`postgres://nobody:x@127.0.0.1:${await freePort()}/none`, { connectionTimeoutMs: 2000 });
    try {
      await assert.rejects(pool.query('SELECT 1'), isUnavailable);
      await assert.rejects(pool.connect(), isUnavailable);
    } finally {
      await pool.end();
    }
  });

  it('a backend terminated under a checked-out client (and in a transaction) fails as unavailable', async () => {
    const pool = createPool(db.url, { max: 2 });
    try {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(rows[0]!.pid);
      await assert.rejects(client.query('SELECT 1'), isUnavailable);
      client.release(true);
      await assert.rejects(
        withTransaction(pool, async (tx) => {
          const r = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await terminate(r.rows[0]!.pid);
          await tx.query('SELECT 1');
        }),
        isUnavailable,
      );
      // The pool recovers by itself once the server answers again.
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await pool.end();
    }
  });

  it('other errors pass through unchanged', async () => {
    const pool = createPool(db.url, { max: 1 });
    try {
      await assert.rejects(
        pool.query('SELECT * FROM no_such_table'),
        (e: Error & { code?: string }) => e.code === '42P01' && !CaError.is(e),
      );
      assert.equal(isDatabaseUnavailable(new Error('syntax error')), false);
    } finally {
      await pool.end();
    }
  });
});
