/**
 * The hash-chained audit log (src/db/repos/audit.ts, migration 020) against the test run's
 * Postgres: appends from many connections at once stay one gap-free chain, keyed entries
 * are written once, rolled-back entries leave no trace, the triggers refuse UPDATE / DELETE
 * / TRUNCATE, and every kind of tampering that gets past them (as a superuser disabling the
 * triggers) is found and named by verifyChain — including a wholesale rewrite, through the
 * signed checkpoints.
 */
import assert from 'node:assert/strict';
import { createHash, sign } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'pg';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { withTransaction } from '../../src/db/pool.ts';
import * as auditLog from '../../src/db/repos/audit.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

const { audit } = auditLog;

/** Runs SQL with the append-only triggers off, as an attacker with owner rights could. */
async function tamper(pool: Pool, sql: string, values: unknown[] = []): Promise<void> {
  await withTransaction(pool, async (tx) => {
    await tx.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
    await tx.query(sql, values);
    await tx.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
  });
}

async function freshDb(): Promise<TestDatabase> {
  return testDatabase();
}

describe('audit chain', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDb();
  });
  after(async () => db?.drop());

  it('appends entries with consecutive sequence numbers and verifies', async () => {
    await audit(db.pool, {
      actor: 'operator',
      action: 'cert.revoke',
      object: 'abc',
      details: { reason: 'keyCompromise', n: 1.5, nested: { b: [1, 'x'], a: null } },
    });
    await audit(db.pool, { actor: 'user:alice', role: 'officer', action: 'cert.hold', object: 'def', result: 'ok', requestId: 'req-1' });
    await audit(db.pool, {
      actor: 'est:factory-7',
      action: 'request.reject',
      object: 'r1',
      result: 'failed',
      details: { text: 'ünïcødé ✓ 🎉' },
    });
    const rows = await auditLog.list(db.pool);
    assert.deepEqual(
      rows.map((r) => r.seq),
      [3, 2, 1],
    );
    assert.equal(rows[2]!.prevHash, auditLog.GENESIS_HASH);
    assert.equal(rows[1]!.prevHash, rows[2]!.hash);
    assert.equal(rows[2]!.role, 'cli', 'role derived from the actor');
    assert.equal(rows[0]!.role, 'client');
    assert.equal(rows[1]!.role, 'officer');
    assert.equal(rows[1]!.requestId, 'req-1');
    const v = await auditLog.verifyChain(db.pool);
    assert.equal(v.ok, true, v.problems.join('\n'));
    assert.equal(v.entries, 3);
    assert.deepEqual(v.head, { seq: 3, hash: rows[0]!.hash });
  });

  it('filters by actor / action prefix, target and time', async () => {
    assert.equal((await auditLog.list(db.pool, { actor: 'user:' })).length, 1);
    assert.equal((await auditLog.list(db.pool, { action: 'cert.' })).length, 2);
    assert.equal((await auditLog.list(db.pool, { action: 'cert' })).length, 0, 'no prefix without the dot');
    assert.equal((await auditLog.list(db.pool, { object: 'abc' })).length, 1);
    assert.equal(await auditLog.count(db.pool, { result: 'failed' }), 1);
    assert.equal((await auditLog.list(db.pool, { from: new Date(Date.now() + 60_000) })).length, 0);
    assert.equal((await auditLog.list(db.pool, { actor: 'us%' })).length, 0, 'LIKE wildcards are literal');
  });

  it('writes a keyed entry once, however often it is retried', async () => {
    const key = 'cert.issue:feedface';
    assert.equal(await audit(db.pool, { actor: 'worker', action: 'cert.issue', object: 'feedface', key }), true);
    assert.equal(await audit(db.pool, { actor: 'worker', action: 'cert.issue', object: 'feedface', key }), false);
    const racing = await Promise.all(Array.from({ length: 6 }, () => audit(db.pool, { actor: 'worker', action: 'x.race', key: 'race-1' })));
    assert.equal(racing.filter(Boolean).length, 1);
    assert.equal((await auditLog.list(db.pool, { object: 'feedface' })).length, 1);
    assert.equal((await auditLog.verifyChain(db.pool)).ok, true);
  });

  it('stays one chain under concurrent appenders, and a rolled-back entry leaves no gap', async () => {
    const before = (await auditLog.head(db.pool)).seq;
    await Promise.all(Array.from({ length: 30 }, (_, i) => audit(db.pool, { actor: 'system', action: 'load.test', object: `o${i}` })));
    await assert.rejects(
      withTransaction(db.pool, async (tx) => {
        await audit(tx, { actor: 'system', action: 'tx.rollback' });
        throw new Error('abort');
      }),
      /abort/,
    );
    await withTransaction(db.pool, async (tx) => {
      await audit(tx, { actor: 'system', action: 'tx.commit', details: { i: 1 } });
      await audit(tx, { actor: 'system', action: 'tx.commit', details: { i: 2 } });
    });
    assert.equal((await auditLog.head(db.pool)).seq, before + 32);
    assert.equal((await auditLog.list(db.pool, { action: 'tx.rollback' })).length, 0);
    const v = await auditLog.verifyChain(db.pool, { batch: 7 });
    assert.equal(v.ok, true, v.problems.join('\n'));
    assert.equal(v.entries, before + 32);
  });

  it('refuses UPDATE, DELETE and TRUNCATE, and moving the head', async () => {
    await assert.rejects(db.pool.query("UPDATE audit_log SET actor = 'x' WHERE seq = 1"), /append-only/);
    await assert.rejects(db.pool.query('DELETE FROM audit_log WHERE seq = 1'), /append-only/);
    await assert.rejects(db.pool.query('TRUNCATE audit_log'), /append-only/);
    await assert.rejects(db.pool.query('UPDATE audit_head SET seq = seq - 1'), /only advances/);
    await assert.rejects(db.pool.query('DELETE FROM audit_head'), /only advances/);
  });
});

