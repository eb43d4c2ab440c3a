/**
 * ACME replay nonces (src/acme/nonce.ts, repos/acme-nonces.ts): handed out without a
 * database write, HMAC-authenticated with a key every process shares, single use also
 * under concurrency, across two connection pools (two server processes) and across a
 * restart (a new store on the same database), refused when forged or expired, and the
 * bounded cleanup of used-nonce rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'pg';
import { CLOCK_SKEW_MS, NonceStore } from '../../src/acme/nonce.ts';
import { createPool } from '../../src/db/pool.ts';
import * as nonces from '../../src/db/repos/acme-nonces.ts';
import { secretsKeyOf } from '../../src/core/secrets.ts';
import { randomBytes } from 'node:crypto';

/** The secrets key every store of a "server" shares (in production: keys/cmp-secrets.key). */
const key = secretsKeyOf(randomBytes(32));
const secretsKey = async () => key;
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

  /** Counts the statements a store sends (by wrapping the pool's query). */
  function counting(pool: Pool): { db: Pool; writes: () => number } {
    let writes = 0;
    const db = new Proxy(pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return (text: string, values?: unknown[]) => {
          if (!/^\s*SELECT/i.test(text)) writes++;
          return target.query(text, values);
        };
      },
    });
    return { db, writes: () => writes };
  }

  it('is 43 base64url characters, unique, accepted exactly once, and issuing writes nothing', async () => {
    await new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 }).issue(); // the key exists
    const c = counting(db.pool);
    const store = new NonceStore(c.db, { secretsKey, lifetimeSeconds: 60 });
    const issued = await Promise.all(Array.from({ length: 50 }, () => store.issue()));
    for (const n of issued) assert.match(n, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(new Set(issued).size, 50);
    assert.equal(c.writes(), 0, 'no database write to hand out nonces');
    assert.equal(await store.consume(issued[0]!), true);
    assert.equal(await store.consume(issued[0]!), false);
    assert.equal(c.writes(), 2, 'one INSERT per use');
  });

  it('forged, garbled, unknown-key and malformed values are refused without a write', async () => {
    const store = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 });
    const good = await store.issue();
    const raw = Buffer.from(good, 'base64url');
    const flip = (i: number) => {
      const b = Buffer.from(raw);
      b[i]! ^= 1;
      return b.toString('base64url');
    };
    const before = await nonces.countUsed(db.pool);
    for (const bad of [flip(0), flip(3), flip(10), flip(20), flip(31), 'A'.repeat(43), '', "x' OR 1=1 --", 'a'.repeat(4096)]) {
      assert.equal(await store.consume(bad), false, bad);
    }
    assert.equal(await nonces.countUsed(db.pool), before);
    assert.equal(await store.consume(good), true);
  });

  it('two pools (two server processes): issued by one, used once through the other', async () => {
    const a = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 });
    const b = new NonceStore(second, { secretsKey, lifetimeSeconds: 60 });
    const n = await a.issue();
    assert.equal(await b.consume(n), true);
    assert.equal(await a.consume(n), false);
    assert.equal(await b.consume(n), false);
  });

  it('a restart (a new store, same database) keeps the key and the used set', async () => {
    const n = await new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 }).issue();
    const m = await new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 }).issue();
    const restarted = new NonceStore(second, { secretsKey, lifetimeSeconds: 60 });
    assert.equal(await restarted.consume(n), true);
    assert.equal(await new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 }).consume(n), false);
    assert.equal(await new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 }).consume(m), true);
  });

  it('concurrent uses of one nonce through both pools: exactly one succeeds', async () => {
    const a = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 });
    const b = new NonceStore(second, { secretsKey, lifetimeSeconds: 60 });
    for (let round = 0; round < 5; round++) {
      const n = await a.issue();
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).consume(n)));
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
    }
  });

  it('an expired nonce, or one from too far in the future, is refused', async () => {
    let now = Date.now();
    const store = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 10, now: () => now });
    const n = await store.issue();
    now += 10_001;
    assert.equal(await store.consume(n), false);
    const future = await store.issue();
    now -= CLOCK_SKEW_MS + 20_000;
    assert.equal(await store.consume(future), false);
  });

  it('cleanup deletes only rows of nonces that can no longer be accepted, in bounded batches', async () => {
    await db.pool.query('DELETE FROM acme_used_nonces');
    let now = Date.now() - 3600_000;
    const old = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 1, now: () => now });
    for (let i = 0; i < 5; i++) assert.equal(await old.consume(await old.issue()), true);
    now = Date.now();
    const store = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60 });
    assert.equal(await store.consume(await store.issue()), true);
    assert.equal(await store.cleanup(2), 2);
    assert.equal(await store.cleanup(), 3);
    assert.equal(await nonces.countUsed(db.pool), 1);
  });

  it('every Nth use cleans up in the background', async () => {
    await db.pool.query('DELETE FROM acme_used_nonces');
    let now = Date.now() - 3600_000;
    const old = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 1, now: () => now });
    for (let i = 0; i < 3; i++) await old.consume(await old.issue());
    now = Date.now();
    const store = new NonceStore(db.pool, { secretsKey, lifetimeSeconds: 60, cleanupEvery: 4 });
    for (let i = 0; i < 3; i++) await store.consume(await store.issue());
    assert.equal(await nonces.countUsed(db.pool), 6, 'no cleanup before the 4th use');
    await store.consume(await store.issue());
    for (let i = 0; i < 50 && (await nonces.countUsed(db.pool)) !== 4; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await nonces.countUsed(db.pool), 4, 'the expired ones are gone, the 4 live ones stay');
  });
});
