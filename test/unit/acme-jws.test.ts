/**
 * ACME request authentication (src/acme/jws.ts) with real JWS made by jose (and by hand
 * where jose refuses to make them: "none", small RSA keys): every rejection of RFC 8555
 * 6.2-6.5 with its problem type and status, and the six accepted algorithms.
 */
import assert from 'node:assert/strict';
import { randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { describe, it } from 'node:test';
import { FlattenedSign, type JWK } from 'jose';
import type { AcmeAccount } from '../../src/acme/api.ts';
import { checkPublicJwk, JWS_ALGORITHMS, verifyInnerJws, verifyRequest, type JwsAuth, type JwsRequestInput } from '../../src/acme/jws.ts';
import { AcmeProblem, type AcmeProblemType } from '../../src/acme/problems.ts';

const BASE = 'https://ca.test:8443/acme';
const URL_NEW_ACCOUNT = `${BASE}/new-account`;

interface TestKey {
  alg: string;
  privateKey: KeyObject;
  jwk: JWK;
}

function keyFor(alg: string): TestKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'ES384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : alg === 'ES512'
          ? generateKeyPairSync('ec', { namedCurve: 'P-521' })
          : alg === 'EdDSA'
            ? generateKeyPairSync('ed25519')
            : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { alg, privateKey: pair.privateKey, jwk: pair.publicKey.export({ format: 'jwk' }) as JWK };
}

const keys = new Map<string, TestKey>();
function key(alg: string): TestKey {
  if (!keys.has(alg)) keys.set(alg, keyFor(alg));
  return keys.get(alg)!;
}

/** Nonces and accounts as the router would provide them, in memory. */
class Fakes {
  nonces = new Set<string>();
  accounts = new Map<string, AcmeAccount>();
  nonce(): string {
    const n = randomBytes(16).toString('base64url');
    this.nonces.add(n);
    return n;
  }
  deps = {
    consumeNonce: async (n: string) => this.nonces.delete(n),
    findAccount: async (id: string) => this.accounts.get(id) ?? null,
  };
  addAccount(k: TestKey, status: AcmeAccount['status'] = 'valid'): string {
    const id = randomBytes(8).toString('base64url');
    this.accounts.set(id, {
      id,
      alias: '',
      jwk: k.jwk,
      thumbprint: 'x',
      status,
      contact: [],
      tosAgreed: null,
      eabKid: null,
      createdAt: new Date(),
    });
    return `${BASE}/acct/${id}`;
  }
}

async function jws(k: TestKey, header: Record<string, unknown>, payload: unknown = {}, alg = k.alg): Promise<Record<string, unknown>> {
  const bytes =
    payload === '' ? new Uint8Array() : new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return (await new FlattenedSign(bytes).setProtectedHeader({ alg, ...header }).sign(k.privateKey)) as unknown as Record<string, unknown>;
}

/** A JWS whose signature is made without jose (which refuses some of what clients might send). */
function rawJws(header: Record<string, unknown>, payload: unknown, signer: (data: Buffer) => Buffer): Record<string, unknown> {
  const p = Buffer.from(JSON.stringify(header)).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return { protected: p, payload: body, signature: signer(Buffer.from(`${p}.${body}`)).toString('base64url') };
}

function input(body: unknown, over: Partial<JwsRequestInput> = {}): JwsRequestInput {
  return {
    url: URL_NEW_ACCOUNT,
    contentType: 'application/jose+json',
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    auth: 'either' as JwsAuth,
    accountIdOf: (kid) => (kid.startsWith(`${BASE}/acct/`) ? kid.slice(`${BASE}/acct/`.length) : undefined),
    ...over,
  };
}

async function rejects(p: Promise<unknown>, type: AcmeProblemType, status: number, detail?: RegExp): Promise<AcmeProblem> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => {
    caught = e;
    assert.ok(e instanceof AcmeProblem, `expected an AcmeProblem, got ${String(e)}`);
    assert.equal(e.type, type, e.detail);
    assert.equal(e.status, status, e.detail);
    if (detail) assert.match(e.detail, detail);
    return true;
  });
  return caught as AcmeProblem;
}

