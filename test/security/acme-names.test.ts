/**
 * Attacks on the names of an ACME certificate (issue 16 item 1, issue 23): a certificate
 * names exactly the identifiers its order authorized. The set of names a CSR asks for is its
 * SANs together with its CN; a CSR naming its identifier only in the CN (as acme-tiny makes
 * it) is issued with the name as a SAN; a second CN, or any name beyond the identifiers, is
 * refused with badCSR naming it at finalize.
 *
 * The client is acme-client; the CSRs are made by `openssl req` (acme-client always copies
 * the CN into the SANs, which is exactly what an attacker does not do).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import acme from 'acme-client';
import {
  ACME_ERROR,
  authorizeHttp01,
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
import { makeCsr } from '../helpers/openssl.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

describe('ACME: a certificate names exactly what its order authorized', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;

  before(async () => {
    stack = await startAcmeStack();
    responder = await startHttp01Responder(stack.http01Port);
    ({ client } = await newAccount(stack.directoryUrl()));
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  /** A ready order of the attacker's account for `identifiers` ("dns:..." / "ip:..."), authorized over http-01. */
  async function readyOrder(...identifiers: string[]): Promise<AcmeOrder> {
    const order = await client.createOrder({
      identifiers: identifiers.map((i) => ({ type: i.slice(0, i.indexOf(':')), value: i.slice(i.indexOf(':') + 1) })),
    });
    await authorizeHttp01(client, order, responder);
    const ready = await waitValid(client, order);
    assert.equal(ready.status, 'ready');
    return ready;
  }
  const orderId = (order: AcmeOrder) => order.url.split('/').pop()!;
  /** `openssl req -subj <subj> [-addext subjectAltName=<san>]`, as base64url DER. */
  const csr = (subj: string, san?: string) => Buffer.from(makeCsr({ subj, san }).der).toString('base64url');
  /** Certificates stored for the order (signed or not): none may exist after a refusal. */
  const certificatesOf = async (order: AcmeOrder) =>
    (await stack.cf.pool.query('SELECT serial, sans, status FROM certificates WHERE request_id = $1', [orderId(order)])).rows;

  async function assertRefused(order: AcmeOrder, csrB64u: string, detail: RegExp): Promise<void> {
    const r = await signedPost(client, order.finalize, { csr: csrB64u });
    assert.equal(r.status, 400, JSON.stringify(r.data));
    assert.equal(r.data.type, ACME_ERROR('badCSR'), JSON.stringify(r.data));
    assert.match(r.data.detail, detail);
    assert.equal((await signedPost(client, order.url, null)).data.status, 'ready', 'a refused CSR leaves the order ready');
    assert.deepEqual(await certificatesOf(order), [], 'no certificate was issued');
  }

  async function finalizeOk(order: AcmeOrder, csrB64u: string): Promise<X509Certificate> {
    const r = await signedPost(client, order.finalize, { csr: csrB64u });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    const valid = await waitValid(client, { ...order, ...r.data, url: order.url });
    assert.equal(valid.status, 'valid', JSON.stringify(valid));
    return new X509Certificate(acme.crypto.splitPemChain(await client.getCertificate(valid))[0]!);
  }

  it('a second CN naming another domain (/CN=attacker/CN=victim, SAN attacker): badCSR naming it, nothing issued', async () => {
    const order = await readyOrder('dns:attacker-cn.example.test');
    await assertRefused(
      order,
      csr('/CN=attacker-cn.example.test/CN=victim.example.test', 'DNS:attacker-cn.example.test'),
      /more than one common name.*victim\.example\.test/,
    );
    // The same CSR with its own name only is issued, with that name only.
    const cert = await finalizeOk(order, csr('/CN=attacker-cn.example.test', 'DNS:attacker-cn.example.test'));
    assert.equal(cert.subjectAltName, 'DNS:attacker-cn.example.test');
  });

  it('a name only in the CN (SAN attacker, CN victim): badCSR naming the extra name', async () => {
    const order = await readyOrder('dns:attacker-only.example.test');
    await assertRefused(
      order,
      csr('/CN=victim.example.test', 'DNS:attacker-only.example.test'),
      /not in the order: dns:victim\.example\.test/,
    );
  });

  it('IP identifiers: a second CN with another address is refused; an extra IP SAN is refused', async () => {
    const order = await readyOrder('ip:127.0.0.1');
    await assertRefused(order, csr('/CN=127.0.0.1/CN=10.0.0.1', 'IP:127.0.0.1'), /more than one common name.*10\.0\.0\.1/);
    await assertRefused(order, csr('/CN=127.0.0.1', 'IP:127.0.0.1,IP:10.0.0.1'), /not in the order: ip:10\.0\.0\.1/);
  });

  it('a CSR naming its identifier only in the CN (acme-tiny: -subj /CN=name, no SAN) is issued with the name as SAN', async () => {
    const order = await readyOrder('dns:tiny.example.test');
    const cert = await finalizeOk(order, csr('/CN=tiny.example.test'));
    assert.equal(cert.subjectAltName, 'DNS:tiny.example.test');
    assert.equal(cert.subject, 'CN=tiny.example.test');
    // Also with the name in the CN and other identifiers in the SANs: the union is the order.
    const two = await readyOrder('dns:cn.two.example.test', 'dns:san.two.example.test');
    const cert2 = await finalizeOk(two, csr('/CN=cn.two.example.test', 'DNS:san.two.example.test'));
    assert.deepEqual(cert2.subjectAltName!.split(', ').sort(), ['DNS:cn.two.example.test', 'DNS:san.two.example.test']);
  });

  it('an IP address only in the CN is issued with it as an IP SAN', async () => {
    const order = await readyOrder('ip:127.0.0.1');
    const cert = await finalizeOk(order, csr('/CN=127.0.0.1'));
    assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1');
  });
});
