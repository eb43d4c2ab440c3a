/**
 * ACME rate limits that hold under concurrency (counted in the transaction that inserts the
 * order or account, under an advisory lock per key): new orders per account, certificates
 * per registered domain (Public Suffix List: names under two different registrable domains
 * of one public suffix are counted apart; IP identifiers count too; counted when issued —
 * test/security/acme-limits.test.ts races finalizes against it), failed validations per
 * account and identifier, and new accounts per client address. Every refusal is
 * rateLimited (429) with Retry-After.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import {
  assertRateLimited,
  directory,
  issueHttp01,
  jwsPost,
  newAccount,
  startAcmeStack,
  startHttp01Responder,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const LIMITS = {
  newOrdersPerAccountPerHour: 10,
  certificatesPerDomainPerWeek: 3,
  failedValidationsPerAccountPerIdentifierPerHour: 2,
  newAccountsPerAddressPerHour: 6,
};

describe('ACME rate limits', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let dir: Record<string, string>;
  /** Hand-made requests: acme-client would sit out a 429's Retry-After. */
  const accounts: Array<{ client: AcmeClient; key: Buffer; kid: string }> = [];

  before(async () => {
    stack = await startAcmeStack({ config: { acme: { rateLimits: LIMITS } } });
    responder = await startHttp01Responder(stack.http01Port);
    for (let i = 0; i < 3; i++) {
      const { client, accountKey } = await newAccount(stack.directoryUrl());
      accounts.push({ client, key: accountKey, kid: client.getAccountUrl() });
      dir ??= (await directory(client)) as Record<string, string>;
    }
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  type Account = (typeof accounts)[number];
  const post = (c: Account, url: string, payload: unknown) => jwsPost({ newNonce: dir.newNonce! }, url, payload, c.key, { kid: c.kid });
  const order = (c: Account, ...values: string[]) =>
    post(c, dir.newOrder!, { identifiers: values.map((value) => ({ type: /^[\d.]+$/.test(value) ? 'ip' : 'dns', value })) });

  it('32 concurrent new-orders of one account against a limit of 10: exactly 10 are created', async () => {
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => order(accounts[0]!, `burst-${i}.org-${i}.test`)));
    const created = results.filter((r) => r.status === 201);
    assert.equal(created.length, 10, results.map((r) => r.status).join(' '));
    for (const r of results.filter((x) => x.status !== 201)) assertRateLimited(r, /per account per hour/);
  });

  it('certificates per registered domain (Public Suffix List), counted when issued; IP addresses count too', async () => {
    const c = accounts[1]!;
    // example.co.uk is the registered domain of all of these; example2.co.uk is another one.
    for (const x of ['a', 'b', 'c']) await issueHttp01(c.client, responder, [`${x}.example.co.uk`]);
    assertRateLimited(await order(c, 'd.example.co.uk'), /too many certificates for example\.co\.uk/);
    assert.equal((await order(c, 'www.example2.co.uk')).status, 201, 'another registered domain under the same public suffix');
    const ip = { type: 'ip', value: '127.0.0.1' } as const;
    for (let i = 0; i < 3; i++) await issueHttp01(c.client, responder, [ip.value], { identifiers: [ip] });
    assertRateLimited(await order(c, '127.0.0.1'), /too many certificates for 127\.0\.0\.1/);
  });

  it('failed validations per account and identifier: after 2 in an hour, new orders for it are refused', async () => {
    const c = accounts[2]!;
    for (let i = 0; i < LIMITS.failedValidationsPerAccountPerIdentifierPerHour; i++) {
      const created = await order(c, 'flaky.example.test');
      assert.equal(created.status, 201, JSON.stringify(created.data));
      const authz = (await post(c, created.data.authorizations[0], null)).data;
      const ch = (authz.challenges as Array<{ type: string; url: string; token: string }>).find((x) => x.type === 'http-01')!;
      responder.set(ch.token, 'not the key authorization');
      const answered = await post(c, ch.url, {});
      assert.equal(answered.data.status, 'invalid', JSON.stringify(answered.data));
    }
    assertRateLimited(await order(c, 'flaky.example.test'), /failed validations for flaky\.example\.test/);
    assert.equal((await order(c, 'steady.example.test')).status, 201, 'other identifiers are not affected');
  });

  it('new accounts per client address', async () => {
    // 3 accounts exist from this address; the limit is 6.
    const results = await Promise.all(
      Array.from({ length: 5 }, () => {
        const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
        return jwsPost({ newNonce: dir.newNonce! }, dir.newAccount!, { termsOfServiceAgreed: true }, key, 'jwk');
      }),
    );
    assert.equal(results.filter((r) => r.status === 201).length, 3, results.map((r) => r.status).join(' '));
    for (const r of results.filter((x) => x.status !== 201)) assertRateLimited(r, /too many new accounts/);
  });
});