describe('ACME JWS: accepted requests', () => {
  for (const alg of JWS_ALGORITHMS) {
    it(`${alg}: a jwk-signed request verifies and its payload is parsed`, async () => {
      const f = new Fakes();
      const k = key(alg);
      const req = await verifyRequest(
        input(await jws(k, { jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, { contact: ['mailto:a@example.com'] })),
        f.deps,
      );
      assert.deepEqual(req.payload, { contact: ['mailto:a@example.com'] });
      assert.equal(req.postAsGet, false);
      assert.equal(req.url, URL_NEW_ACCOUNT);
      assert.equal(req.account, undefined);
      assert.equal(req.jwk?.kty, k.jwk.kty);
      assert.equal(req.protectedHeader.alg, alg);
    });
  }

  it('kid: the account is looked up and returned; an empty payload is POST-as-GET', async () => {
    const f = new Fakes();
    const k = key('ES256');
    const kid = f.addAccount(k);
    const url = `${BASE}/order/1`;
    const req = await verifyRequest(input(await jws(k, { kid, nonce: f.nonce(), url }, ''), { url, auth: 'kid' }), f.deps);
    assert.equal(req.postAsGet, true);
    assert.equal(req.payload, undefined);
    assert.equal(req.account?.id, kid.split('/').pop());
    assert.equal(req.jwk, undefined);
  });

  it('checkPublicJwk keeps only the RFC 7638 members and computes the thumbprint', async () => {
    const k = key('ES256');
    const { jwk, thumbprint } = await checkPublicJwk({ ...k.jwk, kid: 'mine', use: 'sig', alg: 'ES256' });
    assert.deepEqual(Object.keys(jwk).sort(), ['crv', 'kty', 'x', 'y']);
    assert.match(thumbprint, /^[A-Za-z0-9_-]{43}$/);
  });
});

describe('ACME JWS: rejected requests', () => {
  const k = key('ES256');
  const signed = (f: Fakes, header: Record<string, unknown> = {}, payload: unknown = {}) =>
    jws(k, { jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT, ...header }, payload);

  it('Content-Type other than application/jose+json: malformed 415', async () => {
    const f = new Fakes();
    const body = await signed(f);
    await rejects(verifyRequest(input(body, { contentType: 'application/json' }), f.deps), 'malformed', 415);
    await rejects(verifyRequest(input(body, { contentType: undefined }), f.deps), 'malformed', 415);
    // Parameters are fine.
    await verifyRequest(input(body, { contentType: 'application/jose+json; charset=utf-8' }), f.deps);
  });

  it('a body that is not JSON, a compact JWS, a general JWS, an unprotected header: malformed', async () => {
    const f = new Fakes();
    const body = (await signed(f)) as { protected: string; payload: string; signature: string };
    await rejects(verifyRequest(input('{not json'), f.deps), 'malformed', 400, /not JSON/);
    await rejects(verifyRequest(input(`${body.protected}.${body.payload}.${body.signature}`), f.deps), 'malformed', 400);
    await rejects(
      verifyRequest(input(JSON.stringify(`${body.protected}.${body.payload}.${body.signature}`)), f.deps),
      'malformed',
      400,
      /compact/,
    );
    const general = { payload: body.payload, signatures: [{ protected: body.protected, signature: body.signature }] };
    await rejects(verifyRequest(input(general), f.deps), 'malformed', 400, /general/);
    await rejects(verifyRequest(input({ ...body, header: { kid: 'x' } }), f.deps), 'malformed', 400, /unprotected/);
    await rejects(verifyRequest(input({ ...body, signature: 'not base64!' }), f.deps), 'malformed', 400);
    await rejects(verifyRequest(input({ ...body, protected: Buffer.from('nope').toString('base64url') }), f.deps), 'malformed', 400);
  });

  it('alg "none", MAC algorithms and unsupported ones: badSignatureAlgorithm listing the accepted ones', async () => {
    const f = new Fakes();
    const none = rawJws({ alg: 'none', jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, () => Buffer.from('x'));
    const p = await rejects(verifyRequest(input(none), f.deps), 'badSignatureAlgorithm', 400);
    assert.deepEqual(p.algorithms, [...JWS_ALGORITHMS]);
    assert.deepEqual(p.toJSON().algorithms, [...JWS_ALGORITHMS]);
    // As RFC 7518 3.6 makes it: an empty signature (before: malformed "no signature").
    const noneEmpty = rawJws({ alg: 'none', jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, () => Buffer.alloc(0));
    assert.equal(noneEmpty.signature, '');
    await rejects(verifyRequest(input(noneEmpty), f.deps), 'badSignatureAlgorithm', 400, /"none"/);
    const es256Empty = rawJws({ alg: 'ES256', jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, () => Buffer.alloc(0));
    await rejects(verifyRequest(input(es256Empty), f.deps), 'malformed', 400, /no signature/);
    const hs = await new FlattenedSign(new TextEncoder().encode('{}'))
      .setProtectedHeader({ alg: 'HS256', jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT })
      .sign(randomBytes(32));
    await rejects(verifyRequest(input(hs), f.deps), 'badSignatureAlgorithm', 400);
    const rsa = key('RS256');
    const rs384 = await jws(rsa, { jwk: rsa.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, 'RS384');
    await rejects(verifyRequest(input(rs384), f.deps), 'badSignatureAlgorithm', 400);
  });

  it('an algorithm that does not fit the key (ES256 with a P-384 key): badSignatureAlgorithm', async () => {
    const f = new Fakes();
    const p384 = key('ES384');
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', jwk: p384.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT })).toString(
      'base64url',
    );
    const body = { protected: header, payload: Buffer.from('{}').toString('base64url'), signature: randomBytes(64).toString('base64url') };
    await rejects(verifyRequest(input(body), f.deps), 'badSignatureAlgorithm', 400, /P-256/);
  });

  it('no alg: malformed; crit/b64: malformed', async () => {
    const f = new Fakes();
    const noAlg = rawJws({ jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, () => Buffer.from('x'));
    await rejects(verifyRequest(input(noAlg), f.deps), 'malformed', 400, /alg/);
    const crit = rawJws({ alg: 'ES256', crit: ['exp'], exp: 1, jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT }, {}, () =>
      Buffer.from('x'),
    );
    await rejects(verifyRequest(input(crit), f.deps), 'malformed', 400, /crit/);
  });

  it('missing, unknown and replayed nonces: badNonce', async () => {
    const f = new Fakes();
    await rejects(verifyRequest(input(await jws(k, { jwk: k.jwk, url: URL_NEW_ACCOUNT })), f.deps), 'badNonce', 400);
    await rejects(verifyRequest(input(await signed(f, { nonce: randomBytes(16).toString('base64url') })), f.deps), 'badNonce', 400);
    const once = input(await signed(f));
    await verifyRequest(once, f.deps);
    await rejects(verifyRequest(once, f.deps), 'badNonce', 400);
  });

  it('missing url: malformed; a url other than the request URL: unauthorized', async () => {
    const f = new Fakes();
    const noUrl = await jws(k, { jwk: k.jwk, nonce: f.nonce() });
    await rejects(verifyRequest(input(noUrl), f.deps), 'malformed', 400, /url/);
    await rejects(verifyRequest(input(await signed(f, { url: `${BASE}/new-order` })), f.deps), 'unauthorized', 403);
    await rejects(verifyRequest(input(await signed(f, { url: `${URL_NEW_ACCOUNT}/` })), f.deps), 'unauthorized', 403);
  });

  it('both or neither of jwk and kid, and the wrong one for the resource: malformed', async () => {
    const f = new Fakes();
    const kid = f.addAccount(k);
    await rejects(verifyRequest(input(await signed(f, { kid })), f.deps), 'malformed', 400, /exactly one/);
    await rejects(verifyRequest(input(await jws(k, { nonce: f.nonce(), url: URL_NEW_ACCOUNT })), f.deps), 'malformed', 400, /exactly one/);
    await rejects(verifyRequest(input(await signed(f), { auth: 'kid' }), f.deps), 'malformed', 400, /kid/);
    const byKid = await jws(k, { kid, nonce: f.nonce(), url: URL_NEW_ACCOUNT });
    await rejects(verifyRequest(input(byKid, { auth: 'jwk' }), f.deps), 'malformed', 400, /jwk/);
  });

  it('a kid that names no account of this directory: accountDoesNotExist', async () => {
    const f = new Fakes();
    const unknown = await jws(k, { kid: `${BASE}/acct/nobody`, nonce: f.nonce(), url: URL_NEW_ACCOUNT });
    await rejects(verifyRequest(input(unknown), f.deps), 'accountDoesNotExist', 400);
    const kid = f.addAccount(k);
    const foreign = await jws(k, { kid: kid.replace(BASE, 'https://other.test/acme'), nonce: f.nonce(), url: URL_NEW_ACCOUNT });
    await rejects(verifyRequest(input(foreign), f.deps), 'accountDoesNotExist', 400);
  });

  it('a deactivated account: unauthorized', async () => {
    const f = new Fakes();
    const kid = f.addAccount(k, 'deactivated');
    const req = input(await jws(k, { kid, nonce: f.nonce(), url: URL_NEW_ACCOUNT }));
    await rejects(verifyRequest(req, f.deps), 'unauthorized', 403, /deactivated/);
  });

  it('a jwk with private key material: malformed; an RSA key under 2048 bits: badPublicKey', async () => {
    const f = new Fakes();
    const privateJwk = k.privateKey.export({ format: 'jwk' }) as JWK;
    await rejects(verifyRequest(input(await signed(f, { jwk: privateJwk })), f.deps), 'malformed', 400, /private/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const smallJws = rawJws(
      { alg: 'RS256', jwk: small.publicKey.export({ format: 'jwk' }) as JWK, nonce: f.nonce(), url: URL_NEW_ACCOUNT },
      {},
      (data) => nodeSign('sha256', data, small.privateKey),
    );
    await rejects(verifyRequest(input(smallJws), f.deps), 'badPublicKey', 400, /1024/);
    await rejects(verifyRequest(input(await signed(f, { jwk: { kty: 'oct', kk: 'x' } })), f.deps), 'badPublicKey', 400);
    await rejects(verifyRequest(input(await signed(f, { jwk: { ...k.jwk, x: k.jwk.y, y: k.jwk.x } })), f.deps), 'badPublicKey', 400);
  });

  it('a signature by another key: malformed', async () => {
    const f = new Fakes();
    const other = keyFor('ES256');
    const forged = await jws(other, { jwk: k.jwk, nonce: f.nonce(), url: URL_NEW_ACCOUNT });
    await rejects(verifyRequest(input(forged), f.deps), 'malformed', 400, /signature/);
    const kid = f.addAccount(k);
    const byKid = await jws(other, { kid, nonce: f.nonce(), url: URL_NEW_ACCOUNT });
    await rejects(verifyRequest(input(byKid), f.deps), 'malformed', 400, /signature/);
  });

  it('a payload that is not JSON, or not an object: malformed', async () => {
    const f = new Fakes();
    await rejects(verifyRequest(input(await signed(f, {}, '{oops')), f.deps), 'malformed', 400, /JSON/);
    await rejects(verifyRequest(input(await signed(f, {}, [1, 2])), f.deps), 'malformed', 400, /object/);
  });
});

describe('ACME JWS: the inner JWS of a key change', () => {
  const url = `${BASE}/key-change`;
  const next = key('EdDSA');

  it('verifies with the new key and returns it with the payload', async () => {
    const inner = await jws(next, { jwk: next.jwk, url }, { account: `${BASE}/acct/1`, oldKey: key('ES256').jwk });
    const r = await verifyInnerJws(inner, url);
    assert.equal(r.jwk.kty, 'OKP');
    assert.equal(r.payload.account, `${BASE}/acct/1`);
  });

  it('refuses a kid, a missing jwk, another url and a bad signature', async () => {
    await rejects(verifyInnerJws(await jws(next, { jwk: next.jwk, kid: 'x', url }), url), 'malformed', 400, /kid/);
    await rejects(verifyInnerJws(await jws(next, { url }), url), 'malformed', 400, /jwk/);
    await rejects(verifyInnerJws(await jws(next, { jwk: next.jwk, url: `${BASE}/new-order` }), url), 'malformed', 400, /url/);
    await rejects(verifyInnerJws(await jws(key('EdDSA'), { jwk: keyFor('EdDSA').jwk, url }), url), 'malformed', 400, /signature/);
    await rejects(verifyInnerJws('a.b.c', url), 'malformed', 400, /compact/);
  });
});
