/**
 * The ACME order path, state by state (issue 8): the order's workflow owns the
 * authorizations it creates; answers that save round trips (the challenge POST and
 * finalize answer `valid` directly); deactivation after ready and of a reused
 * authorization; deactivation while a validation runs; the key authorization of the key
 * the account has now; a CSR with the account key; POST-as-GET only resources; server
 * faults; refused CSRs; `replaces` under concurrency; cancel, expiry, an operator's retry,
 * pre-authorization and an authorization whose order has ended.
 *
 * It also records the replay histories of these paths: run
 *   CERTFLOW_RECORD_HISTORIES=1 node scripts/test.js test/integration/acme-order-states.test.ts
 * after a deliberate workflow change, and commit test/replay/histories/acme-*-signing-queue.json.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import acme from 'acme-client';
import { freePort } from '../../src/core/net.ts';
import {
  ACME_ERROR,
  ariCertId,
  csrFor,
  directory,
  eventually,
  issueHttp01,
  newAccount,
  signedPost,
  startAcmeStack,
  startHttp01Responder,
  waitValid,
  type AcmeClient,
  type AcmeOrder,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const HISTORIES = fileURLToPath(new URL('../replay/histories/', import.meta.url));
const RECORD = process.env.CERTFLOW_RECORD_HISTORIES === '1';
/**
 * Orders run on the signing queue since issue 18 (patched 'order-work-in-update-task'): their
 * histories are recorded under names of their own, next to those of the runs before.
 */
const SIGNING_QUEUE_RUN = '-signing-queue';

