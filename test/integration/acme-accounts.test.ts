/**
 * The ACME shell against a running certflow (worker + server): directory and nonces,
 * accounts with the npm `acme-client` (create, find, update, key change, deactivate),
 * hand-made JWS for what a well-behaved client never sends (replayed nonces, wrong URLs,
 * unknown accounts, bad signatures, unsupported algorithms), external account binding
 * with keys from `certflow eab create`, terms of service re-agreement, revocation with
 * the certificate's key and renewal information (RFC 9773).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import acme from 'acme-client';
import { FlattenedSign, type JWK } from 'jose';
import { ariCertId } from '../../src/acme/ari.ts';
import { describeCertificate } from '../../src/pki/index.ts';
import { createInstance, opensslCsr, type TestInstance } from '../helpers/certflow.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: Record<string, unknown>;
  peerCert?: X509Certificate;
}

interface Signer {
  privateKey: KeyObject;
  jwk: JWK;
  alg: string;
}

function ecKey(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'ES256' };
}

describe('ACME accounts, nonces and the protocol shell', () => {
  let cf: TestInstance;
  let ca: string;
  let origin: string;
  const TOS = 'https://ca.test/tos/v1';

  /** One HTTPS request trusting only certflow's root. */
  function request(url: string, opts: { method?: string; body?: string; type?: string } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      // agent: false: a new connection each time, so that the server's certificate is always there to read.
      const headers = opts.type ? { 'Content-Type': opts.type } : {};
      const req = https.request(url, { method: opts.method ?? 'GET', ca, headers, agent: false }, (res) => {
        // The socket is detached from the response once it ends: take the certificate now.
        const raw = (res.socket as TLSSocket | null)?.getPeerCertificate()?.raw;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = body ? JSON.parse(body) : {};
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json, peerCert: raw ? new X509Certificate(raw) : undefined });
        });
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  const dirUrl = (alias = '') => `${origin}/acme${alias ? `/${alias}` : ''}`;

  async function freshNonce(alias = ''): Promise<string> {
    const r = await request(`${dirUrl(alias)}/new-nonce`, { method: 'HEAD' });
    return String(r.headers['replay-nonce']);
  }

  /** A flattened JWS for `url`, by `key` with its jwk or with `kid`. */
  async function jws(
    url: string,
    key: Signer,
    payload: unknown,
    h: { kid?: string; nonce?: string; alg?: string; alias?: string } = {},
  ): Promise<string> {
    const header: Record<string, unknown> = { alg: h.alg ?? key.alg, nonce: h.nonce ?? (await freshNonce(h.alias)), url };
    if (h.kid) header.kid = h.kid;
    else header.jwk = key.jwk;
    const bytes = payload === '' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    return JSON.stringify(await new FlattenedSign(bytes).setProtectedHeader(header).sign(key.privateKey));
  }

  const post = (url: string, body: string, type = 'application/jose+json') => request(url, { method: 'POST', body, type });

  async function newAccount(key: Signer, payload: Record<string, unknown> = {}, alias = ''): Promise<Reply> {
    const url = `${dirUrl(alias)}/new-account`;
    return post(url, await jws(url, key, payload, { alias }));
  }

  /** A problem response: status, type, and the headers every ACME response has. */
  function assertProblem(r: Reply, status: number, type: string): void {
    assert.equal(r.status, status, r.body);
    assert.equal(r.headers['content-type'], 'application/problem+json', r.body);
    assert.equal(r.json.type, `urn:ietf:params:acme:error:${type}`, r.body);
    assert.equal(r.json.status, status);
    assert.match(String(r.headers['replay-nonce']), /^[A-Za-z0-9_-]{43}$/, 'a fresh nonce comes with every error');
    assert.match(String(r.headers.link), /rel="index"/);
  }

  function client(accountKey: Buffer, more: Partial<ConstructorParameters<typeof acme.Client>[0]> = {}, alias = '') {
    return new acme.Client({ directoryUrl: `${dirUrl(alias)}/directory`, accountKey, backoffAttempts: 1, ...more });
  }

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-acme-accounts-${process.pid}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        acme: {
          aliases: [
            { name: 'eab', eabRequired: true },
            { name: 'tos', termsOfService: TOS, website: 'https://ca.test' },
          ],
        },
      }),
    );
    cf = await createInstance({ CERTFLOW_CONFIG: configFile });
    await cf.startWorker();
    await cf.startServer();
    ca = await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8');
    origin = `https://localhost:${cf.httpsPort}`;
    acme.setLogger(() => {});
    acme.axios.defaults.httpsAgent = new https.Agent({ ca });
  });
  after(async () => cf?.cleanup());

  describe('directory and nonces', () => {
    it('GET /acme/directory lists the resources under the Host the client used', async () => {
      const r = await request(`${dirUrl()}/directory`);
      assert.equal(r.status, 200, r.body);
      for (const [k, path] of Object.entries({
        newNonce: 'new-nonce',
        newAccount: 'new-account',
        newOrder: 'new-order',
        newAuthz: 'new-authz',
        revokeCert: 'revoke-cert',
        keyChange: 'key-change',
        renewalInfo: 'renewal-info',
      })) {
        assert.equal(r.json[k], `${dirUrl()}/${path}`, k);
      }
      assert.deepEqual((r.json.meta as Record<string, unknown>).externalAccountRequired, false);
      assert.ok((r.json.meta as { profiles: Record<string, string> }).profiles['tls-server']);
      assert.match(String(r.headers['replay-nonce']), /^[A-Za-z0-9_-]{43}$/);
      assert.equal(r.headers.link, undefined, 'no Link rel="index" on the directory itself');
      const byIp = await request(`https://127.0.0.1:${cf.httpsPort}/acme/directory`);
      assert.equal(byIp.json.newAccount, `https://127.0.0.1:${cf.httpsPort}/acme/new-account`);
    });

    it('each alias has its own directory; unknown paths and methods are problems', async () => {
      const eab = await request(`${dirUrl('eab')}/directory`);
      assert.equal(eab.json.newAccount, `${dirUrl('eab')}/new-account`);
      assert.equal((eab.json.meta as Record<string, unknown>).externalAccountRequired, true);
      const tos = await request(`${dirUrl('tos')}/directory`);
      assert.deepEqual(tos.json.meta, {
        termsOfService: TOS,
        website: 'https://ca.test',
        caaIdentities: [],
        externalAccountRequired: false,
        profiles: (tos.json.meta as { profiles: unknown }).profiles,
      });
      assertProblem(await request(`${dirUrl()}/nope/directory`), 404, 'malformed');
      const wrongMethod = await request(`${dirUrl('eab')}/new-account`);
      assertProblem(wrongMethod, 405, 'malformed');
      assert.equal(wrongMethod.headers.allow, 'POST');
      assert.match(String(wrongMethod.headers.link), new RegExp(`<${dirUrl('eab')}/directory>;rel="index"`));
    });

    it('new-nonce: HEAD 200, GET 204, never cached, each nonce different', async () => {
      const head = await request(`${dirUrl()}/new-nonce`, { method: 'HEAD' });
      const get = await request(`${dirUrl()}/new-nonce`);
      assert.equal(head.status, 200);
      assert.equal(get.status, 204);
      for (const r of [head, get]) {
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.match(String(r.headers['replay-nonce']), /^[A-Za-z0-9_-]{43}$/);
        assert.equal(r.headers.link, `<${dirUrl()}/directory>;rel="index"`);
      }
      assert.notEqual(head.headers['replay-nonce'], get.headers['replay-nonce']);
      assert.equal(head.headers['content-length'], '0');
    });

    it("new-nonce: a keep-alive client (Node's, as acme-client) keeps its connection for the signed request after the HEAD", async () => {
      const agent = new https.Agent({ ca, keepAlive: true, maxSockets: 1 });
      const reused: boolean[] = [];
      const send = (method: string, url: string) =>
        new Promise<void>((resolve, reject) => {
          const req = https.request(url, { method, agent, headers: { 'Content-Type': 'application/jose+json' } }, (res) => {
            reused.push(req.reusedSocket);
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
          req.end(method === 'POST' ? '{}' : undefined);
        });
      try {
        await send('HEAD', `${dirUrl()}/new-nonce`);
        await send('POST', `${dirUrl()}/new-account`);
        await send('HEAD', `${dirUrl()}/new-nonce`);
      } finally {
        agent.destroy();
      }
      assert.deepEqual(reused, [false, true, true]);
    });
  });

  describe('accounts', () => {
    it('new-account: 201 with Location for a new key, 200 with the same Location for a known one', async () => {
      const key = ecKey();
      const created = await newAccount(key, { contact: ['mailto:ops@example.com'], termsOfServiceAgreed: true });
      assert.equal(created.status, 201, created.body);
      assert.match(String(created.headers.location), new RegExp(`^${dirUrl()}/acct/[A-Za-z0-9_-]+$`));
      assert.equal(created.json.status, 'valid');
      assert.deepEqual(created.json.contact, ['mailto:ops@example.com']);
      assert.equal(created.json.orders, `${created.headers.location}/orders`);
      assert.equal(created.headers['cache-control'], 'no-store');
      assert.match(String(created.headers['replay-nonce']), /^[A-Za-z0-9_-]{43}$/);
      const again = await newAccount(key, {});
      assert.equal(again.status, 200);
      assert.equal(again.headers.location, created.headers.location);
      assertProblem(await newAccount(ecKey(), { onlyReturnExisting: true }), 400, 'accountDoesNotExist');
      assertProblem(await newAccount(ecKey(), { contact: ['tel:+1555'] }), 400, 'unsupportedContact');
      assertProblem(await newAccount(ecKey(), { contact: ['mailto:a@example.com?subject=x'] }), 400, 'invalidContact');
    });

    it('acme-client: create, find with onlyReturnExisting, update, key change, deactivate', async () => {
      const oldKey = await acme.crypto.createPrivateEcdsaKey();
      const c = client(oldKey);
      const account = await c.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:first@example.com'] });
      assert.equal(account.status, 'valid');
      const url = c.getAccountUrl();
      assert.match(url, new RegExp(`^${dirUrl()}/acct/`));

      const finder = client(oldKey);
      await finder.createAccount({ onlyReturnExisting: true });
      assert.equal(finder.getAccountUrl(), url);

      const updated = await c.updateAccount({ contact: ['mailto:second@example.com'] });
      assert.deepEqual(updated.contact, ['mailto:second@example.com']);

      const newKey = await acme.crypto.createPrivateEcdsaKey();
      await c.updateAccountKey(newKey);
      const withNew = client(newKey);
      await withNew.createAccount({ onlyReturnExisting: true });
      assert.equal(withNew.getAccountUrl(), url, 'the new key finds the same account');
      await assert.rejects(client(oldKey).createAccount({ onlyReturnExisting: true }), /no account exists/);
      await assert.rejects(client(oldKey, { accountUrl: url }).updateAccount({ contact: ['mailto:x@example.com'] }), /signature/);
      assert.deepEqual((await c.updateAccount({})).contact, ['mailto:second@example.com'], 'POST-as-GET with the new key');

      const deactivated = await c.updateAccount({ status: 'deactivated' });
      assert.equal(deactivated.status, 'deactivated');
      await assert.rejects(c.updateAccount({}), /deactivated/);
      await assert.rejects(client(newKey).createAccount({ termsOfServiceAgreed: true }), /deactivated/);
    });

    it("key change to a key that another account has: 409 with that account's Location", async () => {
      const a = ecKey();
      const b = ecKey();
      const aUrl = String((await newAccount(a)).headers.location);
      const bUrl = String((await newAccount(b)).headers.location);
      const url = `${dirUrl()}/key-change`;
      const innerHeader = { alg: b.alg, jwk: b.jwk, url };
      const inner = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: aUrl, oldKey: a.jwk })))
        .setProtectedHeader(innerHeader)
        .sign(b.privateKey);
      const r = await post(url, await jws(url, a, inner, { kid: aUrl }));
      assertProblem(r, 409, 'malformed');
      assert.equal(r.headers.location, bUrl);
      const c = ecKey();
      const wrongOld = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: aUrl, oldKey: b.jwk })))
        .setProtectedHeader({ alg: c.alg, jwk: c.jwk, url })
        .sign(c.privateKey);
      assertProblem(await post(url, await jws(url, a, wrongOld, { kid: aUrl })), 403, 'unauthorized');
      const otherAccount = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: bUrl, oldKey: a.jwk })))
        .setProtectedHeader({ alg: c.alg, jwk: c.jwk, url })
        .sign(c.privateKey);
      assertProblem(await post(url, await jws(url, a, otherAccount, { kid: aUrl })), 403, 'unauthorized');
    });
  });

  describe('hand-made requests a client should not send', () => {
    let key: Signer;
    let kid: string;
    before(async () => {
      key = ecKey();
      kid = String((await newAccount(key)).headers.location);
    });

    it('a replayed nonce: badNonce, with a new Replay-Nonce to retry with', async () => {
      const body = await jws(kid, key, '', { kid });
      const first = await post(kid, body);
      assert.equal(first.status, 200, first.body);
      const replay = await post(kid, body);
      assertProblem(replay, 400, 'badNonce');
      const retry = await post(kid, await jws(kid, key, '', { kid, nonce: String(replay.headers['replay-nonce']) }));
      assert.equal(retry.status, 200, retry.body);
    });

    it('a JWS signed for another URL: unauthorized', async () => {
      assertProblem(await post(kid, await jws(`${dirUrl()}/new-order`, key, '', { kid })), 403, 'unauthorized');
    });

    it('a kid that names no account: accountDoesNotExist', async () => {
      const unknown = `${dirUrl()}/acct/nobodyhere`;
      assertProblem(await post(unknown, await jws(unknown, key, '', { kid: unknown })), 400, 'accountDoesNotExist');
      // An account of the default directory is no account of alias "tos".
      const there = `${dirUrl('tos')}/key-change`;
      assertProblem(await post(there, await jws(there, key, {}, { kid, alias: 'tos' })), 400, 'accountDoesNotExist');
    });

    it('a signature by another key: malformed', async () => {
      assertProblem(await post(kid, await jws(kid, ecKey(), '', { kid })), 400, 'malformed');
    });

    it('an unsupported algorithm: badSignatureAlgorithm with the accepted list', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rsa = { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'RS384' };
      const url = `${dirUrl()}/new-account`;
      const r = await post(url, await jws(url, rsa, {}));
      assertProblem(r, 400, 'badSignatureAlgorithm');
      assert.deepEqual(r.json.algorithms, ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA']);
    });

    it('the wrong Content-Type: 415; not a flattened JWS: malformed', async () => {
      assertProblem(await post(kid, await jws(kid, key, '', { kid }), 'application/json'), 415, 'malformed');
      assertProblem(await post(kid, 'e30.e30.c2ln'), 400, 'malformed');
    });

    it('the account of another kid, and payloads where POST-as-GET is not accepted', async () => {
      const other = ecKey();
      const otherUrl = String((await newAccount(other)).headers.location);
      assertProblem(await post(otherUrl, await jws(otherUrl, key, '', { kid })), 403, 'unauthorized');
      const url = `${dirUrl()}/new-account`;
      assertProblem(await post(url, await jws(url, key, '')), 400, 'malformed');
      assertProblem(await post(kid, await jws(kid, key, { status: 'valid-ish' }, { kid })), 400, 'malformed');
    });
  });

  describe('external account binding (alias "eab")', () => {
    async function eabKey(): Promise<{ kid: string; hmacKey: string }> {
      const r = await cf.cli(['eab', 'create', '--alias', 'eab', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { kid: string; hmacKey: string; alias: string };
      assert.equal(out.alias, 'eab');
      assert.match(out.hmacKey, /^[A-Za-z0-9_-]{43}$/);
      return out;
    }

    async function binding(eab: { kid: string; hmacKey: string }, key: Signer, url: string, over: Record<string, unknown> = {}) {
      return new FlattenedSign(new TextEncoder().encode(JSON.stringify(key.jwk)))
        .setProtectedHeader({ alg: 'HS256', kid: eab.kid, url, ...over })
        .sign(Buffer.from(eab.hmacKey, 'base64url'));
    }

    it('without a binding: externalAccountRequired', async () => {
      assertProblem(await newAccount(ecKey(), {}, 'eab'), 400, 'externalAccountRequired');
    });

    it('with a key from `certflow eab create`: 201; the key is then used up and listed with its account', async () => {
      const eab = await eabKey();
      const url = `${dirUrl('eab')}/new-account`;
      const key = ecKey();
      const wrongUrl = await newAccount(key, { externalAccountBinding: await binding(eab, key, `${dirUrl()}/new-account`) }, 'eab');
      assertProblem(wrongUrl, 403, 'unauthorized');
      const badMac = await newAccount(
        key,
        { externalAccountBinding: await binding({ ...eab, hmacKey: Buffer.alloc(32, 1).toString('base64url') }, key, url) },
        'eab',
      );
      assertProblem(badMac, 403, 'unauthorized');
      const otherKey = await newAccount(key, { externalAccountBinding: await binding(eab, ecKey(), url) }, 'eab');
      assertProblem(otherKey, 403, 'unauthorized');

      const created = await newAccount(key, { externalAccountBinding: await binding(eab, key, url) }, 'eab');
      assert.equal(created.status, 201, created.body);
      const accountId = String(created.headers.location).split('/').pop();

      const second = ecKey();
      assertProblem(await newAccount(second, { externalAccountBinding: await binding(eab, second, url) }, 'eab'), 403, 'unauthorized');

      const list = await cf.cli(['eab', 'list', '--json']);
      assert.equal(list.code, 0, list.stderr);
      const row = (JSON.parse(list.stdout) as Array<{ kid: string; account: string | null; alias: string }>).find((k) => k.kid === eab.kid);
      assert.equal(row?.account, accountId);
      assert.equal(row?.alias, 'eab');
      const text = await cf.cli(['eab', 'list']);
      assert.match(text.stdout, new RegExp(eab.kid));
      assert.doesNotMatch(text.stdout + list.stdout, new RegExp(eab.hmacKey), 'MAC keys are never listed');
    });

    it('acme-client with externalAccountBinding creates the account', async () => {
      const eab = await eabKey();
      const c = client(await acme.crypto.createPrivateEcdsaKey(), { externalAccountBinding: eab }, 'eab');
      const account = await c.createAccount({ termsOfServiceAgreed: true });
      assert.equal(account.status, 'valid');
      await assert.rejects(
        client(await acme.crypto.createPrivateEcdsaKey(), {}, 'eab').createAccount({ termsOfServiceAgreed: true }),
        /external account binding/,
      );
    });

    it('eab create refuses unknown aliases', async () => {
      const r = await cf.cli(['eab', 'create', '--alias', 'nope']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown ACME alias/);
    });
  });

  describe('terms of service (alias "tos")', () => {
    it('new accounts must agree; after a change only the account update works until they agree again', async () => {
      const key = ecKey();
      assertProblem(await newAccount(key, {}, 'tos'), 400, 'malformed');
      const created = await newAccount(key, { termsOfServiceAgreed: true }, 'tos');
      assert.equal(created.status, 201, created.body);
      const kid = String(created.headers.location);
      const keyChange = `${dirUrl('tos')}/key-change`;
      const notAKeyChange = async () => post(keyChange, await jws(keyChange, key, { nothing: true }, { kid, alias: 'tos' }));
      assertProblem(await notAKeyChange(), 400, 'malformed'); // reaches the handler

      // The terms the account agreed to are no longer the current ones.
      // (Written as certflow's own writers do: with the NOTIFY that evicts the account from the servers' caches.)
      await cf.pool.query(
        "WITH u AS (UPDATE acme_accounts SET tos_agreed = $2 WHERE id = $1 RETURNING id) SELECT pg_notify('certflow_acme_account', id) FROM u",
        [kid.split('/').pop(), 'https://ca.test/tos/v0'],
      );
      // The notification reaches the server moments after the commit.
      let blocked = await notAKeyChange();
      for (let i = 0; i < 50 && blocked.status !== 403; i++) {
        await new Promise((r) => setTimeout(r, 100));
        blocked = await notAKeyChange();
      }
      assertProblem(blocked, 403, 'userActionRequired');
      assert.equal(blocked.json.instance, TOS);
      assert.match(String(blocked.headers.link), new RegExp(`<${TOS}>;rel="terms-of-service"`));

      const fetched = await post(kid, await jws(kid, key, '', { kid, alias: 'tos' }));
      assert.equal(fetched.status, 200, 'the account itself can still be read');
      const agreed = await post(kid, await jws(kid, key, { termsOfServiceAgreed: true }, { kid, alias: 'tos' }));
      assert.equal(agreed.status, 200, agreed.body);
      assertProblem(await notAKeyChange(), 400, 'malformed');
    });
  });

  describe('revocation and renewal information', () => {
    let certDer: Buffer;
    let certKey: Signer;

    before(async () => {
      const csr = await opensslCsr(cf.home, 'revoke-me', { subj: '/CN=revoke.example', san: 'DNS:revoke.example' });
      const out = join(cf.home, 'revoke-me.pem');
      const r = await cf.cli(['cert', 'issue', '--csr', csr, '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      certDer = Buffer.from(new X509Certificate(await readFile(out)).raw);
      const privateKey = createPrivateKey(await readFile(join(cf.home, 'revoke-me.key')));
      certKey = { privateKey, jwk: createPublicKey(privateKey).export({ format: 'jwk' }) as JWK, alg: 'ES256' };
    });

    function certId(der: Buffer): string {
      const c = describeCertificate(der);
      return ariCertId(c.authorityKeyIdHex!, c.serialHex);
    }

    it("renewal-info: a window for a valid certificate (here: the server's own), 404 for unknown ones", async () => {
      const probe = await request(`${dirUrl()}/directory`);
      const tls = Buffer.from(probe.peerCert!.raw);
      const r = await request(`${dirUrl()}/renewal-info/${certId(tls)}`);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['retry-after'], String(6 * 3600));
      const w = r.json.suggestedWindow as { start: string; end: string };
      const x = new X509Certificate(tls);
      assert.ok(new Date(w.start) > new Date(x.validFrom) && new Date(w.end) < new Date(x.validTo) && w.start < w.end);
      assertProblem(
        await request(`${dirUrl()}/renewal-info/${ariCertId(describeCertificate(tls).authorityKeyIdHex!, '0badc0ffee')}`),
        404,
        'malformed',
      );
      assertProblem(await request(`${dirUrl()}/renewal-info/not-a-cert-id`), 400, 'malformed');
    });

    it('revoke-cert: bad reasons, strangers refused; the certificate key revokes once, then alreadyRevoked', async () => {
      const url = `${dirUrl()}/revoke-cert`;
      const certificate = certDer.toString('base64url');
      assertProblem(await post(url, await jws(url, certKey, { certificate, reason: 6 })), 400, 'badRevocationReason');
      assertProblem(await post(url, await jws(url, certKey, { certificate, reason: 7 })), 400, 'badRevocationReason');
      const stranger = ecKey();
      const strangerKid = String((await newAccount(stranger)).headers.location);
      assertProblem(await post(url, await jws(url, stranger, { certificate }, { kid: strangerKid })), 403, 'unauthorized');
      assertProblem(await post(url, await jws(url, ecKey(), { certificate })), 403, 'unauthorized');

      const revoked = await post(url, await jws(url, certKey, { certificate, reason: 1 }));
      assert.equal(revoked.status, 200, revoked.body);
      assert.equal(revoked.body, '');
      const show = await cf.cli(['cert', 'show', new X509Certificate(certDer).serialNumber, '--json']);
      assert.equal(JSON.parse(show.stdout).status, 'revoked');
      assert.equal(JSON.parse(show.stdout).revocationReason, 'keyCompromise');
      assertProblem(await post(url, await jws(url, certKey, { certificate })), 400, 'alreadyRevoked');

      const ari = await request(`${dirUrl()}/renewal-info/${certId(certDer)}`);
      assert.equal(ari.status, 200);
      assert.ok(new Date((ari.json.suggestedWindow as { end: string }).end) < new Date(), 'a revoked certificate is renewed at once');
    });
  });

  it('no request above was a server fault (server log)', async () => {
    const log = await readFile(join(cf.home, 'server.log'), 'utf8');
    const faults = log.split('\n').filter((l) => l.includes('ACME request failed'));
    assert.deepEqual(faults, []);
    assert.match(log, /ACME request refused/, 'refusals are logged at info');
  });
});
