/**
 * Attacks on the names of an ACME certificate (issue 16 item 1, issue 23): a certificate
 * names exactly the identifiers its order authorized. The set of names a CSR asks for is its
 * SANs together with its CN; a CSR naming its identifier only in the CN (as acme-tiny makes
 * it) is issued with the name as a SAN; a second CN, or any name beyond the identifiers, is
 * refused with badCSR naming it — at finalize, and again by the signing activity, which
 * compares the names of the prepared TBSCertificate with what the order authorized (here
 * reached by a finalize Update sent straight to the order's workflow, past the front end).
 *
 * The client is acme-client; the CSRs are made by `openssl req` (acme-client always copies
 * the CN into the SANs, which is exactly what an attacker does not do).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import acme from 'acme-client';
import { finalizeUpdate } from '../../workflows/api.ts';
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
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

describe('ACME: a certificate names exactly what its order authorized', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;
  let connection: Connection;
  let temporal: Client;

  before(async () => {
    stack = await startAcmeStack();
    responder = await startHttp01Responder(stack.http01Port);
    ({ client } = await newAccount(stack.directoryUrl()));
    connection = await Connection.connect({ address: temporalAddress() });
    temporal = new Client({ connection, namespace: temporalNamespace() });
  });
  after(async () => {
    await connection?.close();
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

  it('the signing activity refuses names the order did not authorize, also when the front end is bypassed', async () => {
    // A finalize Update sent straight to the order's workflow (anyone who reaches Temporal's
    // frontend could): the front end's check never runs; the CA's must.
    const order = await readyOrder('dns:bypass.example.test');
    const der = makeCsr({ subj: '/CN=bypass.example.test', san: 'DNS:bypass.example.test,DNS:victim.example.test' }).der;
    const outcome = await temporal.workflow
      .getHandle(`acme-order-${orderId(order)}`)
      .executeUpdate(finalizeUpdate, { args: [{ csr: Buffer.from(der).toString('base64') }], updateId: `attack-${orderId(order)}` });
    assert.equal(outcome.status, 'invalid', JSON.stringify(outcome));
    assert.equal(outcome.error?.type, ACME_ERROR('badCSR'), JSON.stringify(outcome));
    assert.match(outcome.error!.detail, /dns:victim\.example\.test/);
    assert.deepEqual(await certificatesOf(order), [], 'no certificate was issued');
    const list = await stack.cf.cli(['--json', 'cert', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const sans = (JSON.parse(list.stdout) as Array<{ sans: string[] }>).flatMap((c) => c.sans);
    assert.ok(sans.length > 0 && !sans.includes('dns:victim.example.test'), `no certificate names the victim: ${sans.join(' ')}`);
  });
});
