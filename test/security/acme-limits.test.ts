/**
 * ACME rate limits an attacker would use or dodge (issue 16 item 6, issue 22 item 6):
 *
 * - the per-domain certificate limit counts issued certificates, as Boulder does: another
 *   account's pending orders cannot keep a domain rate-limited; and it stays exact when
 *   finalizes race (counted in the transaction that stores each certificate);
 * - pre-authorizations (newAuthz) and challenge answers obey the same limits as orders:
 *   new orders (and pre-authorizations) per account, pending authorizations per account,
 *   failed validations per account and identifier — so they cannot drive unlimited
 *   validation traffic to a domain.
 *
 * Accounts, authorizations and finalize go through acme-client; the requests that may be
 * refused are raw kid-signed JWS (acme-client would sit out a 429's Retry-After, a week
 * here); validation is real http-01 against a responder on loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import acme from 'acme-client';
import {
  ACME_ERROR,
  assertRateLimited,
  authorizeHttp01,
  csrFor,
  directory,
  eventually,
  newAccount,
  jwsPost,
  startAcmeStack,
  startHttp01Responder,
  waitValid,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const LIMITS = {
  newOrdersPerAccountPerHour: 8,
  pendingAuthorizationsPerAccount: 20,
  certificatesPerDomainPerWeek: 3,
  failedValidationsPerAccountPerIdentifierPerHour: 2,
};

describe('ACME rate limits against an attacker', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let dir: Record<string, string>;

  before(async () => {
    stack = await startAcmeStack({ config: { acme: { rateLimits: LIMITS } } });
    responder = await startHttp01Responder(stack.http01Port);
    dir = (await directory((await newAccount(stack.directoryUrl())).client)) as Record<string, string>;
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  /** An account: acme-client, and its key and URL for raw requests. */
  type Account = { client: AcmeClient; key: Buffer; kid: string };
  const account = async (): Promise<Account> => {
    const { client, accountKey } = await newAccount(stack.directoryUrl());
    return { client, key: accountKey, kid: client.getAccountUrl() };
  };
  const post = (a: Account, url: string, payload: unknown) => jwsPost({ newNonce: dir.newNonce! }, url, payload, a.key, { kid: a.kid });
  const dnsIds = (...names: string[]) => names.map((value) => ({ type: 'dns', value }));
  const newOrder = (a: Account, ...names: string[]) => post(a, dir.newOrder!, { identifiers: dnsIds(...names) });
  const newAuthz = (a: Account, name: string) => post(a, dir.newAuthz!, { identifier: { type: 'dns', value: name } });
  const get = async (a: Account, url: string) => (await post(a, url, null)).data;
  const certificatesOf = async (orderUrls: string[]) =>
    (await stack.cf.pool.query('SELECT serial FROM certificates WHERE request_id = ANY($1)', [orderUrls.map((u) => u.split('/').pop())]))
      .rows;

  /** A pre-authorization answered with a wrong key authorization: one failed validation. */
  async function failPreAuthorization(a: Account, name: string): Promise<void> {
    const created = await newAuthz(a, name);
    assert.equal(created.status, 201, JSON.stringify(created.data));
    const ch = (created.data.challenges as Array<{ type: string; url: string; token: string }>).find((x) => x.type === 'http-01')!;
    responder.set(ch.token, 'not the key authorization');
    await post(a, ch.url, {});
    await eventually('the pre-authorization is invalid', 30_000, async () =>
      (await get(a, created.headers.location!)).status === 'invalid' ? true : undefined,
    );
  }

  it("another account's pending orders do not use up a domain's certificate limit (issued certificates count)", async () => {
    const squatter = await account();
    for (const x of ['a', 'b', 'c', 'd']) {
      const r = await newOrder(squatter, `${x}.squatted.test`);
      assert.equal(r.status, 201, `pending orders of the squatter: ${JSON.stringify(r.data)}`);
    }
    // The domain's owner still gets a certificate.
    const owner = await account();
    const created = await newOrder(owner, 'www.squatted.test');
    assert.equal(created.status, 201, JSON.stringify(created.data));
    const order = { ...created.data, url: created.headers.location! };
    await authorizeHttp01(owner.client, order, responder);
    const ready = await waitValid(owner.client, order);
    const fin = await post(owner, ready.finalize, {
      csr: acme.crypto.getPemBodyAsB64u((await csrFor(['www.squatted.test'])).csr),
    });
    assert.equal(fin.status, 200, JSON.stringify(fin.data));
    assert.equal((await waitValid(owner.client, { ...order, ...fin.data })).status, 'valid');
    assert.equal((await certificatesOf([order.url])).length, 1);
  });

  it('finalizes racing for the last certificates of a domain: exactly the limit (3 of 8) is issued, the others end rateLimited', async () => {
    const clients = [await account(), await account()];
    const orders = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const c = clients[i % 2]!;
        const created = await newOrder(c, `o${i}.exact.test`);
        assert.equal(created.status, 201, `order ${i} (no certificate issued yet): ${JSON.stringify(created.data)}`);
        const order = { ...created.data, url: created.headers.location! };
        await authorizeHttp01(c.client, order, responder);
        return { c, name: `o${i}.exact.test`, order: await waitValid(c.client, order) };
      }),
    );
    const csrs = await Promise.all(orders.map(async (o) => acme.crypto.getPemBodyAsB64u((await csrFor([o.name])).csr)));
    await Promise.all(orders.map((o, i) => post(o.c, o.order.finalize, { csr: csrs[i] })));
    const ended = await Promise.all(
      orders.map((o) =>
        eventually(`order ${o.name} ends`, 60_000, async () => {
          const x = await get(o.c, o.order.url);
          return x.status === 'valid' || x.status === 'invalid' ? x : undefined;
        }),
      ),
    );
    const valid = ended.filter((x) => x.status === 'valid');
    assert.equal(valid.length, LIMITS.certificatesPerDomainPerWeek, ended.map((x) => x.status).join(' '));
    for (const x of ended.filter((e) => e.status === 'invalid')) {
      assert.equal(x.error?.type, ACME_ERROR('rateLimited'), JSON.stringify(x));
      assert.match(x.error.detail, /too many certificates for exact\.test/);
    }
    assert.equal((await certificatesOf(orders.map((o) => o.order.url))).length, LIMITS.certificatesPerDomainPerWeek);
    // Now new orders for the domain are refused up front, with Retry-After.
    assertRateLimited(await newOrder(clients[0]!, 'late.exact.test'), /too many certificates for exact\.test/);
  });

  it('pre-authorizations count as new orders: 12 concurrent newAuthz against a limit of 8 create exactly 8', async () => {
    const client = await account();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => newAuthz(client, `pre-${i}.burst.test`)));
    assert.equal(results.filter((r) => r.status === 201).length, LIMITS.newOrdersPerAccountPerHour, results.map((r) => r.status).join(' '));
    for (const r of results.filter((x) => x.status !== 201)) assertRateLimited(r, /per account per hour/);
    assertRateLimited(await newOrder(client, 'after.burst.test'), /per account per hour/);
  });

  it('pending authorizations per account: at the limit, neither newAuthz nor new-order adds any', async () => {
    const client = await account();
    const names = Array.from({ length: LIMITS.pendingAuthorizationsPerAccount }, (_, i) => `p${i}.pending.test`);
    assert.equal((await newOrder(client, ...names)).status, 201);
    assertRateLimited(await newAuthz(client, 'one-more.pending.test'), /too many pending authorizations/);
    assertRateLimited(await newOrder(client, 'one-more.pending.test'), /too many pending authorizations/);
  });

  it('failed validations per identifier: newAuthz and challenge answers are refused too, and nothing is fetched', async () => {
    const client = await account();
    // An order for the identifier, opened before the failures: its challenge is answered last.
    const open = await newOrder(client, 'flaky.victim.test');
    assert.equal(open.status, 201, JSON.stringify(open.data));
    for (let i = 0; i < LIMITS.failedValidationsPerAccountPerIdentifierPerHour; i++)
      await failPreAuthorization(client, 'flaky.victim.test');
    assertRateLimited(await newAuthz(client, 'flaky.victim.test'), /too many failed validations for flaky\.victim\.test/);
    const authz = await get(client, open.data.authorizations[0]);
    const ch = (authz.challenges as Array<{ type: string; url: string; token: string }>).find((x) => x.type === 'http-01')!;
    assertRateLimited(await post(client, ch.url, {}), /too many failed validations for flaky\.victim\.test/);
    assert.equal((await get(client, ch.url)).status, 'pending', 'the challenge was not validated');
    assert.ok(!responder.requests.some((r) => r.path.endsWith(ch.token)), 'no validation request reached the domain');
    assert.equal((await newAuthz(client, 'steady.victim.test')).status, 201, 'other identifiers are not affected');
  });
});
