/**
 * The per-process ACME account cache (src/acme/account-cache.ts): a hit costs no query;
 * an account changed by another server process (key change, deactivation: the repository
 * sends NOTIFY in its transaction) is evicted in this one; without the LISTEN connection
 * nothing is cached.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'pg';
import { AccountCache } from '../../src/acme/account-cache.ts';
import { createPool, withTransaction } from '../../src/db/pool.ts';
import * as accounts from '../../src/db/repos/acme-accounts.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

const quiet = { warn: () => {}, info: () => {} };

describe('ACME account cache', () => {
  let db: TestDatabase;
  let other: Pool; // "another server process"
  let cache: AccountCache;
  let queries = 0;

  before(async () => {
    db = await testDatabase();
    other = createPool(db.url);
    const counted = new Proxy(db.pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return (...args: Parameters<Pool['query']>) => {
          queries++;
          return (target.query as (...a: unknown[]) => unknown)(...args);
        };
      },
    });
    cache = new AccountCache(counted, { url: db.url, log: quiet });
    await accounts.insert(db.pool, {
      id: 'acct-1',
      alias: '',
      jwk: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' },
      thumbprint: 't1',
      contact: [],
      tosAgreed: null,
      eabKid: null,
    });
  });
  after(async () => {
    await cache?.close();
    await other?.end();
    await db?.drop();
  });

  /** Waits until the LISTEN connection is up (the first look-ups read Postgres until then). */
  async function warm(id: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await cache.get(id);
      const before = queries;
      await cache.get(id);
      if (queries === before) return;
      await sleep(20);
    }
    assert.fail('the cache never served a hit');
  }

  /** Polls the cache until `seen` holds for the account (the NOTIFY arrives moments after the commit). */
  async function eventuallyCached(id: string, seen: (a: Awaited<ReturnType<AccountCache['get']>>) => boolean): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (seen(await cache.get(id))) return;
      await sleep(20);
    }
    assert.fail(`the cache kept serving the old account ${id}`);
  }

  it('serves repeated look-ups from memory', async () => {
    await warm('acct-1');
    const before = queries;
    for (let i = 0; i < 10; i++) assert.equal((await cache.get('acct-1'))?.thumbprint, 't1');
    assert.equal(queries, before);
  });

  it('a key change committed by another process evicts the account here', async () => {
    await warm('acct-1');
    await withTransaction(other, (tx) =>
      accounts.changeKey(tx, { id: 'acct-1', oldThumbprint: 't1', jwk: { kty: 'EC', crv: 'P-256', x: 'c', y: 'd' }, thumbprint: 't2' }),
    );
    await eventuallyCached('acct-1', (a) => a?.thumbprint === 't2');
  });

  it('a deactivation committed by another process evicts the account here', async () => {
    await warm('acct-1');
    await withTransaction(other, (tx) => accounts.update(tx, 'acct-1', { status: 'deactivated' }));
    await eventuallyCached('acct-1', (a) => a?.status === 'deactivated');
  });

  it('unknown accounts are not cached', async () => {
    assert.equal(await cache.get('nobody'), null);
    await accounts.insert(db.pool, {
      id: 'nobody',
      alias: '',
      jwk: { kty: 'EC', crv: 'P-256', x: 'e', y: 'f' },
      thumbprint: 't3',
      contact: [],
      tosAgreed: null,
      eabKid: null,
    });
    assert.equal((await cache.get('nobody'))?.thumbprint, 't3');
  });
});