describe('ACME order states', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;
  let dir: Record<string, string>;
  let connection: Connection;
  let temporal: Client;

  before(async () => {
    stack = await startAcmeStack({
      // "broken": its issuing CA does not exist (a server fault at signing).
      // Validation: 2 s per attempt, 4 attempts (a web server that never answers fails in ~15 s).
      config: {
        acme: { aliases: [{ name: 'broken', caName: 'no-such-ca' }] },
        validation: { retryWindowSeconds: 15, attemptTimeoutSeconds: 2 },
      },
    });
    responder = await startHttp01Responder(stack.http01Port);
    ({ client } = await newAccount(stack.directoryUrl()));
    dir = (await directory(client)) as Record<string, string>;
    connection = await Connection.connect({ address: temporalAddress() });
    temporal = new Client({ connection, namespace: temporalNamespace() });
  });
  after(async () => {
    await connection?.close();
    await responder?.close();
    await stack?.stop();
  });

  const idOf = (url: string) => new URL(url).pathname.split('/').at(-1)!;
  const get = async (url: string, c: AcmeClient = client) => {
    const r = await signedPost(c, url, null);
    assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.data)}`);
    return r.data;
  };
  const newOrder = (names: string[], c: AcmeClient = client) =>
    c.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });

  /** Serves the http-01 answer of the order's first authorization and POSTs its challenge. */
  async function answer(order: AcmeOrder, c: AcmeClient = client, index = 0) {
    const authz = (await c.getAuthorizations(order))[index]!;
    const challenge = authz.challenges.find((x) => x.type === 'http-01')!;
    responder.set(challenge.token, await c.getChallengeKeyAuthorization(challenge));
    const r = await signedPost(c, challenge.url, {});
    return { authz, challenge, response: r };
  }

  /** Waits for a workflow to close and, when recording, writes its history. */
  async function settle(workflowId: string, name?: string) {
    const handle = temporal.workflow.getHandle(workflowId);
    await eventually(
      `${workflowId} closed`,
      30_000,
      async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true),
      100,
    );
    const history = await handle.fetchHistory();
    if (RECORD && name) await writeFile(join(HISTORIES, `${name}${SIGNING_QUEUE_RUN}.json`), historyToJSON(history) + '\n');
    const events = history.events ?? [];
    return {
      events: events.length,
      tasks: events.filter((e) => e.workflowTaskCompletedEventAttributes).length,
      describe: () => handle.describe(),
    };
  }

  /** The audit trail of an order (issue 10: every state change is audited): "action actor result" per entry. */
  const trail = async (orderId: string) =>
    (await stack.cf.pool.query('SELECT action, actor, result FROM audit_log WHERE request_id = $1 ORDER BY seq', [orderId])).rows.map(
      (r) => `${r.action} ${r.actor} ${r.result}`,
    );
  const actorOf = (c: AcmeClient = client) => `acme:${idOf(c.getAccountUrl())}`;

  /**
   * Answers a challenge whose validation succeeds: valid at once, or (a machine slower than
   * acme.answerWaitSeconds) processing, then valid when its authorization is polled.
   */
  const answerUntilValid = async (challengeUrl: string, authzUrl: string) => {
    const answered = await signedPost(client, challengeUrl, {});
    assert.ok(['valid', 'processing'].includes(answered.data.status as string), JSON.stringify(answered.data));
    assert.equal((await waitValid(client, { url: authzUrl, status: answered.data.status as string })).status, 'valid');
  };

  const orderStatus = async (url: string, want: string, ms = 20_000) =>
    eventually(`order ${want}`, ms, async () => {
      const o = await get(url);
      return o.status === want ? o : undefined;
    });

  it('single name: the challenge POST and finalize answer valid directly; <= 22 events and <= 3 workflow tasks', async () => {
    const order = await newOrder(['one.example.test']);
    const { response } = await answer(order);
    assert.equal(response.status, 200, JSON.stringify(response.data));
    assert.equal(response.data.status, 'valid', `the answer itself says valid: ${JSON.stringify(response.data)}`);
    assert.ok(response.data.validated, 'with the time of validation');
    // What a GET shows, the next request agrees with: the order is ready now.
    assert.equal((await get(order.url)).status, 'ready');
    const { csr } = await csrFor(['one.example.test']);
    const finalized = await client.finalizeOrder(order, csr);
    assert.equal(finalized.status, 'valid', JSON.stringify(finalized));
    assert.ok(finalized.certificate, 'finalize answers with the certificate URL');
    const h = await settle(`acme-order-${idOf(order.url)}`, 'acme-order-valid-http01');
    // Validation and signing run inside the Updates' own workflow tasks (local activities).
    assert.ok(h.events <= 22, `${h.events} events`);
    assert.ok(h.tasks <= 3, `${h.tasks} workflow tasks`);
    const acct = actorOf();
    assert.deepEqual(await trail(idOf(order.url)), [
      `acme.order.create ${acct} ok`,
      `acme.authz.validate ${acct} ok`,
      `cert.issue ${acct} ok`,
    ]);
  });

  it('two names: each extra identifier adds no sequential workflow task', async () => {
    const names = ['two-a.example.test', 'two-b.example.test'];
    const order = await newOrder(names);
    const authzs = await client.getAuthorizations(order);
    await Promise.all(
      authzs.map(async (a) => {
        const ch = a.challenges.find((x) => x.type === 'http-01')!;
        responder.set(ch.token, await client.getChallengeKeyAuthorization(ch));
        const r = await signedPost(client, ch.url, {});
        assert.equal(r.data.status, 'valid', JSON.stringify(r.data));
      }),
    );
    const finalized = await client.finalizeOrder(order, (await csrFor(names)).csr);
    assert.equal(finalized.status, 'valid');
    const h = await settle(`acme-order-${idOf(order.url)}`);
    // Per identifier: its challenge Update and its validation result; nothing in sequence.
    assert.ok(h.tasks <= 7, `${h.tasks} workflow tasks`);
  });

  it('deactivating an authorization after the order is ready: the order becomes invalid, finalize is refused', async () => {
    const order = await newOrder(['deact-ready.example.test']);
    const { authz } = await answer(order);
    assert.equal((await get(order.url)).status, 'ready');
    const r = await signedPost(client, authz.url, { status: 'deactivated' });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.equal(r.data.status, 'deactivated');
    const invalid = await orderStatus(order.url, 'invalid');
    assert.equal(invalid.error.type, ACME_ERROR('unauthorized'), JSON.stringify(invalid));
    const fin = await signedPost(client, order.finalize, {
      csr: acme.crypto.getPemBodyAsB64u((await csrFor(['deact-ready.example.test'])).csr),
    });
    assert.equal(fin.status, 403, JSON.stringify(fin.data));
    assert.equal(fin.data.type, ACME_ERROR('orderNotReady'));
    assert.equal((await get(authz.url)).status, 'deactivated');
    await settle(`acme-order-${idOf(order.url)}`, 'acme-order-deactivated-after-ready');
    await settle(`acme-authz-${idOf(authz.url)}`, 'acme-authz-deactivated');
    const acct = actorOf();
    assert.deepEqual(await trail(idOf(order.url)), [
      `acme.order.create ${acct} ok`,
      `acme.authz.validate ${acct} ok`,
      'acme.order.invalid system failed',
    ]);
    const deact = await stack.cf.pool.query("SELECT actor, details FROM audit_log WHERE action = 'acme.authz.deactivate' AND object = $1", [
      idOf(authz.url),
    ]);
    assert.equal(deact.rows.length, 1);
    assert.equal(deact.rows[0].actor, acct);
    assert.deepEqual(deact.rows[0].details.openOrders, [idOf(order.url)]);
  });

  it('an authorization reused by a second order and deactivated there stops the second order too', async () => {
    await issueHttp01(client, responder, ['reuse.example.test']);
    const second = await newOrder(['reuse.example.test']);
    assert.equal(second.status, 'ready', 'the valid authorization is reused');
    const [authz] = await client.getAuthorizations(second);
    const r = await signedPost(client, authz!.url, { status: 'deactivated' });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    const invalid = await orderStatus(second.url, 'invalid');
    assert.match(invalid.error.detail, /deactivated/);
    // A third order cannot reuse it: it gets a new authorization.
    const third = await newOrder(['reuse.example.test']);
    assert.equal(third.status, 'pending');
    assert.notEqual(third.authorizations[0], authz!.url);
  });

  it('deactivation while the validation runs is refused, and the validation outcome stands', async () => {
    const order = await newOrder(['deact-busy.example.test']);
    const [authz] = await client.getAuthorizations(order);
    const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
    responder.set(ch.token, await client.getChallengeKeyAuthorization(ch));
    responder.delay(ch.token, 1500); // (within the 2 s attempt timeout)
    const answered = signedPost(client, ch.url, {});
    await eventually(
      'validation under way',
      10_000,
      async () =>
        (await stack.cf.pool.query('SELECT status FROM acme_challenges WHERE id = $1', [idOf(ch.url)])).rows[0]?.status === 'processing'
          ? true
          : undefined,
      50,
    );
    const refused = await signedPost(client, authz!.url, { status: 'deactivated' });
    assert.equal(refused.status, 400, JSON.stringify(refused.data));
    assert.equal(refused.data.type, ACME_ERROR('malformed'));
    assert.match(refused.data.detail, /being validated/);
    assert.ok([200].includes((await answered).status));
    await orderStatus(order.url, 'ready');
    assert.equal((await get(authz!.url)).status, 'valid');
  });

  it('after a key change the key authorization of the old key no longer validates', async () => {
    const { client: c } = await newAccount(stack.directoryUrl());
    const order = await newOrder(['keychange.example.test'], c);
    const [authz] = await c.getAuthorizations(order);
    const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
    const oldKeyAuthorization = await c.getChallengeKeyAuthorization(ch);
    await c.updateAccountKey(await acme.crypto.createPrivateEcdsaKey());
    responder.set(ch.token, oldKeyAuthorization);
    const r = await signedPost(c, ch.url, {});
    assert.equal(r.data.status, 'invalid', JSON.stringify(r.data));
    assert.equal(r.data.error.type, ACME_ERROR('incorrectResponse'));
    // With the new key's key authorization a new order validates.
    const again = await newOrder(['keychange2.example.test'], c);
    const answered = await answer(again, c);
    assert.equal(answered.response.data.status, 'valid', JSON.stringify(answered.response.data));
  });

  it('a CSR whose public key is the account key is refused with badCSR (RFC 8555 11.1)', async () => {
    const { client: c, accountKey } = await newAccount(stack.directoryUrl());
    const order = await newOrder(['acctkey.example.test'], c);
    await answer(order, c);
    const [, csr] = await acme.crypto.createCsr({ commonName: 'acctkey.example.test', altNames: ['acctkey.example.test'] }, accountKey);
    const r = await signedPost(c, order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) });
    assert.equal(r.status, 400, JSON.stringify(r.data));
    assert.equal(r.data.type, ACME_ERROR('badCSR'));
    assert.match(r.data.detail, /account key/);
    assert.equal((await get(order.url, c)).status, 'ready', 'the order can still be finalized with a proper CSR');
  });

  it('POST-as-GET resources refuse a non-empty payload (malformed)', async () => {
    const issued = await issueHttp01(client, responder, ['readonly.example.test']);
    const account = await get(client.getAccountUrl());
    for (const url of [issued.order.url, issued.order.certificate!, account.orders as string]) {
      const r = await signedPost(client, url, {});
      assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.data)}`);
      assert.equal(r.data.type, ACME_ERROR('malformed'));
      assert.equal((await signedPost(client, url, null)).status, 200, `${url} with POST-as-GET`);
    }
  });

  it('a server fault at signing (unknown issuing CA) ends the order invalid with serverInternal, never badCSR, cause in CertflowLastError', async () => {
    const { client: c } = await newAccount(stack.directoryUrl('broken'));
    const order = await newOrder(['fault.example.test'], c);
    await answer(order, c);
    const finalized = await signedPost(c, order.finalize, {
      csr: acme.crypto.getPemBodyAsB64u((await csrFor(['fault.example.test'])).csr),
    });
    assert.equal(finalized.status, 200, JSON.stringify(finalized.data));
    const o = finalized.data.status === 'invalid' ? finalized.data : await orderStatus(order.url, 'invalid');
    assert.equal(o.error.type, ACME_ERROR('serverInternal'), JSON.stringify(o));
    const h = await settle(`acme-order-${idOf(order.url)}`, 'acme-order-server-fault');
    const d = await h.describe();
    assert.equal(d.status.name, 'COMPLETED', 'the workflow completes; it does not fail');
    const lastError = d.typedSearchAttributes.getAll().find((p) => p.key.name === 'CertflowLastError')?.value;
    assert.match(String(lastError), /unknown issuing CA/);
  });

  it('a CSR the profile refuses (RSA 1024) ends the order invalid with badCSR', async () => {
    const order = await newOrder(['weak.example.test']);
    await answer(order);
    const [, csr] = await acme.crypto.createCsr(
      { commonName: 'weak.example.test', altNames: ['weak.example.test'] },
      await acme.crypto.createPrivateRsaKey(1024),
    );
    const r = await signedPost(client, order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) });
    const o = r.data.status === 'invalid' ? r.data : await orderStatus(order.url, 'invalid');
    assert.equal(o.error.type, ACME_ERROR('badCSR'), JSON.stringify(o));
    assert.match(o.error.detail, /1024/);
    await settle(`acme-order-${idOf(order.url)}`, 'acme-order-refused-csr');
  });

  it('"replaces": of two concurrent orders replacing one certificate exactly one is accepted', async () => {
    const issued = await issueHttp01(client, responder, ['replace-race.example.test']);
    const certId = ariCertId(issued.leafPem);
    const body = { identifiers: [{ type: 'dns', value: 'replace-race.example.test' }], replaces: certId };
    const results = await Promise.all(Array.from({ length: 6 }, () => signedPost(client, dir.newOrder!, body)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], JSON.stringify(results.map((r) => r.data)));
    for (const r of results.filter((x) => x.status === 409)) assert.equal(r.data.type, ACME_ERROR('alreadyReplaced'));
  });

  it('an operator cancels an order (`certflow orders cancel`)', async () => {
    const order = await newOrder(['cancel.example.test']);
    const r = await stack.cf.cli(['orders', 'cancel', idOf(order.url), '--reason', 'test']);
    assert.equal(r.code, 0, r.stderr);
    const o = await get(order.url);
    assert.equal(o.status, 'invalid');
    assert.match(o.error.detail, /canceled by operator.*test/);
    await settle(`acme-order-${idOf(order.url)}`, 'acme-order-canceled');
    const [created, canceled, ...more] = await trail(idOf(order.url));
    assert.equal(created, `acme.order.create ${actorOf()} ok`);
    assert.match(String(canceled), /^acme\.order\.invalid operator:\S+ failed$/);
    assert.deepEqual(more, []);
  });

  it('validation against a web server that never answers is retried; an operator retry validates at once; then the order is invalid', async () => {
    const order = await newOrder(['hanging.example.test']);
    const [authz] = await client.getAuthorizations(order);
    const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
    responder.set(ch.token, await client.getChallengeKeyAuthorization(ch));
    responder.delay(ch.token, 60_000); // every attempt times out (transient: retried)
    const answered = await signedPost(client, ch.url, {});
    assert.equal(answered.data.status, 'processing', JSON.stringify(answered.data));
    const retried = await stack.cf.cli(['orders', 'retry', idOf(order.url)]);
    assert.equal(retried.code, 0, retried.stderr + retried.stdout);
    assert.match(retried.stdout + retried.stderr, /validating again now/);
    const o = await orderStatus(order.url, 'invalid', 60_000);
    assert.equal(o.error.type, ACME_ERROR('connection'), JSON.stringify(o));
    assert.match(o.error.detail, /timeout/);
    await settle(`acme-order-${idOf(order.url)}`, 'acme-order-invalid-connection-operator-retry');
    // The failed validation is one entry (retries write none), and it made the order invalid.
    assert.deepEqual(await trail(idOf(order.url)), [`acme.order.create ${actorOf()} ok`, `acme.authz.invalid ${actorOf()} failed`]);
  });

  it('pre-authorization: its own workflow validates it; an order then reuses it', async () => {
    const r = await signedPost(client, dir.newAuthz!, { identifier: { type: 'dns', value: 'preauth.example.test' } });
    assert.equal(r.status, 201, JSON.stringify(r.data));
    const ch = (r.data.challenges as Array<{ type: string; url: string; token: string }>).find((x) => x.type === 'http-01')!;
    responder.set(ch.token, await client.getChallengeKeyAuthorization(ch as never));
    await answerUntilValid(ch.url, r.headers.location!);
    await settle(`acme-authz-${idOf(r.headers.location!)}`, 'acme-authz-preauth-valid');
    const order = await newOrder(['preauth.example.test']);
    assert.equal(order.status, 'ready');
  });

  it('an authorization whose order ended is validated by a workflow of its own, and reused later', async () => {
    const names = ['ended-a.example.test', 'ended-b.example.test'];
    const order = await newOrder(names);
    const authzs = await client.getAuthorizations(order);
    const bad = authzs.find((a) => a.identifier.value === 'ended-b.example.test')!;
    const badCh = bad.challenges.find((x) => x.type === 'http-01')!;
    responder.set(badCh.token, 'wrong');
    assert.equal((await signedPost(client, badCh.url, {})).data.status, 'invalid');
    await orderStatus(order.url, 'invalid');
    const good = authzs.find((a) => a.identifier.value === 'ended-a.example.test')!;
    const goodCh = good.challenges.find((x) => x.type === 'http-01')!;
    responder.set(goodCh.token, await client.getChallengeKeyAuthorization(goodCh));
    await answerUntilValid(goodCh.url, good.url);
    await settle(`acme-authz-${good.url.split('/').at(-1)}`, 'acme-authz-after-order-ended');
    assert.equal((await newOrder(['ended-a.example.test'])).status, 'ready');
  });

  it('an order that expires becomes invalid by its timer', async () => {
    const configFile = join(stack.cf.home, 'short-orders.json');
    await writeFile(configFile, JSON.stringify({ acme: { orderLifetimeSeconds: 2 } }));
    const httpsPort = await freePort();
    const short = await stack.cf.startServer({
      CERTFLOW_CONFIG: configFile,
      CERTFLOW_HTTPS_PORT: String(httpsPort),
      CERTFLOW_HTTP_PORT: String(await freePort()),
    });
    try {
      const { client: c } = await newAccount(`https://localhost:${httpsPort}/acme/directory`);
      const order = await newOrder(['expiring.example.test'], c);
      await sleep(Math.max(0, Date.parse(order.expires!) - Date.now()));
      await settle(`acme-order-${idOf(order.url)}`, 'acme-order-expired');
      const row = (await stack.cf.pool.query('SELECT status, error FROM acme_orders WHERE id = $1', [idOf(order.url)])).rows[0];
      assert.equal(row.status, 'invalid');
      assert.match(row.error.detail, /expired/);
      assert.deepEqual(await trail(idOf(order.url)), [`acme.order.create ${actorOf(c)} ok`, 'acme.order.invalid system failed']);
    } finally {
      await short.stop();
    }
  });

  it('finalize with the same CSR twice is one issuance (request-derived update id)', async () => {
    const order = await newOrder(['twice.example.test']);
    await answer(order);
    const { csr } = await csrFor(['twice.example.test']);
    const b64 = acme.crypto.getPemBodyAsB64u(csr);
    const [a, b] = await Promise.all([signedPost(client, order.finalize, { csr: b64 }), signedPost(client, order.finalize, { csr: b64 })]);
    const ok = [a, b].filter((r) => r.status === 200);
    assert.ok(ok.length >= 1, JSON.stringify([a.data, b.data]));
    const valid = await orderStatus(order.url, 'valid');
    const { rows } = await stack.cf.pool.query('SELECT serial FROM certificates WHERE request_id = $1', [idOf(order.url)]);
    assert.equal(rows.length, 1);
    assert.ok(String(valid.certificate).endsWith(rows[0].serial));
  });

  it('the audit chain with every entry written above verifies (`certflow audit verify`)', async () => {
    const r = await stack.cf.cli(['audit', 'verify']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });
});
