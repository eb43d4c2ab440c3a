/**
 * What an ACME client gets when things go wrong (RFC 8555 problem types and HTTP statuses):
 * a wrong key authorization at http-01, a CSR that does not match the order at finalize,
 * http-01 for a wildcard, finalize too early or too late, identifiers certflow refuses,
 * and an order that expires (a second server on the same instance, configured with a
 * 3-second order lifetime: the lifetime is set by the server when it creates the order).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import { freePort } from '../../src/core/net.ts';
import {
  ACME_ERROR,
  authorizeHttp01,
  csrFor,
  directory,
  jwsPost,
  eventually,
  newAccount,
  signedPost,
  startAcmeStack,
  startHttp01Responder,
  waitValid,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

describe('ACME error cases', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;
  let dir: Record<string, string>;

  before(async () => {
    stack = await startAcmeStack();
    responder = await startHttp01Responder(stack.http01Port);
    ({ client } = await newAccount(stack.directoryUrl()));
    dir = (await directory(client)) as Record<string, string>;
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  const get = async (url: string, c: AcmeClient = client) => {
    const r = await signedPost(c, url, null);
    assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.data)}`);
    return r.data;
  };
  const newOrder = (names: string[], c: AcmeClient = client) =>
    c.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
  const csrB64u = async (names: string[]) => acme.crypto.getPemBodyAsB64u((await csrFor(names)).csr);

  it('wrong key authorization at http-01: challenge, authorization and order invalid (incorrectResponse)', async () => {
    const order = await newOrder(['wrong-keyauth.example.test']);
    const [authz] = await client.getAuthorizations(order);
    const challenge = authz!.challenges.find((c) => c.type === 'http-01')!;
    const right = await client.getChallengeKeyAuthorization(challenge);
    responder.set(challenge.token, `${challenge.token}.not-the-account-thumbprint`);
    assert.notEqual(right, `${challenge.token}.not-the-account-thumbprint`);
    await client.completeChallenge(challenge);
    await assert.rejects(client.waitForValidStatus(authz!));

    const chall = await get(challenge.url);
    assert.equal(chall.status, 'invalid');
    assert.equal(chall.error?.type, ACME_ERROR('incorrectResponse'), JSON.stringify(chall));
    assert.ok(chall.error.detail, 'the problem says what was wrong');
    assert.equal((await get(authz!.url)).status, 'invalid');
    const o = await eventually('order invalid', 15_000, async () => {
      const x = await get(order.url);
      return x.status === 'invalid' ? x : undefined;
    });
    assert.ok(o.error?.type, `an invalid order carries the problem: ${JSON.stringify(o)}`);

    // Finalizing it: 403 orderNotReady (RFC 8555 7.4).
    const fin = await signedPost(client, order.finalize, { csr: await csrB64u(['wrong-keyauth.example.test']) });
    assert.equal(fin.status, 403, JSON.stringify(fin.data));
    assert.equal(fin.data.type, ACME_ERROR('orderNotReady'));
    // Answering the invalid challenge again changes nothing.
    await signedPost(client, challenge.url, {});
    assert.equal((await get(challenge.url)).status, 'invalid');
  });

  it('finalize before the authorizations are valid: 403 orderNotReady', async () => {
    const order = await newOrder(['early.example.test']);
    const fin = await signedPost(client, order.finalize, { csr: await csrB64u(['early.example.test']) });
    assert.equal(fin.status, 403, JSON.stringify(fin.data));
    assert.equal(fin.data.type, ACME_ERROR('orderNotReady'));
    assert.equal((await get(order.url)).status, 'pending');
  });

  it('finalize with a CSR naming more (or fewer) names than the order: 400 badCSR, the order stays ready', async () => {
    const names = ['csr.example.test', 'www.csr.example.test'];
    const order = await newOrder(names);
    await authorizeHttp01(client, order, responder);
    const ready = await waitValid(client, order);
    assert.equal(ready.status, 'ready');

    const extra = await signedPost(client, order.finalize, { csr: await csrB64u([...names, 'extra.example.test']) });
    assert.equal(extra.status, 400, JSON.stringify(extra.data));
    assert.equal(extra.data.type, ACME_ERROR('badCSR'));
    assert.match(extra.data.detail, /extra\.example\.test/);
    const fewer = await signedPost(client, order.finalize, { csr: await csrB64u([names[0]!]) });
    assert.equal(fewer.status, 400, JSON.stringify(fewer.data));
    assert.equal(fewer.data.type, ACME_ERROR('badCSR'));
    const garbage = await signedPost(client, order.finalize, { csr: Buffer.from('not a CSR').toString('base64url') });
    assert.equal(garbage.status, 400, JSON.stringify(garbage.data));
    assert.ok([ACME_ERROR('badCSR'), ACME_ERROR('malformed')].includes(garbage.data.type), JSON.stringify(garbage.data));
    assert.equal((await get(order.url)).status, 'ready');

    // The right CSR still works.
    const fin = await signedPost(client, order.finalize, { csr: await csrB64u(names) });
    assert.equal(fin.status, 200, JSON.stringify(fin.data));
    const valid = await client.waitForValidStatus({ ...order, ...fin.data, url: order.url });
    assert.equal(valid.status, 'valid');
  });

  it('wildcard: the authorization offers dns-01 only; there is no http-01 challenge to answer', async () => {
    const order = await newOrder(['*.wildcard.example.test']);
    const [authz] = await client.getAuthorizations(order);
    assert.equal(authz!.wildcard, true);
    assert.deepEqual(authz!.identifier, { type: 'dns', value: 'wildcard.example.test' });
    assert.deepEqual(
      authz!.challenges.map((c) => c.type),
      ['dns-01'],
    );
    // A made-up challenge URL next to the dns-01 one: 404 malformed.
    const dns01 = authz!.challenges[0]!.url;
    const madeUp = dns01.replace(/[^/]+$/, 'http-01-does-not-exist');
    const r = await signedPost(client, madeUp, {});
    assert.equal(r.status, 404, JSON.stringify(r.data));
    assert.equal(r.data.type, ACME_ERROR('malformed'));
  });

  it('identifiers certflow refuses: rejectedIdentifier / unsupportedIdentifier with status 400', async () => {
    const bad = await signedPost(client, dir.newOrder, { identifiers: [{ type: 'dns', value: 'not_a..name' }] });
    assert.equal(bad.status, 400, JSON.stringify(bad.data));
    assert.equal(bad.data.type, ACME_ERROR('rejectedIdentifier'));
    const email = await signedPost(client, dir.newOrder, { identifiers: [{ type: 'email', value: 'a@example.test' }] });
    assert.equal(email.status, 400, JSON.stringify(email.data));
    assert.equal(email.data.type, ACME_ERROR('unsupportedIdentifier'));
    const none = await signedPost(client, dir.newOrder, { identifiers: [] });
    assert.equal(none.status, 400, JSON.stringify(none.data));
    assert.equal(none.data.type, ACME_ERROR('malformed'));
  });

  it('an order that expires before it is finalized becomes invalid; finalize: 403 orderNotReady', async () => {
    // A second server on the same instance (same database and worker), whose orders live 3 s.
    const configFile = join(stack.cf.home, 'short-orders.json');
    await writeFile(configFile, JSON.stringify({ acme: { orderLifetimeSeconds: 3 } }));
    const httpsPort = await freePort();
    const short = await stack.cf.startServer({
      CERTFLOW_CONFIG: configFile,
      CERTFLOW_HTTPS_PORT: String(httpsPort),
      CERTFLOW_HTTP_PORT: String(await freePort()),
    });
    try {
      const { client: c } = await newAccount(`https://localhost:${httpsPort}/acme/directory`);
      const order = await newOrder(['expiring.example.test'], c);
      const lifetime = Date.parse(order.expires!) - Date.now();
      assert.ok(lifetime <= 3_500, `expires in ${lifetime} ms: ${order.expires}`);
      await sleep(Math.max(0, lifetime));
      const o = await eventually('order invalid after it expired', 20_000, async () => {
        const x = await get(order.url, c);
        return x.status === 'invalid' ? x : undefined;
      });
      assert.ok(o.error?.type, JSON.stringify(o));
      const fin = await signedPost(c, order.finalize, { csr: await csrB64u(['expiring.example.test']) });
      assert.equal(fin.status, 403, JSON.stringify(fin.data));
      assert.equal(fin.data.type, ACME_ERROR('orderNotReady'));
    } finally {
      await short.stop();
    }
  });

  // Last: it stops the worker.
  it('with no worker running, a mutation answers 503 serverInternal + Retry-After within its deadline, never hangs', async () => {
    // A hand-made JWS: acme-client itself retries on 503.
    const { client: c, accountKey } = await newAccount(stack.directoryUrl());
    const kid = c.getAccountUrl();
    await stack.worker.stop();
    // New orders need no worker: the order is stored and its workflow started (durable);
    // answering its challenge needs the workflow to take the Update, which needs a worker.
    const created = await jwsPost(
      { newNonce: dir.newNonce! },
      dir.newOrder!,
      { identifiers: [{ type: 'dns', value: 'no-worker.example.test' }] },
      accountKey,
      { kid },
    );
    assert.equal(created.status, 201, JSON.stringify(created.data));
    const authz = await jwsPost({ newNonce: dir.newNonce! }, created.data.authorizations[0], null, accountKey, { kid });
    const http01 = (authz.data.challenges as Array<{ type: string; url: string }>).find((ch) => ch.type === 'http-01')!;
    const started = Date.now();
    const r = await jwsPost({ newNonce: dir.newNonce! }, http01.url, {}, accountKey, { kid });
    const took = Date.now() - started;
    assert.equal(r.status, 503, JSON.stringify(r.data));
    assert.equal(r.data.type, ACME_ERROR('serverInternal'));
    assert.ok(Number(r.headers['retry-after']) > 0, JSON.stringify(r.headers));
    assert.ok(took < 20_000, `answered after ${took} ms`);
  });
});