describe('audit chain tampering', () => {
  let db: TestDatabase;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  /** The pinned key: verifiers trust only it, never a key read from the database. */
  const publicKey = key.publicKey.export({ type: 'spki', format: 'pem' }) as string;

  async function checkpoint(pool: Pool): Promise<number> {
    const h = await auditLog.head(pool);
    const signedAt = new Date();
    const signature = sign('sha256', auditLog.checkpointMessage({ ...h, signedAt }), key.privateKey);
    await auditLog.insertCheckpoint(pool, { seq: h.seq, hash: h.hash, signedAt, keyId: 'test-audit', signAlg: 'ecdsa-sha256', signature });
    return h.seq;
  }

  before(async () => {
    db = await freshDb();
    await auditLog.insertAuditKey(db.pool, { keyId: 'test-audit', keyBackend: 'software', keyAlg: 'ec-p256', spki });
    for (let i = 1; i <= 10; i++)
      await audit(db.pool, { actor: 'user:alice', role: 'officer', action: 'cert.revoke', object: `s${i}`, details: { i } });
    await checkpoint(db.pool);
  });
  after(async () => db?.drop());

  it('verifies the signed checkpoint, also against a pinned key', async () => {
    const v = await auditLog.verifyChain(db.pool, { publicKey });
    assert.equal(v.ok, true, v.problems.join('\n'));
    assert.deepEqual(v.latestVerifiedCheckpoint?.seq, 10);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const pinned = await auditLog.verifyChain(db.pool, { publicKey: other });
    assert.equal(pinned.ok, false);
    assert.match(pinned.problems.join('\n'), /checkpoint #10, .*does not verify with the pinned audit key/);
    assert.match(pinned.problems.join('\n'), /audit key "test-audit" recorded in the database is not the pinned public key/);
    const unpinned = await auditLog.verifyChain(db.pool);
    assert.equal(unpinned.ok, false, 'without the pinned key no checkpoint counts, whatever audit_keys says');
    assert.match(unpinned.problems.join('\n'), /checkpoint #10, .*not checked \(no pinned audit key\)/);
  });

  it('names the entry whose content was UPDATEd', async () => {
    await tamper(db.pool, `UPDATE audit_log SET details = '{"i": 99}' WHERE seq = 4`);
    const v = await auditLog.verifyChain(db.pool, { publicKey });
    assert.equal(v.ok, false);
    assert.equal(v.firstBroken?.seq, 4);
    assert.match(v.firstBroken!.reason, /content changed/);
    await tamper(db.pool, `UPDATE audit_log SET details = '{"i": 4}' WHERE seq = 4`);
    assert.equal((await auditLog.verifyChain(db.pool, { publicKey })).ok, true, 'restoring the content restores the chain');
  });

  it('names the entry after one whose hashes were recomputed by hand', async () => {
    const [row] = await auditLog.list(db.pool, { object: 's6' });
    const detailsText = (await db.pool.query('SELECT details::text AS t FROM audit_log WHERE seq = 6')).rows[0].t as string;
    const content = createHash('sha256')
      .update(auditLog.canonicalContent({ ...row!, actor: 'user:mallory', detailsText }))
      .digest('hex');
    await tamper(db.pool, `UPDATE audit_log SET actor = 'user:mallory', content_hash = $1, hash = $2 WHERE seq = 6`, [
      content,
      auditLog.chainHash(row!.prevHash, content),
    ]);
    const v = await auditLog.verifyChain(db.pool, { publicKey });
    assert.equal(v.firstBroken?.seq, 7);
    assert.match(v.firstBroken!.reason, /does not link/);
    await tamper(db.pool, `UPDATE audit_log SET actor = $1, content_hash = $2, hash = $3 WHERE seq = 6`, [
      row!.actor,
      row!.contentHash,
      row!.hash,
    ]);
  });

  it('names a DELETEd entry, in the middle and at the end', async () => {
    await tamper(db.pool, 'DELETE FROM audit_log WHERE seq = 3');
    let v = await auditLog.verifyChain(db.pool, { publicKey });
    assert.equal(v.ok, false);
    assert.equal(v.firstBroken?.seq, 3);
    assert.match(v.firstBroken!.reason, /missing \(deleted\)/);

    const second = await freshDb();
    try {
      for (let i = 0; i < 3; i++) await audit(second.pool, { actor: 'system', action: 'x', object: `${i}` });
      await tamper(second.pool, 'DELETE FROM audit_log WHERE seq = 3');
      v = await auditLog.verifyChain(second.pool, { publicKey });
      assert.equal(v.firstBroken?.seq, 3);
      assert.match(v.firstBroken!.reason, /chain head is at #3/);
    } finally {
      await second.drop();
    }
  });

  it('detects a wholesale rewrite through the signed checkpoint', async () => {
    const third = await freshDb();
    try {
      await auditLog.insertAuditKey(third.pool, { keyId: 'test-audit', keyBackend: 'software', keyAlg: 'ec-p256', spki });
      for (let i = 0; i < 5; i++) await audit(third.pool, { actor: 'system', action: 'x', object: `${i}` });
      await checkpoint(third.pool);
      // Rebuild the chain from scratch with one entry changed: every hash is consistent again.
      await withTransaction(third.pool, async (tx) => {
        await tx.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
        await tx.query('ALTER TABLE audit_head DISABLE TRIGGER USER');
        await tx.query("UPDATE audit_log SET object = 'rewritten' WHERE seq = 2");
        await tx.query(`DO $$ DECLARE r record; h text := repeat('0', 64); c text; BEGIN
          FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
            c := certflow_sha256_hex(certflow_audit_canonical(r.seq, r.at, r.actor, r.role, r.action, r.object, r.result, r.request_id, r.details));
            UPDATE audit_log SET prev_hash = h, content_hash = c, hash = certflow_sha256_hex(h || ':' || c) WHERE seq = r.seq RETURNING hash INTO h;
          END LOOP;
          UPDATE audit_head SET hash = h; END $$`);
        await tx.query('ALTER TABLE audit_head ENABLE TRIGGER USER');
        await tx.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
      });
      const v = await auditLog.verifyChain(third.pool, { publicKey });
      assert.equal(v.firstBroken, undefined, 'the chain itself is consistent');
      assert.equal(v.ok, false);
      assert.match(v.problems.join('\n'), /checkpoint #5, .*no longer has the hash that was signed/);
    } finally {
      await third.drop();
    }
  });
});

describe('audit migration', () => {
  it('chains the entries written before migration 020', async () => {
    const db = await testDatabase({ migrate: false });
    const early = mkdtempSync(join(tmpdir(), 'certflow-migrations-'));
    try {
      for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '020')) cpSync(join(MIGRATIONS_DIR, f), join(early, f));
      await migrate(db.pool, () => {}, { dir: early });
      for (let i = 0; i < 4; i++) {
        await db.pool.query(
          "INSERT INTO audit_log (actor, action, object, details, at) VALUES ('operator', 'old.entry', $1, $2, now() - interval '1 day' + $3 * interval '1 microsecond')",
          [`old-${i}`, JSON.stringify({ i, note: 'before the chain' }), i * 1234],
        );
      }
      await migrate(db.pool);
      const v = await auditLog.verifyChain(db.pool);
      assert.equal(v.ok, true, v.problems.join('\n'));
      assert.equal(v.entries, 4);
      await audit(db.pool, { actor: 'system', action: 'new.entry' });
      const rows = await auditLog.list(db.pool);
      assert.deepEqual(
        rows.map((r) => [r.seq, r.action]),
        [
          [5, 'new.entry'],
          [4, 'old.entry'],
          [3, 'old.entry'],
          [2, 'old.entry'],
          [1, 'old.entry'],
        ],
      );
      assert.equal((await auditLog.verifyChain(db.pool)).ok, true);
    } finally {
      rmSync(early, { recursive: true, force: true });
      await db.drop();
    }
  });
});
