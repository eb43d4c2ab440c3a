/**
 * The ACME resource handlers (src/acme/orders.ts) against a fake registration authority:
 * they parse and check the request, authorize it (the account owns what it names), hand
 * the RA what it needs and render its answer as RFC 8555 JSON. No server, database or
 * Temporal: the RA's side is tested by the integration tests.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { describe, it } from 'node:test';
import type { Context } from 'koa';
import type { AcmeAccount, AcmeDeps, Route, VerifiedRequest } from '../../src/acme/api.ts';
import { orderRoutes } from '../../src/acme/orders.ts';
import { AcmeProblem } from '../../src/acme/problems.ts';
import { makeDirectory } from '../../src/acme/router.ts';
import { loadConfig } from '../../src/config/index.ts';
import { CaError } from '../../src/core/errors.ts';
import type { AuthzRow, OrderRow } from '../../src/db/repos/acme-orders.ts';
import { buildCsr } from '../../src/pki/index.ts';
import type { AcmeRa } from '../../src/ra/acme.ts';

const config = loadConfig({ CERTFLOW_HOME: '/tmp/certflow-unit-acme-handlers' });
const dir = makeDirectory('https://ca.test', config.acme.aliases.get('')!);
const accountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const account: AcmeAccount = {
  id: 'acct1',
  alias: '',
  jwk: accountKey.publicKey.export({ format: 'jwk' }) as AcmeAccount['jwk'],
  thumbprint: 'thumb',
  status: 'valid',
  contact: [],
  tosAgreed: null,
  eabKid: null,
  createdAt: new Date(),
};

/** A fake RA: each method the test does not give fails the test when called. */
function fakeRa(methods: Partial<AcmeRa>): { ra: AcmeRa; calls: Array<[string, unknown[]]> } {
  const calls: Array<[string, unknown[]]> = [];
  const ra = new Proxy(methods, {
    get(target, name: string) {
      return (...args: unknown[]) => {
        calls.push([name, args]);
        const fn = (target as Record<string, (...a: unknown[]) => unknown>)[name];
        if (!fn) throw new Error(`the handler called ra.${name}, which this test did not expect`);
        return fn(...args);
      };
    },
  }) as AcmeRa;
  return { ra, calls };
}

/** The part of a Koa context the handlers use. */
function fakeCtx(params: Record<string, string> = {}) {
  const headers: Record<string, string> = {};
  const ctx = {
    params,
    query: {},
    status: 200,
    body: undefined as unknown,
    type: '',
    headers,
    set: (name: string, value: string) => void (headers[name] = value),
    append: (name: string, value: string) => void (headers[name] = headers[name] ? `${headers[name]}, ${value}` : value),
  };
  return ctx;
}

function handler(ra: AcmeRa, method: string, path: string): Route['handler'] {
  const deps = { config, ra, log: console } as unknown as AcmeDeps;
  const route = orderRoutes(deps).find((r) => r.method === method && r.path === path);
  assert.ok(route, path);
  return route.handler;
}

const signed = (payload: unknown): VerifiedRequest => ({
  url: 'https://ca.test/acme/x',
  payload,
  postAsGet: payload === undefined,
  protectedHeader: {},
  account,
});

async function problemOf(p: Promise<unknown>): Promise<AcmeProblem> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AcmeProblem, String(e));
    return e;
  }
  assert.fail('no problem was thrown');
}

function order(over: Partial<OrderRow> = {}): OrderRow {
  const now = new Date();
  return {
    id: 'order1',
    accountId: account.id,
    alias: '',
    status: 'pending',
    identifiers: [{ type: 'dns', value: 'a.example.test' }],
    authzIds: ['authz1'],
    expiresAt: new Date(Date.now() + 3600_000),
    profile: 'tls-server',
    acmeProfile: null,
    replaces: null,
    error: null,
    serial: null,
    createdAt: now,
    updatedAt: now,
    ...over,
  };
}

function authz(over: Partial<AuthzRow> = {}): AuthzRow {
  return {
    id: 'authz1',
    accountId: account.id,
    alias: '',
    identifier: { type: 'dns', value: 'a.example.test' },
    wildcard: false,
    status: 'pending',
    expiresAt: new Date(Date.now() + 3600_000),
    ownerOrderId: 'order1',
    ownerOrderStatus: 'pending',
    validatedAt: null,
    challenges: [{ id: 'ch1', authzId: 'authz1', type: 'http-01', token: 'tok', status: 'pending', validatedAt: null, error: null }],
    ...over,
  } as AuthzRow;
}

