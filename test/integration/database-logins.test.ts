/**
 * `certflow migrate --create-runtime-login` (what docker-compose.yml's `migrate` job runs):
 * with the owner login (CERTFLOW_DATABASE_OWNER_URL) it creates the runtime login named by
 * DATABASE_URL, migrates and grants it its privileges; the runtime login then owns nothing,
 * is no superuser, works for certflow and cannot cut the audit log. Run again, it keeps the
 * login and takes a new password from DATABASE_URL. A DATABASE_URL with the owner's login
 * is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runtimeLoginProblems } from '../../src/db/roles.ts';
import { certflowBin, runTool, type CliResult } from '../helpers/certflow.ts';
import { testDatabase, testDatabaseAdminUrl, type TestDatabase } from '../helpers/stack.ts';

describe('certflow migrate --create-runtime-login', () => {
  let db: TestDatabase;
  let home: string;
  const login = `certflow_rt_${randomBytes(4).toString('hex')}`;

  /** The database's URL as `login` with `password`. */
  const runtimeUrl = (password: string, user = login) => {
    const url = new URL(db.url);
    url.username = user;
    url.password = password;
    return url.toString();
  };

  const migrate = (databaseUrl: string): Promise<CliResult> =>
    runTool(process.execPath, [certflowBin, 'migrate', '--create-runtime-login'], {
      env: { ...process.env, CERTFLOW_HOME: home, DATABASE_URL: databaseUrl, CERTFLOW_DATABASE_OWNER_URL: db.url },
    });

  async function asRuntime<T>(password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: runtimeUrl(password) });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  before(async () => {
    db = await testDatabase({ migrate: false });
    home = await mkdtemp(join(tmpdir(), 'certflow-db-logins-'));
  });
  after(async () => {
    await db?.drop();
    const admin = new pg.Client({ connectionString: testDatabaseAdminUrl() });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(login)}`).finally(() => admin.end());
    await rm(home, { recursive: true, force: true });
  });

  it('creates the runtime login, migrates as the owner and grants the runtime login only its privileges', async () => {
    const r = await migrate(runtimeUrl('first password'));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`runtime login "${login}" is in place`));
    assert.match(r.stdout + r.stderr, /applied .*060_notifications/);

    const role = await db.pool.query('SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = $1', [login]);
    assert.deepEqual(role.rows[0], { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolcanlogin: true });
    const owned = await db.pool.query(
      "SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = $1",
      [login],
    );
    assert.equal(owned.rows[0].n, 0, 'the runtime login owns no table');

    await asRuntime('first password', async (c) => {
      assert.deepEqual(await runtimeLoginProblems(c), [], 'certflow finds the runtime login separated from the owner');
      assert.ok((await c.query('SELECT count(*) FROM schema_migrations')).rows.length, 'it reads what certflow reads');
      await assert.rejects(c.query('TRUNCATE audit_log'), (e: { code?: string }) => e.code === '42501', 'TRUNCATE is refused');
      await assert.rejects(c.query('ALTER TABLE audit_log DISABLE TRIGGER ALL'), (e: { code?: string }) => e.code === '42501');
    });

    // A certflow command as the runtime login alone (no owner URL), as every compose service runs.
    const ca = await runTool(process.execPath, [certflowBin, '--json', 'ca', 'list'], {
      env: { ...process.env, CERTFLOW_HOME: home, DATABASE_URL: runtimeUrl('first password'), CERTFLOW_DATABASE_OWNER_URL: '' },
    });
    assert.equal(ca.code, 0, ca.stdout + ca.stderr);
    assert.deepEqual(JSON.parse(ca.stdout), []);
    assert.doesNotMatch(ca.stderr, /not separated from the owner/);
  });

  it('run again, keeps the login and sets the password DATABASE_URL names', async () => {
    const r = await migrate(runtimeUrl('second password'));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /database is up to date/);
    await asRuntime('second password', async (c) => assert.equal((await c.query('SELECT current_user AS u')).rows[0].u, login));
    await assert.rejects(
      asRuntime('first password', async () => {}),
      /password authentication failed/,
    );
  });

  it("refuses a DATABASE_URL with the owner's own login", async () => {
    const owner = new URL(db.url);
    const r = await migrate(runtimeUrl(decodeURIComponent(owner.password) || 'x', decodeURIComponent(owner.username)));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the runtime login must be another one/);
  });
});
