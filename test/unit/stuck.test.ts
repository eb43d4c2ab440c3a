/**
 * The one definition of a stuck request (src/db/repos/stuck.ts, issue 21), without any server:
 * every phase of every protocol at its bound (not stuck: "longer than" the bound) and a
 * millisecond past it (stuck), a server fault stuck at once, waiting for a person or the client
 * never stuck, finished requests neither; the bounds from the configuration file (defaults,
 * overrides, refusals). Its SQL: test/component/stuck-read-model.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.ts';
import { CaError } from '../../src/core/errors.ts';
import { actionsFor, classifyRequest, EXPIRY_GRACE_SECONDS, rules, type Condition } from '../../src/db/repos/stuck.ts';
import { ago, BOUNDS, NOW } from '../helpers/stuck.ts';

const classify = (protocol: string, phase: string, sinceMs: number) =>
  classifyRequest({ protocol, phase, since: ago(sinceMs) }, BOUNDS, NOW);

describe('stuck: the rules', () => {
  const bounded: Array<[string, string, number]> = [
    ['acme', 'validating', 75],
    ['acme', 'processing', 120],
    ['acme', 'expired', EXPIRY_GRACE_SECONDS],
    ['est', 'pending', 30],
    ['est', 'signing', 40],
    ['cmp', 'pending', 50],
    ['cmp', 'signing', 60],
    ['operator', 'pending', 70],
    ['operator', 'signing', 80],
  ];
  for (const [protocol, phase, bound] of bounded) {
    it(`${protocol} ${phase}: stuck only after more than ${bound} s without progress`, () => {
      assert.equal(classify(protocol, phase, 0), null, 'just now');
      assert.equal(classify(protocol, phase, bound * 1000), null, 'exactly at the bound');
      assert.deepEqual(classify(protocol, phase, bound * 1000 + 1), { condition: 'stuck', reason: phase, boundSeconds: bound });
      assert.deepEqual(classify(protocol, phase, 30 * 86_400_000), { condition: 'stuck', reason: phase, boundSeconds: bound });
    });
  }

  for (const protocol of ['est', 'cmp', 'operator']) {
    it(`${protocol} stalled by a server fault: stuck at once`, () => {
      const stuck: Condition = { condition: 'stuck', reason: 'stalled', boundSeconds: 0 };
      assert.deepEqual(classify(protocol, 'stalled', 0), stuck);
      assert.deepEqual(classify(protocol, 'stalled', -5000), stuck, 'even with a clock a little behind the database');
    });
  }

  it('waiting for a person or the client: never stuck, however long', () => {
    const waits: Array<[string, string, 'person' | 'client']> = [
      ['est', 'awaiting-approval', 'person'],
      ['cmp', 'awaiting-approval', 'person'],
      ['operator', 'awaiting-approval', 'person'],
      ['cmp', 'confirming', 'client'],
      ['acme', 'pending', 'client'],
      ['acme', 'ready', 'client'],
    ];
    for (const [protocol, phase, on] of waits) {
      for (const since of [0, 3600_000, 90 * 86_400_000])
        assert.deepEqual(classify(protocol, phase, since), { condition: 'waiting', on, boundSeconds: 0 }, `${protocol} ${phase}`);
    }
  });

  it('finished requests, and phases a protocol does not have, are neither', () => {
    for (const [protocol, phase] of [
      ['acme', 'valid'],
      ['acme', 'invalid'],
      ['acme', 'stalled'],
      ['est', 'issued'],
      ['est', 'confirming'],
      ['est', 'failed'],
      ['cmp', 'confirmed'],
      ['cmp', 'revoked'],
      ['operator', 'rejected'],
      ['operator', 'abandoned'],
      ['scep', 'pending'],
    ])
      assert.equal(classify(protocol!, phase!, 365 * 86_400_000), null, `${protocol} ${phase}`);
  });

  it('one rule per protocol and phase', () => {
    const keys = rules(BOUNDS).map((r) => `${r.protocol} ${r.phase}`);
    assert.equal(new Set(keys).size, keys.length);
  });

  it('the actions a request takes', () => {
    assert.deepEqual(actionsFor('request', 'stalled', 'stalled'), ['retry']);
    assert.deepEqual(actionsFor('request', 'awaiting-approval', 'awaiting-approval'), ['approve', 'reject']);
    assert.deepEqual(actionsFor('request', 'signing', 'signing'), [], 'only a stalled request takes the retry Update');
    assert.deepEqual(actionsFor('request', 'issued', 'confirming'), []);
    assert.deepEqual(actionsFor('order', 'processing', 'processing'), ['retry'], 'a processing order cannot be canceled');
    assert.deepEqual(actionsFor('order', 'pending', 'validating'), ['retry', 'cancel']);
    assert.deepEqual(actionsFor('order', 'pending', 'pending'), ['cancel']);
    assert.deepEqual(actionsFor('order', 'ready', 'expired'), ['cancel']);
  });
});

describe('stuck: the bounds in the configuration file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certflow-stuck-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  let n = 0;
  async function load(content: unknown) {
    const file = join(dir, `config-${n++}.json`);
    await writeFile(file, JSON.stringify(content));
    return loadConfig({ CERTFLOW_HOME: dir, CERTFLOW_CONFIG: file });
  }

  it('defaults: validating past the retry window and a minute, two minutes for the rest', async () => {
    const c = await load({});
    assert.deepEqual(c.stuck, {
      acme: { validatingSeconds: 120, processingSeconds: 120 },
      est: { pendingSeconds: 120, signingSeconds: 120 },
      cmp: { pendingSeconds: 120, signingSeconds: 120 },
      operator: { pendingSeconds: 120, signingSeconds: 120 },
    });
    assert.equal((await load({ validation: { retryWindowSeconds: 900 } })).stuck.acme.validatingSeconds, 960);
  });

  it('each bound can be set; the others keep their defaults', async () => {
    const c = await load({ stuck: { acme: { processingSeconds: 30 }, cmp: { signingSeconds: 600 } } });
    assert.deepEqual(c.stuck.acme, { validatingSeconds: 120, processingSeconds: 30 });
    assert.deepEqual(c.stuck.cmp, { pendingSeconds: 120, signingSeconds: 600 });
    assert.deepEqual(c.stuck.est, { pendingSeconds: 120, signingSeconds: 120 });
  });

  it("docs/requests.md's example is a valid configuration with those bounds", async () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/requests.md', import.meta.url)), 'utf8');
    const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as { stuck: unknown });
    assert.equal(examples.length, 1);
    assert.deepEqual((await load(examples[0])).stuck, examples[0]!.stuck);
  });

  it('a typo or an impossible bound is refused with its path', async () => {
    const refused = async (content: unknown, path: string) =>
      assert.rejects(load(content), (e: unknown) => e instanceof CaError && e.kind === 'config' && e.message.includes(`${path}:`));
    await refused({ stuck: { est: { signingSecs: 5 } } }, 'stuck.est.signingSecs');
    await refused({ stuck: { scep: {} } }, 'stuck.scep');
    await refused({ stuck: { cmp: { pendingSeconds: 0 } } }, 'stuck.cmp.pendingSeconds');
    await refused({ stuck: { acme: { validatingSeconds: 1.5 } } }, 'stuck.acme.validatingSeconds');
  });
});
