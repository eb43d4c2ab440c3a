/**
 * ACME revocation by a non-subscriber (issue 22 item 5, RFC 8555 7.6): an account that holds
 * valid authorizations for every name of a certificate may revoke it only when the
 * certificate was issued over ACME through the same directory (alias), and then only for
 * unspecified or cessationOfOperation, recorded as cessationOfOperation, as Boulder does;
 * keyCompromise needs the certificate's key (a JWS signed with it). Certificates issued
 * over other protocols (here: `certflow cert issue`) or through another directory alias are
 * out of its reach. The subscriber and the key holder keep their powers.
 *
 * The attacker signs with acme-client (kid); the key holder sends a raw jwk-signed JWS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ACME_ERROR,
  authorizeHttp01,
  directory,
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
} from '../helpers/acme.ts';
import { opensslCsr } from '../helpers/certflow.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';

const NAME = 'shared.example.test';

describe('ACME revocation by an account that holds authorizations for the names', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  /** The certificates' subscriber on the default directory. */
  let subscriber: AcmeClient;
  /** Another account of the default directory that now controls NAME (valid authorization). */
  let attacker: AcmeClient;
  let dir: Record<string, string>;

  before(async () => {
    stack = await startAcmeStack({ config: { acme: { aliases: [{ name: 'other' }] } } });
    responder = await startHttp01Responder(stack.http01Port);
    ({ client: subscriber } = await newAccount(stack.directoryUrl()));
    ({ client: attacker } = await newAccount(stack.directoryUrl()));
    dir = (await directory(attacker)) as Record<string, string>;
    // The attacker validates NAME (a valid authorization, no certificate needed).
    const order = await attacker.createOrder({ identifiers: [{ type: 'dns', value: NAME }] });
    await authorizeHttp01(attacker, order, responder);
    assert.equal((await waitValid(attacker, order)).status, 'ready');
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  const row = async (pem: string) =>
    (await stack.cf.pool.query('SELECT status, revocation_reason AS reason FROM certificates WHERE serial = $1', [serialHex(pem)]))
      .rows[0] as { status: string; reason: string | null };
  const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64url');

  /** The attacker's revokeCert (kid-signed through acme-client); the problem document when refused. */
  async function attackerRevokes(certPem: string, reason?: number): Promise<{ type: string; detail: string } | undefined> {
    const r = await signedPost(attacker, dir.revokeCert!, { certificate: der(certPem), ...(reason === undefined ? {} : { reason }) });
    if (r.status === 200) return undefined;
    assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${JSON.stringify(r.data)}`);
    return r.data;
  }

  async function subscriberCertificate(): Promise<string> {
    return (await issueHttp01(subscriber, responder, [NAME])).leafPem;
  }

  it('a certificate issued outside ACME (certflow cert issue) is out of reach: unauthorized, still valid', async () => {
    const csr = await opensslCsr(stack.cf.home, 'operator', { subj: `/CN=${NAME}`, san: `DNS:${NAME}` });
    const out = join(stack.cf.home, 'operator.pem');
    const issued = await stack.cf.cli(['cert', 'issue', '--csr', csr, '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
    const pem = await readFile(out, 'utf8');
    const refused = await attackerRevokes(pem);
    assert.equal(refused?.type, ACME_ERROR('unauthorized'), JSON.stringify(refused));
    assert.match(refused!.detail, /not issued through this ACME directory/);
    assert.deepEqual(await row(pem), { status: 'valid', reason: null });
  });

  it('a certificate issued through another directory alias is out of reach: unauthorized, still valid', async () => {
    const { client: elsewhere } = await newAccount(stack.directoryUrl('other'));
    const pem = (await issueHttp01(elsewhere, responder, [NAME])).leafPem;
    const refused = await attackerRevokes(pem);
    assert.equal(refused?.type, ACME_ERROR('unauthorized'), JSON.stringify(refused));
    assert.match(refused!.detail, /not issued through this ACME directory/);
    assert.deepEqual(await row(pem), { status: 'valid', reason: null });
  });

  it('keyCompromise, superseded, affiliationChanged, privilegeWithdrawn from a non-subscriber: badRevocationReason', async () => {
    const pem = await subscriberCertificate();
    for (const [reason, pattern] of [
      [1, /keyCompromise.*certificate's key/],
      [4, /unspecified \(0\) or cessationOfOperation \(5\)/],
      [3, /unspecified \(0\) or cessationOfOperation \(5\)/],
      [9, /unspecified \(0\) or cessationOfOperation \(5\)/],
    ] as const) {
      const refused = await attackerRevokes(pem, reason);
      assert.equal(refused?.type, ACME_ERROR('badRevocationReason'), `reason ${reason}: ${JSON.stringify(refused)}`);
      assert.match(refused!.detail, pattern);
    }
    assert.deepEqual(await row(pem), { status: 'valid', reason: null });
  });

  it('unspecified or cessationOfOperation from a non-subscriber: revoked, recorded as cessationOfOperation', async () => {
    for (const reason of [undefined, 5]) {
      const pem = await subscriberCertificate();
      assert.equal(await attackerRevokes(pem, reason), undefined);
      assert.deepEqual(await row(pem), { status: 'revoked', reason: 'cessationOfOperation' });
    }
  });

  it('the key holder may claim keyCompromise for any certificate of the CA (also one issued outside ACME)', async () => {
    const csr = await opensslCsr(stack.cf.home, 'keyholder', { subj: `/CN=${NAME}`, san: `DNS:${NAME}` });
    const out = join(stack.cf.home, 'keyholder.pem');
    assert.equal((await stack.cf.cli(['cert', 'issue', '--csr', csr, '--out', out])).code, 0);
    const pem = await readFile(out, 'utf8');
    const key = await readFile(join(stack.cf.home, 'keyholder.key'));
    const r = await jwsPost({ newNonce: dir.newNonce! }, dir.revokeCert!, { certificate: der(pem), reason: 1 }, key, 'jwk');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await row(pem), { status: 'revoked', reason: 'keyCompromise' });
  });

  it('the subscriber may give any subscriber reason, keyCompromise included (as Boulder allows)', async () => {
    const pem = await subscriberCertificate();
    await subscriber.revokeCertificate(pem, { reason: 1 });
    assert.deepEqual(await row(pem), { status: 'revoked', reason: 'keyCompromise' });
  });
});
