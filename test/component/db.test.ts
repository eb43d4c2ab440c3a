/**
 * Database layer against the real (embedded) Postgres of the test run: migrations, the
 * one-certificate-per-request guarantee of insertPending, markIssued and status changes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'pg';
import { CaError } from '../../src/core/errors.ts';
import { freePort } from '../../src/core/net.ts';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { createPool, waitForDatabase, withTransaction } from '../../src/db/pool.ts';
import { audit, list as listAudit } from '../../src/db/repos/audit.ts';
import * as acmeOrders from '../../src/db/repos/acme-orders.ts';
import * as adminTokens from '../../src/db/repos/admin-tokens.ts';
import * as adminUsers from '../../src/db/repos/admin-users.ts';
import * as authFailures from '../../src/db/repos/auth-failures.ts';
import * as cas from '../../src/db/repos/cas.ts';
import * as certificates from '../../src/db/repos/certificates.ts';
import * as notifications from '../../src/db/repos/notifications.ts';
import * as requests from '../../src/db/repos/requests.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

const hex = (bytes = 20) => randomBytes(bytes).toString('hex');

const NOW = new Date();
const YEAR = 365 * 24 * 3600 * 1000;

function newCa(name: string, role: cas.CaRole = 'issuing', parent: string | null = null): cas.NewCa {
  return {
    name,
    role,
    parent,
    keyId: `key-${name}`,
    keyAlg: 'ec-p256',
    keyBackend: 'software',
    subject: `CN=${name}`,
    serial: hex(),
    notBefore: new Date(NOW.getTime() - 60_000),
    notAfter: new Date(NOW.getTime() + YEAR),
    certDer: new Uint8Array(randomBytes(64)),
  };
}

function pending(caName: string, requestId = `req-${hex(6)}`, serial = hex()): certificates.NewPendingCertificate {
  return {
    serial,
    requestId,
    protocol: 'operator',
    caName,
    caGeneration: 1,
    profile: 'tls-server',
    subject: 'CN=example.com',
    sans: ['dns:example.com', 'ip:127.0.0.1'],
    notBefore: new Date(NOW.getTime() - 60_000),
    notAfter: new Date(NOW.getTime() + 90 * 24 * 3600 * 1000),
    tbsDer: new Uint8Array(randomBytes(200)),
    csrDer: new Uint8Array(randomBytes(150)),
    requester: 'operator',
  };
}

async function rejectsWith(p: Promise<unknown>, kind: string, rule?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(CaError.is(e), `expected a CaError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    if (rule) assert.equal(e.rule, rule);
    return true;
  });
}

describe('migrations', () => {
  it('applies every migration once and is idempotent', async () => {
    const db = await testDatabase({ migrate: false });
    try {
      const first = await migrate(db.pool);
      assert.deepEqual(
        first.applied,
        loadMigrations().map((m) => m.name),
      );
      assert.ok(first.applied.includes('001_ca_core'));
      const second = await migrate(db.pool);
      assert.deepEqual(second.applied, []);
      const { rows } = await db.pool.query('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version');
      assert.equal(rows.length, first.applied.length);
      assert.equal(rows[0].version, 1);
      assert.match(rows[0].checksum, /^[0-9a-f]{64}$/);
      assert.ok(rows[0].applied_at instanceof Date);
    } finally {
      await db.drop();
    }
  });

  it('serializes concurrent migrations: all succeed, each migration is applied once', async () => {
    const [slow, second] = [nextMigrationName(0, 'slow'), nextMigrationName(1, 'second')];
    const dir = migrationsDirWith([
      // pg_sleep widens the window in which the other migrators wait on the lock.
      [`${slow}.sql`, 'SELECT pg_sleep(0.3); CREATE TABLE slow_one (id int PRIMARY KEY);'],
      [`${second}.sql`, 'CREATE TABLE slow_two (id int PRIMARY KEY); INSERT INTO slow_two VALUES (1);'],
    ]);
    const db = await testDatabase({ migrate: false });
    // Separate pools = separate sessions, as separate processes would have.
    const pools = [0, 1, 2].map(() => createPool(db.url, { max: 2 }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p, undefined, { dir })));
      const applied = results.flatMap((r) => r.applied).sort();
      assert.deepEqual(applied, [...loadMigrations().map((m) => m.name), slow, second].sort());
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM slow_two');
      assert.equal(rows[0].n, 1);
      const versions = await db.pool.query('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(
        versions.rows.map((r) => r.version),
        [...loadMigrations().map((m) => m.version), lastVersion() + 1, lastVersion() + 2],
      );
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to run when an applied migration file was changed', async () => {
    const sql = 'CREATE TABLE extra (\n  id int\n);\n';
    const file = `${nextMigrationName(0, 'extra')}.sql`;
    const dir = migrationsDirWith([[file, sql]]);
    const db = await testDatabase({ migrate: false });
    try {
      await migrate(db.pool, undefined, { dir });
      writeFileSync(join(dir, file), sql.replace('int', 'bigint'));
      await rejectsWith(migrate(db.pool, undefined, { dir }), 'config', 'migration.checksum');
      // A CRLF checkout of the same file is not a change.
      writeFileSync(join(dir, file), sql.replace(/\n/g, '\r\n'));
      assert.deepEqual((await migrate(db.pool, undefined, { dir })).applied, []);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects badly named migration files', () => {
    const dir = migrationsDirWith([['4_no name.sql', 'SELECT 1']]);
    try {
      assert.throws(() => loadMigrations(dir), /NNN_name\.sql/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function lastVersion(): number {
  return Math.max(...loadMigrations().map((m) => m.version));
}

/** Name of a test migration numbered after the real ones (which other work keeps adding). */
function nextMigrationName(offset: number, name: string): string {
  return `${String(lastVersion() + 1 + offset).padStart(3, '0')}_${name}`;
}

