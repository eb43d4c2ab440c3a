/**
 * RFC 8555 6.2 (issue 16 item 9): a JWS whose "alg" is "none" or a MAC algorithm (HS256,
 * HS384, HS512) is never verified with it; the answer is badSignatureAlgorithm with the
 * list of accepted algorithms in `algorithms`, and nothing is created. The requests are
 * raw JWS (no ACME client sends these on purpose); the account is made with acme-client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { exportJWK, FlattenedSign } from 'jose';
import {
  ACME_ERROR,
  directory,
  fetchAcme,
  freshNonce,
  newAccount,
  startAcmeStack,
  type AcmeStack,
  type RawResponse,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const ACCEPTED = ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'];

describe('ACME: "none" and MAC signatures are refused with badSignatureAlgorithm', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let dir: Record<string, string>;
  let kid: string;
  let accountKey: Buffer;

  before(async () => {
    stack = await startAcmeStack();
    const acct = await newAccount(stack.directoryUrl());
    kid = acct.client.getAccountUrl();
    accountKey = acct.accountKey;
    dir = (await directory(acct.client)) as Record<string, string>;
  });
  after(async () => {
    await stack?.stop();
  });

  const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const send = (url: string, jws: unknown) =>
    fetchAcme(url, { method: 'POST', body: JSON.stringify(jws), headers: { 'Content-Type': 'application/jose+json' } });
  const count = async (table: string) => (await stack.cf.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

  function assertRefused(r: RawResponse, alg: string): void {
    assert.equal(r.status, 400, JSON.stringify(r.data));
    assert.equal(r.data.type, ACME_ERROR('badSignatureAlgorithm'), JSON.stringify(r.data));
    assert.deepEqual(r.data.algorithms, ACCEPTED);
    assert.match(r.data.detail, new RegExp(`"${alg}"`));
  }

  /** alg "none": the signature is empty (RFC 7518 3.6), or anything at all. */
  async function unsigned(url: string, payload: unknown, keyHeader: Record<string, unknown>, signature: string) {
    const header = { alg: 'none', nonce: await freshNonce(dir.newNonce!), url, ...keyHeader };
    return send(url, { protected: b64u(header), payload: b64u(payload), signature });
  }

  it('alg "none" on new-account (jwk): refused, listing the accepted algorithms; no account is created', async () => {
    const jwk = await exportJWK(createPublicKey(createPrivateKey(accountKey)));
    const before = await count('acme_accounts');
    for (const signature of ['', 'AAAA']) {
      assertRefused(await unsigned(dir.newAccount!, { termsOfServiceAgreed: true }, { jwk }, signature), 'none');
    }
    assert.equal(await count('acme_accounts'), before);
  });

  it('alg "none" on new-order (kid): refused; no order is created', async () => {
    const before = await count('acme_orders');
    const payload = { identifiers: [{ type: 'dns', value: 'none.example.test' }] };
    for (const signature of ['', 'AAAA']) assertRefused(await unsigned(dir.newOrder!, payload, { kid }, signature), 'none');
    assert.equal(await count('acme_orders'), before);
  });

  it('HS256, HS384, HS512 (a MAC "signed" with a key the attacker picks): refused; no order is created', async () => {
    const before = await count('acme_orders');
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const header = { alg, nonce: await freshNonce(dir.newNonce!), url: dir.newOrder!, kid };
      const body = new TextEncoder().encode(JSON.stringify({ identifiers: [{ type: 'dns', value: 'mac.example.test' }] }));
      const jws = await new FlattenedSign(body).setProtectedHeader(header).sign(randomBytes(64));
      assertRefused(await send(dir.newOrder!, jws), alg);
    }
    assert.equal(await count('acme_orders'), before);
  });
});
