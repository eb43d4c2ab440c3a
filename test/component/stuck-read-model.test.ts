/**
 * The SQL of the stuck-request definition (src/db/repos/stuck.ts, issue 21), against the test
 * run's Postgres: what the read model says each request is doing (its phase, since when) and
 * the same verdicts as the rules (test/unit/stuck.test.ts), lists and counts; and when a
 * request's progress time moves (a server fault's stalled/signing cycle is no progress).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as accounts from '../../src/db/repos/acme-accounts.ts';
import * as orders from '../../src/db/repos/acme-orders.ts';
import * as requests from '../../src/db/repos/requests.ts';
import { classifyRequest, countStuckAndWaiting, stuckRequests, waitingRequests } from '../../src/db/repos/stuck.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';
import { ago, BOUNDS, NOW } from '../helpers/stuck.ts';

describe('stuck: the read model (Postgres)', () => {
  let db: TestDatabase;
  const hex = () => randomBytes(6).toString('hex');

  before(async () => {
    db = await testDatabase();
  });
  after(async () => db?.drop());

  async function request(protocol: string, state: requests.RequestState, progressMsAgo: number, error?: string) {
    const id = `${protocol}-${state}-${hex()}`;
    await requests.upsert(db.pool, {
      id,
      protocol,
      workflowId: `wf-${id}`,
      profile: 'device',
      state,
      csrDer: new Uint8Array([0x30, 0]),
      error,
      label: 'lbl',
    });
    await db.pool.query('UPDATE issuance_requests SET progress_at = $2 WHERE id = $1', [id, ago(progressMsAgo)]);
    return id;
  }

  let account = '';
  async function order(status: string, opts: { updatedMsAgo: number; validatingMsAgo?: number; expiresInMs?: number; fault?: string }) {
    if (!account) {
      account = `acct-${hex()}`;
      await accounts.insert(db.pool, {
        id: account,
        alias: '',
        jwk: { kty: 'EC' },
        thumbprint: hex(),
        contact: [],
        tosAgreed: null,
        eabKid: null,
      });
    }
    const id = `order-${status}-${hex()}`;
    const authzId = `authz-${hex()}`;
    const expiresAt = new Date(NOW.getTime() + (opts.expiresInMs ?? 3600_000)).toISOString();
    await orders.insertAuthz(db.pool, {
      id: authzId,
      accountId: account,
      alias: '',
      identifier: { type: 'dns', value: `${hex()}.example.test` },
      wildcard: false,
      status: 'pending',
      expiresAt,
      challenges: [{ id: `ch-${hex()}`, type: 'http-01', token: hex() }],
      ownerOrderId: id,
    } as Parameters<typeof orders.insertAuthz>[1]);
    await orders.insertOrder(db.pool, {
      id,
      accountId: account,
      alias: '',
      status: status as 'pending',
      identifiers: [{ type: 'dns', value: 'x.example.test' }],
      authzIds: [authzId],
      expiresAt,
      profile: 'tls-server',
      registeredDomains: ['example.test'],
    });
    await db.pool.query('UPDATE acme_orders SET updated_at = $2, signing_fault = $3 WHERE id = $1', [
      id,
      ago(opts.updatedMsAgo),
      opts.fault ?? null,
    ]);
    if (opts.validatingMsAgo !== undefined)
      await db.pool.query("UPDATE acme_challenges SET status = 'processing', updated_at = $2 WHERE authz_id = $1", [
        authzId,
        ago(opts.validatingMsAgo),
      ]);
    return id;
  }

  it('phases and verdicts from the read model are the rules', async () => {
    const s = 1000;
    const expect = new Map<string, string>([
      // stuck
      [await request('est', 'stalled', 0, 'config: unknown issuing CA "no-such-ca"'), 'stuck stalled'],
      [await request('cmp', 'stalled', 3 * s, 'unavailable: PKCS#11 token gone'), 'stuck stalled'],
      [await request('est', 'signing', 41 * s), 'stuck signing'],
      [await request('cmp', 'pending', 51 * s), 'stuck pending'],
      [await request('operator', 'signing', 81 * s), 'stuck signing'],
      [await order('processing', { updatedMsAgo: 121 * s, fault: 'unavailable: token gone' }), 'stuck processing'],
      [await order('pending', { updatedMsAgo: 600 * s, validatingMsAgo: 76 * s }), 'stuck validating'],
      [await order('ready', { updatedMsAgo: 10 * s, expiresInMs: -61 * s }), 'stuck expired'],
      // waiting
      [await request('est', 'awaiting-approval', 86_400 * s), 'waiting person'],
      [await request('cmp', 'awaiting-approval', 5 * s), 'waiting person'],
      [await request('cmp', 'issued', 7 * s), 'waiting client'],
      [await order('pending', { updatedMsAgo: 9 * s }), 'waiting client'],
      [await order('ready', { updatedMsAgo: 3 * s }), 'waiting client'],
      // neither: within their bound, or finished
      [await request('est', 'signing', 40 * s), 'moving'],
      [await request('operator', 'pending', 60 * s), 'moving'],
      [await order('processing', { updatedMsAgo: 119 * s }), 'moving'],
      [await order('pending', { updatedMsAgo: 600 * s, validatingMsAgo: 74 * s }), 'moving'],
      [await order('pending', { updatedMsAgo: 10 * s, expiresInMs: -59 * s }), 'moving'],
      [await request('est', 'issued', 999 * s), 'done'],
      [await request('cmp', 'confirmed', 999 * s), 'done'],
      [await order('valid', { updatedMsAgo: 999 * s }), 'done'],
      [await order('invalid', { updatedMsAgo: 999 * s }), 'done'],
    ]);
    const [stuck, waiting, counts] = await Promise.all([
      stuckRequests(db.pool, BOUNDS, { now: NOW }),
      waitingRequests(db.pool, BOUNDS, { now: NOW }),
      countStuckAndWaiting(db.pool, BOUNDS, { now: NOW }),
    ]);
    const got = new Map<string, string>();
    for (const e of stuck) got.set(e.id, `stuck ${e.reason}`);
    for (const e of waiting) got.set(e.id, `waiting ${e.on}`);
    for (const [id, want] of expect) assert.equal(got.get(id) ?? (want === 'done' ? 'done' : 'moving'), want, id);
    assert.equal(got.size, [...expect.values()].filter((v) => v.startsWith('stuck') || v.startsWith('waiting')).length);

    // Every listed entry agrees with the rules applied to its phase and progress time.
    for (const e of [...stuck, ...waiting]) {
      const c = classifyRequest({ protocol: e.protocol, phase: e.phase, since: e.since }, BOUNDS, NOW);
      assert.equal(c?.condition, e.condition, e.id);
    }

    // Longest stuck first; why, since when, how long, workflow, actions.
    assert.deepEqual(
      stuck.map((e) => e.seconds),
      [...stuck.map((e) => e.seconds)].sort((a, b) => b - a),
    );
    const fault = stuck.find((e) => e.lastError?.includes('no-such-ca'))!;
    assert.equal(fault.why, 'config: unknown issuing CA "no-such-ca"');
    assert.equal(fault.seconds, 0);
    assert.deepEqual(fault.actions, ['retry']);
    assert.match(fault.workflowId, /^wf-est-stalled-/);
    const processing = stuck.find((e) => e.reason === 'processing')!;
    assert.equal(processing.why, 'unavailable: token gone');
    assert.equal(processing.seconds, 121);
    assert.match(processing.workflowId, /^acme-order-order-processing-/);
    assert.match(stuck.find((e) => e.reason === 'validating')!.why, /past the retry window/);
    assert.match(stuck.find((e) => e.reason === 'signing' && e.protocol === 'est')!.why, /signing task queue/);
    const person = waiting.find((e) => e.on === 'person' && e.protocol === 'est')!;
    assert.equal(person.seconds, 86_400);
    assert.deepEqual(person.actions, ['approve', 'reject']);

    // Counts: every (protocol, reason) and (protocol, on) the rules know, zeros included.
    const count = (protocol: string, reason: string) => counts.stuck.find((x) => x.protocol === protocol && x.reason === reason)?.count;
    assert.equal(count('est', 'stalled'), 1);
    assert.equal(count('cmp', 'stalled'), 1);
    assert.equal(count('acme', 'processing'), 1);
    assert.equal(count('operator', 'stalled'), 0);
    assert.equal(
      counts.stuck.reduce((n, x) => n + x.count, 0),
      stuck.length,
    );
    assert.deepEqual(
      counts.waiting.map((w) => `${w.protocol} ${w.on} ${w.count}`),
      ['acme client 2', 'est person 1', 'cmp person 1', 'operator person 0', 'cmp client 1'],
    );
    assert.equal(counts.waiting.find((w) => w.protocol === 'est')!.oldestSeconds, 86_400);

    // Filters.
    assert.deepEqual((await stuckRequests(db.pool, BOUNDS, { now: NOW, protocol: 'cmp' })).map((e) => e.reason).sort(), [
      'pending',
      'stalled',
    ]);
    assert.equal((await stuckRequests(db.pool, BOUNDS, { now: NOW, reason: 'stalled' })).length, 2);
    assert.equal((await waitingRequests(db.pool, BOUNDS, { now: NOW, on: 'client' })).length, 3);
    assert.deepEqual(
      (await stuckRequests(db.pool, BOUNDS, { now: NOW, ids: [fault.id, person.id] })).map((e) => e.id),
      [fault.id],
    );
  });

  it("a server fault's cycle is no progress: stuck since the first fault, until the request moves on", async () => {
    const id = `cycle-${hex()}`;
    const base = { id, protocol: 'est', workflowId: `wf-${id}`, profile: 'device', csrDer: new Uint8Array([0x30, 0]) };
    const progress = async () => (await requests.get(db.pool, id))!.progressAt.getTime();
    await requests.upsert(db.pool, { ...base, state: 'signing' });
    const signing = await progress();
    await new Promise((r) => setTimeout(r, 20));
    await requests.upsert(db.pool, { ...base, state: 'stalled', error: 'unavailable: HSM gone' });
    const stalled = await progress();
    assert.ok(stalled > signing, 'the first fault is a change of state');
    for (const [state, error] of [
      ['signing', 'unavailable: HSM gone'],
      ['stalled', 'unavailable: HSM gone'],
      ['stalled', 'unavailable: HSM gone'],
      ['signing', 'unavailable: HSM gone'],
    ] as const) {
      await new Promise((r) => setTimeout(r, 20));
      await requests.upsert(db.pool, { ...base, state, error });
      assert.equal(await progress(), stalled, `${state} again`);
    }
    await new Promise((r) => setTimeout(r, 20));
    await requests.setState(db.pool, id, 'issued');
    assert.ok((await progress()) > stalled, 'issued is progress');
  });
});
