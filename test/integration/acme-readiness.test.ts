/**
 * Atomic readiness (RFC 8555 7.1.6, issue 8): whatever a GET shows, the next request agrees
 * with it. 16 clients run 200 orders; each answers its http-01 challenge, polls the
 * challenge as fast as it can and finalizes the very instant it reads `valid` — the race
 * that made busy servers answer `orderNotReady`. The server is configured not to wait for
 * outcomes (acme.answerWaitSeconds 0), so every challenge answer is "processing" and the
 * client really does finalize on what a GET showed. Every order must end with its
 * certificate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import {
  csrFor,
  newAccount,
  signedPost,
  startAcmeStack,
  startHttp01Responder,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const ORDERS = 200;
const CLIENTS = 16;

describe('ACME atomic readiness under load', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;

  before(async () => {
    stack = await startAcmeStack({
      config: {
        acme: {
          answerWaitSeconds: 0,
          rateLimits: { newOrdersPerAccountPerHour: 10_000, pendingAuthorizationsPerAccount: 10_000, certificatesPerDomainPerWeek: 10_000 },
        },
      },
    });
    responder = await startHttp01Responder(stack.http01Port);
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  async function poll(client: AcmeClient, url: string, until: (data: { status: string }) => boolean, everyMs: number) {
    for (let i = 0; i < 3000; i++) {
      const r = await signedPost(client, url, null);
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
      if (until(r.data)) return r.data;
      await sleep(everyMs);
    }
    throw new Error(`${url} did not get there`);
  }

  /** One order the impatient way; returns an error text or undefined. */
  async function impatientOrder(client: AcmeClient, name: string): Promise<string | undefined> {
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    const [authz] = await client.getAuthorizations(order);
    const challenge = authz!.challenges.find((c) => c.type === 'http-01')!;
    responder.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    const answered = await signedPost(client, challenge.url, {});
    if (answered.status !== 200) return `challenge: HTTP ${answered.status} ${JSON.stringify(answered.data)}`;
    const seen =
      answered.data.status === 'valid'
        ? answered.data
        : await poll(client, challenge.url, (c) => c.status !== 'pending' && c.status !== 'processing', 2);
    if (seen.status !== 'valid') return `challenge ${seen.status}: ${JSON.stringify(seen)}`;
    // The instant the challenge reads valid: finalize.
    const { key, csr } = await csrFor([name]);
    const fin = await signedPost(client, order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) });
    if (fin.status !== 200) return `finalize: HTTP ${fin.status} ${JSON.stringify(fin.data)}`;
    const valid =
      fin.data.status === 'valid' ? fin.data : await poll(client, order.url, (o) => o.status === 'valid' || o.status === 'invalid', 20);
    if (valid.status !== 'valid') return `order ${valid.status}: ${JSON.stringify(valid)}`;
    const chain = await signedPost(client, valid.certificate, null);
    const leaf = new X509Certificate(acme.crypto.splitPemChain(String(chain.data))[0]!);
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return 'wrong key in certificate';
    responder.delete(challenge.token);
    return undefined;
  }

  it(`${ORDERS} orders by ${CLIENTS} clients that finalize the instant the challenge reads valid: 0 failures`, async () => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, async () => (await newAccount(stack.directoryUrl())).client));
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        while (next < ORDERS) {
          const i = next++;
          try {
            const err = await impatientOrder(client, `ready-${i}.example.test`);
            if (err) failures.push(`order ${i}: ${err}`);
          } catch (e) {
            failures.push(`order ${i}: ${(e as Error).message}`);
          }
        }
      }),
    );
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${ORDERS} orders failed`);
    const { rows } = await stack.cf.pool.query("SELECT count(*)::int AS n FROM acme_orders WHERE status = 'valid'");
    assert.equal(rows[0].n, ORDERS);
  });
});