/** A temp copy of the real migrations plus `extra` files. */
function migrationsDirWith(extra: Array<[string, string]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'certflow-migrations-'));
  for (const m of loadMigrations()) writeFileSync(join(dir, `${m.name}.sql`), readFileSync(join(MIGRATIONS_DIR, `${m.name}.sql`)));
  for (const [name, sql] of extra) writeFileSync(join(dir, name), sql);
  return dir;
}

describe('repositories', () => {
  let db: TestDatabase;
  let pool: Pool;
  const root = newCa('test-root', 'root');
  const issuing = newCa('test-issuing', 'issuing', 'test-root');

  before(async () => {
    db = await testDatabase();
    pool = db.pool;
    assert.equal(await cas.insert(pool, root), true);
    assert.equal(await cas.insert(pool, issuing), true);
  });
  after(() => db?.drop());

  describe('cas', () => {
    it('inserts once and maps columns', async () => {
      assert.equal(await cas.insert(pool, { ...issuing, subject: 'CN=other' }), false);
      const row = await cas.get(pool, 'test-issuing');
      assert.ok(row);
      assert.equal(row.subject, 'CN=test-issuing');
      assert.equal(row.parent, 'test-root');
      assert.equal(row.keyId, 'key-test-issuing');
      assert.ok(Buffer.isBuffer(row.certDer));
      assert.deepEqual(new Uint8Array(row.certDer), issuing.certDer);
      assert.ok(row.notAfter instanceof Date && row.createdAt instanceof Date);
      assert.equal(await cas.get(pool, 'nope'), null);
    });

    it('lists roots first and finds the issuing CA', async () => {
      assert.deepEqual(
        (await cas.list(pool)).map((c) => c.name),
        ['test-root', 'test-issuing'],
      );
      assert.equal((await cas.getIssuing(pool))?.name, 'test-issuing');
      assert.equal((await cas.getIssuing(pool, 'test-issuing'))?.name, 'test-issuing');
      assert.equal(await cas.getIssuing(pool, 'test-root'), null);
    });
  });

  describe('certificates.insertPending', () => {
    it('stores the TBS in status signing with typed columns', async () => {
      const input = pending('test-issuing');
      const row = await certificates.insertPending(pool, input);
      assert.equal(row.serial, input.serial);
      assert.equal(row.status, 'signing');
      assert.equal(row.certDer, null);
      assert.equal(row.issuedAt, null);
      assert.deepEqual(row.sans, ['dns:example.com', 'ip:127.0.0.1']);
      assert.ok(Buffer.isBuffer(row.tbsDer) && Buffer.isBuffer(row.csrDer));
      assert.deepEqual(new Uint8Array(row.tbsDer), input.tbsDer);
      assert.ok(row.notBefore instanceof Date && row.createdAt instanceof Date);
      assert.deepEqual(await certificates.getByRequest(pool, input.requestId), row);
      assert.deepEqual(await certificates.get(pool, input.serial), row);
    });

    it('returns the stored row for a retried request instead of a second certificate', async () => {
      const first = await certificates.insertPending(pool, pending('test-issuing', 'req-retry'));
      const retry = await certificates.insertPending(pool, pending('test-issuing', 'req-retry'));
      assert.equal(retry.serial, first.serial);
      assert.deepEqual(retry.tbsDer, first.tbsDer);
      assert.equal(await countFor('req-retry'), 1);
    });

    it('creates one row for concurrent inserts of the same request', async () => {
      const inserts = Array.from({ length: 8 }, () => certificates.insertPending(pool, pending('test-issuing', 'req-race')));
      const rows = await Promise.all(inserts);
      assert.equal(new Set(rows.map((r) => r.serial)).size, 1);
      assert.equal(await countFor('req-race'), 1);
    });

    it('throws a distinguishable error when the serial belongs to another request', async () => {
      const first = await certificates.insertPending(pool, pending('test-issuing'));
      const clash = certificates.insertPending(pool, pending('test-issuing', 'req-clash', first.serial));
      await assert.rejects(clash, (e: unknown) => certificates.isSerialCollision(e) && CaError.is(e, 'conflict'));
      assert.equal(await certificates.getByRequest(pool, 'req-clash'), null);
      // The caller draws a new serial and succeeds.
      const ok = await certificates.insertPending(pool, pending('test-issuing', 'req-clash'));
      assert.notEqual(ok.serial, first.serial);
    });

    async function countFor(requestId: string): Promise<number> {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM certificates WHERE request_id = $1', [requestId]);
      return rows[0].n;
    }
  });

  describe('certificates.markIssued', () => {
    it('moves signing -> valid and is idempotent', async () => {
      const row = await certificates.insertPending(pool, pending('test-issuing'));
      const der = new Uint8Array(randomBytes(300));
      const issued = await certificates.markIssued(pool, row.serial, der);
      assert.equal(issued.status, 'valid');
      assert.deepEqual(new Uint8Array(issued.certDer!), der);
      assert.ok(issued.issuedAt instanceof Date);
      const again = await certificates.markIssued(pool, row.serial, der);
      assert.deepEqual(again, issued);
    });

    it('keeps the first stored certificate when another signature arrives later', async () => {
      const row = await certificates.insertPending(pool, pending('test-issuing'));
      const first = await certificates.markIssued(pool, row.serial, new Uint8Array(randomBytes(300)));
      const late = await certificates.markIssued(pool, row.serial, new Uint8Array(randomBytes(300)));
      assert.deepEqual(late.certDer, first.certDer);
      assert.deepEqual(late.issuedAt, first.issuedAt);
    });

    it('fails with notFound for an unknown serial', async () => {
      await rejectsWith(certificates.markIssued(pool, hex(), new Uint8Array([1])), 'notFound');
    });
  });

  describe('certificates status, list and counts', () => {
    it('revokes, holds and releases with the allowed transitions only', async () => {
      const signing = await certificates.insertPending(pool, pending('test-issuing'));
      await rejectsWith(certificates.setStatus(pool, signing.serial, 'revoked'), 'conflict', 'certificate.status');

      const a = await issue();
      const at = new Date('2030-01-02T03:04:05Z');
      const held = await certificates.setStatus(pool, a.serial, 'hold', { at });
      assert.equal(held.status, 'hold');
      assert.equal(held.revocationReason, 'certificateHold');
      assert.deepEqual(held.revokedAt, at);
      const released = await certificates.setStatus(pool, a.serial, 'valid');
      assert.equal(released.status, 'valid');
      assert.equal(released.revokedAt, null);
      assert.equal(released.revocationReason, null);

      const revoked = await certificates.setStatus(pool, a.serial, 'revoked', { reason: 'keyCompromise', at });
      assert.equal(revoked.status, 'revoked');
      assert.equal(revoked.revocationReason, 'keyCompromise');
      const again = await certificates.setStatus(pool, a.serial, 'revoked', { reason: 'superseded' });
      assert.equal(again.revocationReason, 'keyCompromise', 'a repeated revocation changes nothing');
      await rejectsWith(certificates.setStatus(pool, a.serial, 'valid'), 'conflict');
      await rejectsWith(certificates.setStatus(pool, a.serial, 'hold'), 'conflict');
      await rejectsWith(certificates.setStatus(pool, hex(), 'revoked'), 'notFound');
    });

    it('lists with filters and counts by status', async () => {
      const before = await certificates.countByStatus(pool);
      const a = await issue('tls-client');
      await certificates.setStatus(pool, a.serial, 'revoked', { reason: 'superseded' });
      const counts = await certificates.countByStatus(pool);
      assert.equal(counts.revoked, before.revoked + 1);
      assert.deepEqual(Object.keys(counts).sort(), ['hold', 'revoked', 'signing', 'valid']);

      const clientCerts = await certificates.list(pool, { profile: 'tls-client', status: 'revoked', caName: 'test-issuing' });
      assert.deepEqual(
        clientCerts.map((c) => c.serial),
        [a.serial],
      );
      const page = await certificates.list(pool, { limit: 2 });
      assert.equal(page.length, 2);
      assert.ok(page[0]!.createdAt >= page[1]!.createdAt, 'newest first');
      const next = await certificates.list(pool, { limit: 2, offset: 2 });
      assert.ok(next.every((c) => !page.some((p) => p.serial === c.serial)));
    });

    async function issue(profile = 'tls-server'): Promise<certificates.CertificateRow> {
      const row = await certificates.insertPending(pool, { ...pending('test-issuing'), profile });
      return certificates.markIssued(pool, row.serial, new Uint8Array(randomBytes(100)));
    }
  });

  describe('notifications.expiringCertificates', () => {
    it('leaves out a certificate renewed by a copy made after it, even one expiring at the same second', async () => {
      const name = `renewed-${hex(4)}.example.test`;
      const notAfter = new Date(Math.floor((Date.now() + 5 * 86_400_000) / 1000) * 1000);
      const issue = async (shift = 0) => {
        const row = await certificates.insertPending(pool, {
          ...pending('test-issuing'),
          subject: `CN=${name}`,
          sans: [`dns:${name}`],
          notAfter: new Date(notAfter.getTime() + shift),
        });
        await certificates.markIssued(pool, row.serial, new Uint8Array(randomBytes(300)));
        return row.serial;
      };
      const listed = async () =>
        (await notifications.expiringCertificates(pool, 30)).filter((c) => c.subject === `CN=${name}`).map((c) => c.serial);
      const first = await issue();
      assert.deepEqual(await listed(), [first]);
      const sameSecond = await issue();
      assert.deepEqual(await listed(), [sameSecond]);
      // One made later that expires earlier replaces nothing: the later expiry still does.
      await issue(-60_000);
      assert.deepEqual(await listed(), [sameSecond]);
    });
  });

  describe('issuance requests', () => {
    it('upserts projections, keeping the serial and the first identity', async () => {
      const base = {
        id: `r-${hex(6)}`,
        protocol: 'operator',
        workflowId: `wf-${hex(6)}`,
        profile: 'tls-server',
        csrDer: new Uint8Array([1, 2, 3]),
        requester: 'alice',
      };
      const created = await requests.upsert(pool, { ...base, state: 'pending' });
      assert.equal(created.state, 'pending');
      assert.equal(created.serial, null);
      const cert = await certificates.insertPending(pool, pending('test-issuing', base.id));
      const issued = await requests.upsert(pool, { ...base, state: 'issued', serial: cert.serial });
      assert.equal(issued.serial, cert.serial);
      assert.ok(issued.updatedAt >= created.updatedAt);
      const failed = await requests.setState(pool, base.id, 'failed', { error: 'boom' });
      assert.equal(failed.serial, cert.serial, 'a projection without a serial keeps it');
      assert.equal(failed.error, 'boom');
      const got = await requests.get(pool, base.id);
      assert.ok(got);
      assert.deepEqual(new Uint8Array(got.csrDer), base.csrDer);
      assert.ok((await requests.list(pool, { state: 'failed' })).some((r) => r.id === base.id));
      assert.ok(!(await requests.list(pool, { state: 'pending' })).some((r) => r.id === base.id));
      await rejectsWith(requests.setState(pool, 'missing', 'failed'), 'notFound');
      assert.equal(await requests.get(pool, 'missing'), null);
    });
  });

  describe('audit and transactions', () => {
    it('appends audit entries', async () => {
      await audit(pool, { actor: 'operator', action: 'cert.revoke', object: 'abc', details: { reason: 'keyCompromise' } });
      const [entry] = await listAudit(pool, { object: 'abc' });
      assert.ok(entry);
      assert.equal(entry.action, 'cert.revoke');
      assert.deepEqual(entry.details, { reason: 'keyCompromise' });
      assert.ok(entry.at instanceof Date && typeof entry.id === 'number');
    });

    it('rolls back a failed transaction, audit entry included', async () => {
      await assert.rejects(
        withTransaction(pool, async (client) => {
          await audit(client, { actor: 'test', action: 'tx.rollback', object: 'tx-1' });
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.deepEqual(await listAudit(pool, { object: 'tx-1' }), []);
      const n = await withTransaction(pool, async (client) => {
        await audit(client, { actor: 'test', action: 'tx.commit', object: 'tx-2' });
        return 42;
      });
      assert.equal(n, 42);
      assert.equal((await listAudit(pool, { object: 'tx-2' })).length, 1);
    });

    it('looks up the role of console users and tokens, and runs the hot statements on cached plans', async () => {
      await adminUsers.insert(pool, { name: 'plan-officer', role: 'officer', passwordHash: null, createdBy: 'test' });
      await adminTokens.insert(pool, {
        id: 'plan-token',
        name: 'plans',
        role: 'auditor',
        owner: 'plan-officer',
        secretHash: hex(),
        createdBy: 'test',
        expiresAt: new Date(NOW.getTime() + YEAR),
      });
      const client = await pool.connect();
      try {
        // Postgres tries a prepared statement's plan for the given values 5 times, then keeps
        // its generic plan unless a plan for the values looks cheaper: a statement that
        // branches on a parameter is planned again at every execution.
        for (let i = 0; i < 8; i++) {
          await audit(client, { actor: 'system', action: 'plan.test', object: `plan-${i}` });
          await audit(client, { actor: 'system', action: 'plan.test', object: `plan-${i}`, key: `plan-${i}-${hex(4)}` });
          await audit(client, { actor: 'user:plan-officer', role: null, action: 'plan.test', object: `plan-${i}` });
          await audit(client, { actor: 'token:plan-token', action: 'plan.test', object: `plan-${i}` });
          await audit(client, { actor: 'user:nobody', action: 'plan.test', object: `plan-${i}` });
          await cas.get(client, 'test-issuing');
          await cas.getIssuing(client, 'test-issuing');
          await acmeOrders.getAuthz(client, `no-such-authz-${i}`);
          const rule = { maxFailures: 100, windowSeconds: 60, lockSeconds: 60 };
          assert.equal((await authFailures.attempt(client, 'plan-test', rule)).allowed, true);
          await authFailures.settle(client, 'plan-test', true, rule);
        }
        const { rows } = await client.query<{ statement: string; generic_plans: string; custom_plans: string }>(
          'SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements',
        );
        const ran = rows.filter((r) => Number(r.generic_plans) + Number(r.custom_plans) >= 8);
        for (const r of ran) assert.ok(Number(r.custom_plans) <= 5, `planned anew at every execution:\n${r.statement}`);
        assert.ok(ran.length >= 7, `the statements were prepared: ${ran.length}`);
        for (const text of ['INSERT INTO audit_log', 'FROM cas c', 'WHERE a.id = $1', 'certflow_auth_attempt', 'certflow_auth_settle'])
          assert.ok(
            ran.some((r) => r.statement.includes(text)),
            `a prepared statement with ${text}`,
          );
      } finally {
        client.release();
      }
      const roles = new Map((await listAudit(pool, { action: 'plan.test' })).map((e) => [e.actor, e.role]));
      assert.deepEqual(Object.fromEntries(roles), {
        system: 'system',
        'user:plan-officer': 'officer',
        'token:plan-token': 'auditor',
        'user:nobody': null,
      });
    });
  });
});

describe('waitForDatabase', () => {
  it('names host:port when nothing answers', async () => {
    const port = await freePort();
    const url = `postgres://u:secret@127.0.0.1:${port}/x`;
    await assert.rejects(waitForDatabase(url, 600), (e: unknown) => {
      assert.ok(CaError.is(e, 'unavailable'));
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
  });

  it('fails at once on a wrong password', async () => {
    const db = await testDatabase({ migrate: false });
    try {
      const url = new URL(db.url);
      url.password = 'wrong';
      const started = Date.now();
      await rejectsWith(waitForDatabase(url.toString(), 10_000), 'config');
      assert.ok(Date.now() - started < 5000);
    } finally {
      await db.drop();
    }
  });
});
