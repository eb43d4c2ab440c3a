/**
 * ACME replay nonces in Postgres (src/acme/nonce.ts, repos/acme-nonces.ts): single use,
 * also under concurrency and across two connection pools (two server processes), expiry
 * by the database's clock, and the bounded cleanup of expired rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'pg';
import { NonceStore } from '../../src/acme/nonce.ts';
import { createPool } from '../../src/db/pool.ts';
import * as nonces from '../../src/db/repos/acme-nonces.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

describe('ACME nonces', () => {
  let db: TestDatabase;
  let second: Pool;

  before(async () => {
    db = await testDatabase();
    second = createPool(db.url);
  });
  after(async () => {
    await second?.end();
    await db?.drop();
  });

  it('a nonce is 128 random bits in base64url and is accepted exactly once', async () => {
    const store = new NonceStore(db.pool, { lifetimeSeconds: 60 });
    const n = await store.issue();
    assert.match(n, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(await store.issue(), n);
    assert.equal(await store.consume(n), true);
    assert.equal(await store.consume(n), false);
  });

  it('unknown and malformed values are refused (the latter without a query)', async () => {
    const store = new NonceStore(db.pool, { lifetimeSeconds: 60 });
    assert.equal(await store.consume('AAAAAAAAAAAAAAAAAAAAAA'), false);
    assert.equal(await store.consume(''), false);
    assert.equal(await store.consume("x' OR 1=1 --"), false);
    assert.equal(await store.consume('a'.repeat(4096)), false);
  });

  it('two pools (two server processes): issued by one, used once through the other', async () => {
    const a = new NonceStore(db.pool, { lifetimeSeconds: 60 });
    const b = new NonceStore(second, { lifetimeSeconds: 60 });
    const n = await a.issue();
    assert.equal(await b.consume(n), true);
    assert.equal(await a.consume(n), false);
    assert.equal(await b.consume(n), false);
  });

  it('concurrent uses of one nonce through both pools: exactly one succeeds', async () => {
    const a = new NonceStore(db.pool, { lifetimeSeconds: 60 });
    const b = new NonceStore(second, { lifetimeSeconds: 60 });
    for (let round = 0; round < 5; round++) {
      const n = await a.issue();
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).consume(n)));
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
    }
  });

  it('an expired nonce is refused', async () => {
    const store = new NonceStore(db.pool, { lifetimeSeconds: 1 });
    const n = await store.issue();
    await sleep(1200);
    assert.equal(await store.consume(n), false);
    // Already expired when stored (the database's clock decides).
    await nonces.insert(db.pool, 'BBBBBBBBBBBBBBBBBBBBBB', -1);
    assert.equal(await store.consume('BBBBBBBBBBBBBBBBBBBBBB'), false);
  });

  it('cleanup deletes expired nonces only, in bounded batches', async () => {
    await db.pool.query('DELETE FROM acme_nonces');
    for (let i = 0; i < 5; i++) await nonces.insert(db.pool, `expired${String(i).padStart(15, '0')}`, -10);
    const store = new NonceStore(db.pool, { lifetimeSeconds: 60 });
    const live = await store.issue();
    assert.equal(await store.cleanup(2), 2);
    assert.equal(await store.cleanup(), 3);
    assert.equal(await nonces.count(db.pool), 1);
    assert.equal(await store.consume(live), true);
  });

  it('every Nth issue cleans up in the background', async () => {
    await db.pool.query('DELETE FROM acme_nonces');
    for (let i = 0; i < 3; i++) await nonces.insert(db.pool, `old${String(i).padStart(19, '0')}`, -10);
    const store = new NonceStore(db.pool, { lifetimeSeconds: 60, cleanupEvery: 4 });
    for (let i = 0; i < 3; i++) await store.issue();
    assert.equal(await nonces.count(db.pool), 6, 'no cleanup before the 4th issue');
    await store.issue();
    for (let i = 0; i < 50 && (await nonces.count(db.pool)) !== 4; i++) await sleep(20);
    assert.equal(await nonces.count(db.pool), 4, 'the expired ones are gone, the 4 live ones stay');
  });
});
