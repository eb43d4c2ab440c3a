/**
 * EST client authentication against a real database: authenticateBasic and the est_clients
 * repository (the parts without a server: test/unit/est-auth.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CaError } from '../../src/core/errors.ts';
import * as estClients from '../../src/db/repos/est-clients.ts';
import { authenticateBasic } from '../../src/est/auth.ts';
import { hashPassword, verifiedPasswords } from '../../src/est/password.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

const basic = (userPass: string | Buffer) => `Basic ${Buffer.from(userPass).toString('base64')}`;

async function rejectsKind(p: Promise<unknown>, kind: string, message?: RegExp): Promise<CaError> {
  try {
    await p;
  } catch (e) {
    assert.ok(CaError.is(e), `expected a CaError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected a CaError of kind ${kind}`);
}

describe('est_clients repository and authenticateBasic', () => {
  let db: TestDatabase;
  const password = 'device one password';
  let hash: string;

  before(async () => {
    db = await testDatabase();
    hash = await hashPassword(password);
  });
  after(async () => db?.drop());

  it('stores and reads clients; labels round-trip, the root label "" included', async () => {
    const row = await estClients.insert(db.pool, { name: 'dev1', passwordHash: hash, labels: ['', 'iot'] });
    assert.deepEqual(
      { ...row, createdAt: undefined, updatedAt: undefined },
      {
        name: 'dev1',
        passwordHash: hash,
        profile: null,
        labels: ['', 'iot'],
        requireApproval: false,
        enabled: true,
        email: null,
        createdAt: undefined,
        updatedAt: undefined,
      },
    );
    assert.ok(row.createdAt instanceof Date);
    await estClients.insert(db.pool, { name: 'appr', passwordHash: hash, profile: 'device', requireApproval: true, enabled: false });
    assert.deepEqual(await estClients.get(db.pool, 'dev1'), row);
    assert.equal(await estClients.get(db.pool, 'nobody'), null);
    const all = await estClients.list(db.pool);
    assert.deepEqual(
      all.map((c) => [c.name, c.profile, c.labels, c.requireApproval, c.enabled]),
      [
        ['appr', 'device', [], true, false],
        ['dev1', null, ['', 'iot'], false, true],
      ],
    );
  });

  it("a taken name is a 'conflict'", async () => {
    await rejectsKind(estClients.insert(db.pool, { name: 'dev1', passwordHash: hash }), 'conflict', /^EST client "dev1" exists$/);
  });

  it('setEnabled, setPassword and remove report whether the client existed', async () => {
    await estClients.insert(db.pool, { name: 'tmp', passwordHash: hash });
    const before = (await estClients.get(db.pool, 'tmp'))!;
    assert.equal(await estClients.setEnabled(db.pool, 'tmp', false), true);
    assert.equal((await estClients.get(db.pool, 'tmp'))!.enabled, false);
    assert.equal(await estClients.setPassword(db.pool, 'tmp', 'scrypt$other'), true);
    const changed = (await estClients.get(db.pool, 'tmp'))!;
    assert.equal(changed.passwordHash, 'scrypt$other');
    assert.ok(changed.updatedAt >= before.updatedAt);
    assert.equal(await estClients.remove(db.pool, 'tmp'), true);
    assert.equal(await estClients.remove(db.pool, 'tmp'), false);
    assert.equal(await estClients.setEnabled(db.pool, 'tmp', true), false);
    assert.equal(await estClients.setPassword(db.pool, 'tmp', hash), false);
  });

  it('requires credentials', async () => {
    const message = /^EST requires authentication: HTTP Basic \(registered client\) or a TLS client certificate$/;
    await rejectsKind(authenticateBasic(db.pool, undefined), 'unauthorized', message);
    await rejectsKind(authenticateBasic(db.pool, 'Bearer token'), 'unauthorized', message);
    await rejectsKind(authenticateBasic(db.pool, 'Basic %%%'), 'unauthorized', /malformed HTTP Basic credentials/);
  });

  it('answers an unknown user and a wrong password alike, in comparable time', async () => {
    const unknown = await rejectsKind(authenticateBasic(db.pool, basic(`nobody:${password}`)), 'unauthorized');
    const wrong = await rejectsKind(authenticateBasic(db.pool, basic('dev1:not the password')), 'unauthorized');
    assert.equal(unknown.message, 'wrong user name or password');
    assert.equal(wrong.message, unknown.message);
    // Without the verification against nothing an unknown name would answer in ~1 ms
    // instead of one scrypt (~50-100 ms). Medians of three, generous margin against noise.
    const median = async (header: string) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await authenticateBasic(db.pool, header).catch(() => undefined);
        times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b)[1]!;
    };
    const tUnknown = await median(basic('nobody:whatever password'));
    const tWrong = await median(basic('dev1:whatever password'));
    assert.ok(tUnknown > tWrong * 0.3, `unknown user ${tUnknown.toFixed(1)} ms vs wrong password ${tWrong.toFixed(1)} ms`);
  });

  it('refuses a disabled client (forbidden) only to someone who knows its password', async () => {
    await rejectsKind(authenticateBasic(db.pool, basic(`appr:${password}`)), 'forbidden', /^EST client "appr" is disabled$/);
    await rejectsKind(authenticateBasic(db.pool, basic('appr:wrong password')), 'unauthorized', /^wrong user name or password$/);
  });

  it('returns the client row on success and caches the verification', async () => {
    verifiedPasswords.clear();
    const client = await authenticateBasic(db.pool, basic(`dev1:${password}`));
    assert.equal(client.name, 'dev1');
    assert.deepEqual(client.labels, ['', 'iot']);
    assert.equal(verifiedPasswords.has('dev1', password, client.passwordHash), true);
    assert.equal(verifiedPasswords.size, 1);
    // Proof that authenticateBasic consults the cache: a stored "hash" no password matches
    // authenticates only through a cache entry.
    await estClients.insert(db.pool, { name: 'cached', passwordHash: 'scrypt$not-a-hash' });
    await rejectsKind(authenticateBasic(db.pool, basic('cached:some password')), 'unauthorized');
    verifiedPasswords.add('cached', 'some password', 'scrypt$not-a-hash');
    assert.equal((await authenticateBasic(db.pool, basic('cached:some password'))).name, 'cached');
    await estClients.remove(db.pool, 'cached');
  });

  it('the cache never outlives a change: new password, disabled, removed', async () => {
    verifiedPasswords.clear();
    await authenticateBasic(db.pool, basic(`dev1:${password}`)); // cached now
    const newPassword = 'the new password of dev1';
    await estClients.setPassword(db.pool, 'dev1', await hashPassword(newPassword));
    await rejectsKind(authenticateBasic(db.pool, basic(`dev1:${password}`)), 'unauthorized', /wrong user name or password/);
    assert.equal((await authenticateBasic(db.pool, basic(`dev1:${newPassword}`))).name, 'dev1');
    await estClients.setEnabled(db.pool, 'dev1', false);
    await rejectsKind(authenticateBasic(db.pool, basic(`dev1:${newPassword}`)), 'forbidden', /disabled/);
    await estClients.remove(db.pool, 'dev1');
    await rejectsKind(authenticateBasic(db.pool, basic(`dev1:${newPassword}`)), 'unauthorized', /wrong user name or password/);
  });
});
