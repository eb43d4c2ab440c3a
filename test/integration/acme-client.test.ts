/**
 * The npm `acme-client` (and hand-made JWS requests where it has no method) against
 * certflow's ACME server: an http-01 order end to end, the account's orders list,
 * pre-authorization (new-authz), ARI (renewalInfo and `replaces`), and revocation signed by
 * the account key, by the certificate's key, and refused for a stranger. Accounts, key
 * change, deactivation and JWS negatives are in acme-accounts.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import acme from 'acme-client';
import { runTool } from '../helpers/certflow.ts';
import {
  ACME_ERROR,
  ariCertId,
  authorizeHttp01,
  directory,
  eventually,
  fetchAcme,
  finalizeAndDownload,
  issueHttp01,
  jwsPost,
  newAccount,
  serialHex,
  signedPost,
  startAcmeStack,
  startHttp01Responder,
  waitValid,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
  type Issued,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

describe('ACME with acme-client', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;
  let account: Record<string, unknown>;
  let dir: Record<string, string>;

  before(async () => {
    stack = await startAcmeStack();
    responder = await startHttp01Responder(stack.http01Port);
    ({ client, account } = await newAccount(stack.directoryUrl()));
    dir = (await directory(client)) as Record<string, string>;
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  const orderId = (order: { url: string }) => new URL(order.url).pathname.split('/').at(-1)!;

  async function verifyChain(issued: Issued): Promise<void> {
    const file = join(stack.cf.home, `acme-${serialHex(issued.leafPem)}.pem`);
    const chainFile = `${file}.chain`;
    await writeFile(file, issued.leafPem);
    await writeFile(chainFile, acme.crypto.splitPemChain(issued.chainPem).slice(1).join('\n'));
    const r = await runTool('openssl', ['verify', '-CAfile', stack.root, '-untrusted', chainFile, file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }

  let issued: Issued;
  it("http-01 order: certificate for the CSR's key, verified by openssl, request_id = order id", async () => {
    issued = await issueHttp01(client, responder, ['client.example.test', 'www.client.example.test']);
    assert.equal(issued.order.status, 'valid');
    await verifyChain(issued);
    assert.deepEqual(issued.cert.subjectAltName?.split(/,\s*/).sort(), ['DNS:client.example.test', 'DNS:www.client.example.test']);
    assert.ok(issued.cert.checkPrivateKey(createPrivateKey(issued.key)));
    const { rows } = await stack.cf.pool.query('SELECT serial, protocol, status, requester FROM certificates WHERE request_id = $1', [
      orderId(issued.order),
    ]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].serial, serialHex(issued.leafPem));
    assert.equal(rows[0].protocol, 'acme');
    assert.equal(rows[0].status, 'valid');
    // The VA fetched the token from our responder, once per name at least.
    assert.ok(
      responder.requests.some((r) => r.host?.startsWith('client.example.test')),
      JSON.stringify(responder.requests),
    );
  });

  it('orders list: POST-as-GET of the account\'s "orders" URL lists the account\'s orders', async () => {
    assert.equal(typeof account.orders, 'string', `the account object has an "orders" URL: ${JSON.stringify(account)}`);
    const a = await client.createOrder({ identifiers: [{ type: 'dns', value: 'list-a.example.test' }] });
    const b = await client.createOrder({ identifiers: [{ type: 'dns', value: 'list-b.example.test' }] });
    const r = await signedPost(client, account.orders as string, null);
    assert.equal(r.status, 200, JSON.stringify(r.data));
    const urls = r.data.orders as string[];
    assert.ok(Array.isArray(urls));
    for (const o of [a, b]) assert.ok(urls.includes(o.url), `${o.url} in ${JSON.stringify(urls)}`);
    // Another account sees none of them, and may not read this account's list.
    const other = await newAccount(stack.directoryUrl());
    const theirs = await signedPost(other.client, other.account.orders as string, null);
    assert.equal(theirs.status, 200);
    assert.deepEqual(theirs.data.orders, []);
    const stolen = await signedPost(other.client, account.orders as string, null);
    assert.equal(stolen.status, 403, JSON.stringify(stolen.data));
    assert.equal(stolen.data.type, ACME_ERROR('unauthorized'));
  });

  it('pre-authorization: new-authz, http-01, then an order for the name is ready at once', async () => {
    assert.ok(dir.newAuthz, `the directory offers newAuthz: ${JSON.stringify(dir)}`);
    const r = await signedPost(client, dir.newAuthz, { identifier: { type: 'dns', value: 'pre.example.test' } });
    assert.equal(r.status, 201, JSON.stringify(r.data));
    const authzUrl = r.headers.location!;
    assert.ok(authzUrl, 'Location of the new authorization');
    assert.equal(r.data.status, 'pending');
    assert.deepEqual(r.data.identifier, { type: 'dns', value: 'pre.example.test' });
    const challenge = (r.data.challenges as Array<{ type: string; url: string; token: string }>).find((c) => c.type === 'http-01')!;
    assert.ok(challenge, JSON.stringify(r.data.challenges));
    responder.set(challenge.token, await client.getChallengeKeyAuthorization(challenge as never));
    await client.completeChallenge(challenge as never);
    const authz = await client.waitForValidStatus({ url: authzUrl } as never);
    assert.equal((authz as { status: string }).status, 'valid');

    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'pre.example.test' }] });
    assert.deepEqual(order.authorizations, [authzUrl]);
    const ready = await waitValid(client, order);
    assert.equal(ready.status, 'ready');
    const done = await finalizeAndDownload(client, ready, ['pre.example.test']);
    await verifyChain(done);

    // Wildcards cannot be pre-authorized (RFC 8555 7.4.1).
    const wild = await signedPost(client, dir.newAuthz, { identifier: { type: 'dns', value: '*.pre.example.test' } });
    assert.equal(wild.status, 400, JSON.stringify(wild.data));
    assert.equal(wild.data.type, ACME_ERROR('rejectedIdentifier'));
  });

  it('ARI: renewalInfo of an issued certificate, then an order that replaces it', async () => {
    assert.ok(issued, 'needs the certificate of the first test');
    assert.ok(dir.renewalInfo, `the directory offers renewalInfo: ${JSON.stringify(dir)}`);
    const certId = ariCertId(issued.leafPem);
    const info = await fetchAcme(`${dir.renewalInfo.replace(/\/$/, '')}/${certId}`);
    assert.equal(info.status, 200, info.text);
    const window = info.data.suggestedWindow as { start: string; end: string };
    assert.ok(window, info.text);
    const start = Date.parse(window.start);
    const end = Date.parse(window.end);
    assert.ok(start < end, info.text);
    assert.ok(end <= Date.parse(issued.cert.validTo) && start >= Date.parse(issued.cert.validFrom), info.text);
    assert.ok(info.headers['retry-after'], 'renewalInfo answers carry Retry-After (RFC 9773 4.3)');

    const unknown = await fetchAcme(
      `${dir.renewalInfo.replace(/\/$/, '')}/${certId.split('.')[0]}.${Buffer.from('nope').toString('base64url')}`,
    );
    assert.equal(unknown.status, 404, unknown.text);

    const names = ['client.example.test', 'www.client.example.test'];
    const order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })), replaces: certId } as never);
    assert.equal((order as unknown as { replaces?: string }).replaces, certId);
    await authorizeHttp01(client, order, responder); // reused authorizations: nothing to do
    const renewed = await finalizeAndDownload(client, await waitValid(client, order), names);
    await verifyChain(renewed);
    const { rows } = await stack.cf.pool.query('SELECT replaces FROM certificates WHERE serial = $1', [serialHex(renewed.leafPem)]);
    assert.equal(rows[0]?.replaces, serialHex(issued.leafPem));

    const again = await signedPost(client, dir.newOrder, { identifiers: names.map((value) => ({ type: 'dns', value })), replaces: certId });
    assert.equal(again.status, 409, JSON.stringify(again.data));
    assert.equal(again.data.type, ACME_ERROR('alreadyReplaced'));
  });

  it('revocation: by the account key, by the certificate key; a stranger is refused', async () => {
    const one = await issueHttp01(client, responder, ['revoke-1.example.test']);
    const two = await issueHttp01(client, responder, ['revoke-2.example.test']);
    const der = (i: Issued) => acme.crypto.getPemBodyAsB64u(i.leafPem);
    const status = async (i: Issued) =>
      (await stack.cf.pool.query('SELECT status, revocation_reason FROM certificates WHERE serial = $1', [serialHex(i.leafPem)])).rows[0];

    // A stranger: neither the certificate's account nor holding authorizations for its names.
    const stranger = await newAccount(stack.directoryUrl());
    const refused = await signedPost(stranger.client, dir.revokeCert, { certificate: der(one) });
    assert.equal(refused.status, 403, JSON.stringify(refused.data));
    assert.equal(refused.data.type, ACME_ERROR('unauthorized'));
    assert.equal((await status(one)).status, 'valid');

    // The account that ordered it (kid), reason superseded (4).
    await client.revokeCertificate(one.leafPem, { reason: 4 });
    assert.deepEqual(
      await eventually('revoked', 15_000, async () => ((await status(one)).status === 'revoked' ? status(one) : undefined)),
      {
        status: 'revoked',
        revocation_reason: 'superseded',
      },
    );
    const twice = await signedPost(client, dir.revokeCert, { certificate: der(one) });
    assert.equal(twice.status, 400, JSON.stringify(twice.data));
    assert.equal(twice.data.type, ACME_ERROR('alreadyRevoked'));

    // The certificate's own key, in a jwk-signed JWS (RFC 8555 7.6), reason keyCompromise (1).
    const byKey = await jwsPost({ newNonce: dir.newNonce }, dir.revokeCert, { certificate: der(two), reason: 1 }, two.key, 'jwk');
    assert.equal(byKey.status, 200, byKey.text);
    assert.deepEqual(
      await eventually('revoked', 15_000, async () => ((await status(two)).status === 'revoked' ? status(two) : undefined)),
      {
        status: 'revoked',
        revocation_reason: 'keyCompromise',
      },
    );
    // A key that is not the certificate's (here: the first certificate's) is refused.
    const three = await issueHttp01(client, responder, ['revoke-3.example.test']);
    const wrongKey = await jwsPost({ newNonce: dir.newNonce }, dir.revokeCert, { certificate: der(three) }, one.key, 'jwk');
    assert.equal(wrongKey.status, 403, wrongKey.text);
    assert.equal(wrongKey.data.type, ACME_ERROR('unauthorized'));
    assert.equal((await status(three)).status, 'valid');
  });
});