describe('ACME handlers against a fake RA', () => {
  it('new-order: normalized identifiers with their challenges go to the RA; the answer is the order it returns (201 + Location)', async () => {
    const { ra, calls } = fakeRa({ newOrder: async () => order({ identifiers: [{ type: 'dns', value: 'a.example.test' }] }) });
    const ctx = fakeCtx();
    await handler(ra, 'POST', '/new-order')(
      ctx as unknown as Context,
      signed({
        identifiers: [
          { type: 'dns', value: 'A.Example.Test.' },
          { type: 'dns', value: '*.wild.example.test' },
          { type: 'ip', value: '2001:db8:0:0::1' },
        ],
      }),
      dir,
    );
    const [name, [who, req]] = calls[0]! as [
      string,
      [{ accountId: string; accountUri: string }, { identifiers: unknown[]; profile: string }],
    ];
    assert.equal(name, 'newOrder');
    assert.deepEqual(who.accountId, 'acct1');
    assert.equal(who.accountUri, 'https://ca.test/acme/acct/acct1');
    assert.equal(req.profile, 'tls-server');
    assert.deepEqual(req.identifiers, [
      {
        identifier: { type: 'dns', value: 'a.example.test' },
        base: { type: 'dns', value: 'a.example.test' },
        wildcard: false,
        challengeTypes: ['http-01', 'dns-01', 'tls-alpn-01'],
      },
      {
        identifier: { type: 'dns', value: '*.wild.example.test' },
        base: { type: 'dns', value: 'wild.example.test' },
        wildcard: true,
        challengeTypes: ['dns-01'],
      },
      {
        identifier: { type: 'ip', value: '2001:db8::1' },
        base: { type: 'ip', value: '2001:db8::1' },
        wildcard: false,
        challengeTypes: ['http-01', 'tls-alpn-01'],
      },
    ]);
    assert.equal(ctx.status, 201);
    assert.equal(ctx.headers.Location, 'https://ca.test/acme/order/order1');
    const body = ctx.body as { status: string; authorizations: string[]; finalize: string };
    assert.equal(body.status, 'pending');
    assert.deepEqual(body.authorizations, ['https://ca.test/acme/authz/authz1']);
    assert.equal(body.finalize, 'https://ca.test/acme/order/order1/finalize');
  });

  it('new-order: every bad identifier is one subproblem, and the RA is never asked', async () => {
    const { ra, calls } = fakeRa({});
    const p = await problemOf(
      handler(ra, 'POST', '/new-order')(
        fakeCtx() as unknown as Context,
        signed({
          identifiers: [
            { type: 'dns', value: 'no_underscores.example' },
            { type: 'email', value: 'x@y.test' },
          ],
        }),
        dir,
      ),
    );
    assert.equal(p.type, 'compound');
    assert.equal(p.subproblems?.length, 2);
    assert.deepEqual(calls, []);
  });

  it('finalize: a CSR whose names differ from the order is badCSR before the RA is asked; a matching one goes to the RA', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = (dns: string[]) =>
      Buffer.from(buildCsr({ subject: 'CN=a.example.test', sans: { dns, ip: [], email: [], uri: [] }, privateKey: key })).toString(
        'base64url',
      );
    const ready = order({ status: 'ready' });
    const refused = fakeRa({ getOrder: async () => ready });
    await assert.rejects(
      handler(refused.ra, 'POST', '/order/:id/finalize')(
        fakeCtx({ id: 'order1' }) as unknown as Context,
        signed({ csr: csr(['a.example.test', 'b.example.test']) }),
        dir,
      ),
      (e: unknown) => CaError.is(e, 'badCSR') && /b\.example\.test/.test(e.message),
    );
    assert.deepEqual(
      refused.calls.map(([n]) => n),
      ['getOrder'],
    );

    // Still processing when the answer wait ends: 200 "processing" with Retry-After.
    const { ra, calls } = fakeRa({ getOrder: async () => ready, finalize: async () => undefined });
    const ctx = fakeCtx({ id: 'order1' });
    const good = csr(['a.example.test']);
    await handler(ra, 'POST', '/order/:id/finalize')(ctx as unknown as Context, signed({ csr: good }), dir);
    const [, [orderId, der]] = calls[1]! as [string, [string, Uint8Array]];
    assert.equal(orderId, 'order1');
    assert.equal(Buffer.from(der).toString('base64url'), good);
    assert.equal((ctx.body as { status: string }).status, 'processing');
    assert.equal(ctx.headers['Retry-After'], '1');
  });

  it("finalize of an order that is not ready is orderNotReady; of another account's order unauthorized", async () => {
    const pending = fakeRa({ getOrder: async () => order({ status: 'pending' }) });
    const notReady = await problemOf(
      handler(pending.ra, 'POST', '/order/:id/finalize')(fakeCtx({ id: 'order1' }) as unknown as Context, signed({ csr: 'AA' }), dir),
    );
    assert.equal(notReady.type, 'orderNotReady');
    const foreign = fakeRa({ getOrder: async () => order({ accountId: 'someone-else', status: 'ready' }) });
    const unauthorized = await problemOf(
      handler(foreign.ra, 'POST', '/order/:id/finalize')(fakeCtx({ id: 'order1' }) as unknown as Context, signed({ csr: 'AA' }), dir),
    );
    assert.equal(unauthorized.type, 'unauthorized');
  });

  it("challenge: the RA's outcome is the answer (valid, with its time); a repeated answer reads the state without asking the RA", async () => {
    const validated = '2026-01-02T03:04:05.000Z';
    const { ra, calls } = fakeRa({
      getAuthz: async () => authz(),
      respondChallenge: async () => ({ status: 'valid' as const, validated }),
    });
    const ctx = fakeCtx({ authz: 'authz1', id: 'ch1' });
    await handler(ra, 'POST', '/chall/:authz/:id')(ctx as unknown as Context, signed({}), dir);
    assert.deepEqual(
      calls.map(([n]) => n),
      ['getAuthz', 'respondChallenge'],
    );
    assert.equal((calls[1]![1] as unknown[])[2], 'ch1');
    assert.deepEqual(ctx.body, { type: 'http-01', url: 'https://ca.test/acme/chall/authz1/ch1', token: 'tok', status: 'valid', validated });
    assert.equal(ctx.headers.Link, '<https://ca.test/acme/authz/authz1>;rel="up"');

    const again = fakeRa({
      getAuthz: async () =>
        authz({
          challenges: [
            { id: 'ch1', authzId: 'authz1', type: 'http-01', token: 'tok', status: 'processing', validatedAt: null, error: null },
          ],
        } as Partial<AuthzRow>),
    });
    const ctx2 = fakeCtx({ authz: 'authz1', id: 'ch1' });
    await handler(again.ra, 'POST', '/chall/:authz/:id')(ctx2 as unknown as Context, signed({}), dir);
    assert.equal((ctx2.body as { status: string }).status, 'processing');
    assert.equal(ctx2.headers['Retry-After'], '1');
    assert.deepEqual(
      again.calls.map(([n]) => n),
      ['getAuthz'],
    );
  });

  it("certificate: the chain as PEM for its account; another account's certificate is refused", async () => {
    const { ra } = fakeRa({
      getCertificate: async () => ({ certDer: Buffer.from([1, 2, 3]), requester: 'acct1', chain: [Buffer.from([4, 5])], alternates: [] }),
    });
    const ctx = fakeCtx({ serial: '0abc' });
    await handler(ra, 'POST', '/cert/:serial')(ctx as unknown as Context, signed(undefined), dir);
    assert.equal(ctx.type, 'application/pem-certificate-chain');
    assert.equal((ctx.body as string).match(/BEGIN CERTIFICATE/g)?.length, 2);
    const foreign = fakeRa({ getCertificate: async () => ({ certDer: Buffer.from([1]), requester: 'other', chain: [], alternates: [] }) });
    const p = await problemOf(
      handler(foreign.ra, 'POST', '/cert/:serial')(fakeCtx({ serial: '0abc' }) as unknown as Context, signed(undefined), dir),
    );
    assert.equal(p.type, 'unauthorized');
  });
});
