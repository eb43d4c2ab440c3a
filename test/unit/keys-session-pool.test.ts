import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { SessionPool } from '../../src/keys/session-pool.ts';

interface Res {
  n: number;
  busy: boolean;
  destroyed: boolean;
}

function makePool(size: number, failCreate: () => boolean = () => false) {
  const created: Res[] = [];
  const pool = new SessionPool<Res>({
    size,
    create: () => {
      if (failCreate()) throw new Error('device gone');
      const r = { n: created.length, busy: false, destroyed: false };
      created.push(r);
      return r;
    },
    destroy: (r) => {
      r.destroyed = true;
    },
    closedError: () => new Error('closed'),
  });
  return { pool, created };
}

/** Borrows a resource like the key store does, asserting exclusive use. */
async function use(pool: SessionPool<Res>, ms: number, track: { active: number; max: number }): Promise<number> {
  const r = await pool.acquire();
  assert.equal(r.busy, false, `resource ${r.n} lent twice`);
  assert.equal(r.destroyed, false);
  r.busy = true;
  track.active++;
  track.max = Math.max(track.max, track.active);
  await sleep(ms);
  r.busy = false;
  track.active--;
  pool.release(r);
  return r.n;
}

test('never lends a resource to two callers at once; uses all of them', async () => {
  const { pool, created } = makePool(3);
  pool.fill();
  const track = { active: 0, max: 0 };
  await Promise.all(Array.from({ length: 200 }, (_, i) => use(pool, i % 5, track)));
  assert.equal(track.max, 3);
  assert.equal(created.length, 3);
});

test('waiters are served first come, first served', async () => {
  const { pool } = makePool(1);
  const first = await pool.acquire();
  const order: number[] = [];
  const waiting = [1, 2, 3].map((i) => pool.acquire().then((r) => (order.push(i), pool.release(r))));
  await sleep(1);
  pool.release(first);
  await Promise.all(waiting);
  assert.deepEqual(order, [1, 2, 3]);
});

test('discard() destroys the resource and a waiter opens a replacement', async () => {
  const { pool, created } = makePool(1);
  const r = await pool.acquire();
  const waiter = pool.acquire();
  pool.discard(r);
  assert.equal(r.destroyed, true);
  const replacement = await waiter;
  assert.notEqual(replacement, r);
  assert.equal(created.length, 2);
  pool.release(replacement);
});

test('sweepIdle() drops dead idle resources; acquire() replaces them lazily', async () => {
  const { pool, created } = makePool(3);
  pool.fill();
  assert.equal(
    pool.sweepIdle((r) => r.n === 0),
    2,
  );
  const got = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
  assert.deepEqual(got.map((r) => r.n).sort(), [0, 3, 4]);
  assert.equal(created.filter((r) => !r.destroyed).length, 3);
});

test('a failing create() reaches the caller and does not use up a slot', async () => {
  let fail = true;
  const { pool } = makePool(1, () => fail);
  await assert.rejects(pool.acquire(), /device gone/);
  fail = false;
  const r = await pool.acquire();
  assert.equal(r.n, 0);
});

test('close() rejects waiters, waits for lent resources, then hands over the idle ones', async () => {
  const { pool } = makePool(2);
  pool.fill();
  const a = await pool.acquire();
  const b = await pool.acquire();
  const waiter = pool.acquire();
  let finished: Res[] | undefined;
  const closing = pool.close((idle) => (finished = idle));
  await assert.rejects(waiter, /closed/);
  await sleep(1);
  assert.equal(finished, undefined, 'waits while resources are lent out');
  pool.release(a);
  pool.discard(b);
  await closing;
  assert.deepEqual(finished, [a]);
  await assert.rejects(pool.acquire(), /closed/);
});
