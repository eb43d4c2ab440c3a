/**
 * The CMP certificate-request handler (src/cmp/handlers.ts, after authentication) against a
 * fake registration authority: it reads the CertReqMsg, decides profile, approval and
 * implicit confirmation from the alias and the client, hands the RA the transaction's
 * input, and turns the RA's outcome into the ip/cp answer (waiting, rejection with
 * PKIFailureInfo, or the certificate with its chain). No server, database or Temporal.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { describe, it } from 'node:test';
import { createRootCertificate } from '../../src/ca/hierarchy.ts';
import type { CmpDeps } from '../../src/cmp/api.ts';
import { buildIr } from '../../src/cmp/client.ts';
import { enroll } from '../../src/cmp/handlers.ts';
import type { CmpIdentity } from '../../src/cmp/identity.ts';
import type { Exchange } from '../../src/cmp/transaction.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { CmpClientRow } from '../../src/db/repos/cmp-clients.ts';
import { CertRepMessage, INFO_TYPES, PKIStatus } from '../../src/pki/cmp/index.ts';
import { pemEncode } from '../../src/pki/index.ts';
import type { CmpRa } from '../../src/ra/cmp.ts';
import type { CmpInput, CmpOutcome } from '../../workflows/api.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';

const config = loadConfig({ CERTFLOW_HOME: '/tmp/certflow-unit-cmp-handlers' });
const alias = { ...config.cmp.aliases.get('')!, name: 'devices', requireApproval: false, implicitConfirm: true };
const client: CmpClientRow = {
  ref: 'maker',
  secretEnc: 'x',
  certSha256: null,
  profile: null,
  aliases: [],
  ra: false,
  requireApproval: true,
  enabled: true,
  email: null,
  createdAt: new Date(),
  updatedAt: new Date(),
};
const identity = { type: 'mac', ref: 'maker', client, key: 'ref:maker' } as unknown as CmpIdentity;

function exchange(opts: { implicitConfirm?: boolean; body?: 'ir' | 'cr' } = {}): Exchange {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const msg = buildIr({ key, subject: 'CN=device-1', ref: 'maker', body: opts.body ?? 'cr', implicitConfirm: opts.implicitConfirm });
  return { msg, der: msg.toDer(), identity, alias: alias.name } as unknown as Exchange;
}

function deps(outcome: CmpOutcome, rootOf: CmpRa['rootOf'] = () => assert.fail('caPubs only for an ir under MAC protection')) {
  const inputs: CmpInput[] = [];
  const ra = {
    requestCertificate: async (input: CmpInput) => (inputs.push(input), outcome),
    rootOf,
  } as unknown as CmpRa;
  return { deps: { config, ra, log: console } as unknown as CmpDeps, inputs };
}

const statusOf = (body: { content: unknown }) => (body.content as CertRepMessage).response[0]!.status;

describe('CMP certificate requests against a fake RA', () => {
  it('hands the RA the transaction (profile, approval of the client, implicit confirmation asked and granted); "waiting" is a cp that keeps it open', async () => {
    const { deps: d, inputs } = deps({ status: 'waiting', reason: 'the request waits for approval by an operator' });
    const x = exchange({ implicitConfirm: true });
    const answer = await enroll(d, alias, x, 'cmp-0a');
    const input = inputs[0]!;
    assert.equal(input.requestId, 'cmp-0a');
    assert.equal(input.transactionId, Buffer.from(x.msg.header.transactionID!).toString('hex'));
    assert.equal(input.bodyType, 'cr');
    assert.equal(input.requestFormat, 'crmf');
    assert.equal(input.requester, 'ref:maker');
    assert.equal(input.profile, alias.profile);
    assert.equal(input.requireApproval, true, 'the client needs approval');
    assert.equal(input.implicitConfirm, true);
    assert.equal(input.confirmTimeout, `${config.cmp.confirmWaitSeconds} seconds`);
    assert.equal(answer.body.type, 'cp');
    assert.equal(statusOf(answer.body).status, PKIStatus.waiting);
    assert.deepEqual(statusOf(answer.body).statusString, ['the request waits for approval by an operator']);
    assert.equal(answer.close, false);
  });

  it('a refusal is a rejection with the PKIFailureInfo of its kind, and ends the transaction', async () => {
    const { deps: d } = deps({ status: 'rejected', kind: 'policy', message: 'the profile allows no such name' });
    const answer = await enroll(d, alias, exchange(), 'cmp-0b');
    const status = statusOf(answer.body);
    assert.equal(status.status, PKIStatus.rejection);
    assert.deepEqual(status.failInfo, ['badCertTemplate']);
    assert.equal(answer.close, true);
  });

  it('an issued certificate is answered with its chain in extraCerts and the confirmation wait (no implicit confirmation asked)', async () => {
    const keys = new MemoryKeyStore();
    await keys.generate('k', 'ec-p256');
    const cert = await createRootCertificate(keys, {
      keyId: 'k',
      keyAlg: 'ec-p256',
      subject: 'CN=device-1',
      validityDays: 1,
      now: new Date(),
    });
    const chain = await createRootCertificate(keys, {
      keyId: 'k',
      keyAlg: 'ec-p256',
      subject: 'CN=issuer',
      validityDays: 1,
      now: new Date(),
    });
    const { deps: d, inputs } = deps({
      status: 'issued',
      implicitConfirm: false,
      serial: '01',
      caName: 'certflow-issuing',
      certPem: pemEncode('CERTIFICATE', cert),
      chainPem: pemEncode('CERTIFICATE', chain),
      notBefore: new Date().toISOString(),
      notAfter: new Date().toISOString(),
    });
    const answer = await enroll(d, alias, exchange(), 'cmp-0c');
    assert.equal(inputs[0]!.implicitConfirm, false, 'not asked by the client');
    assert.equal(statusOf(answer.body).status, PKIStatus.accepted);
    assert.deepEqual(Buffer.from((answer.body.content as CertRepMessage).response[0]!.certifiedKeyPair!.certificate!), Buffer.from(cert));
    assert.deepEqual(
      answer.extraCerts?.map((c) => Buffer.from(c)),
      [Buffer.from(chain)],
    );
    assert.deepEqual(
      answer.generalInfo?.map((i) => i.infoType),
      [INFO_TYPES.confirmWaitTime],
    );
    assert.equal(answer.close, false, 'the transaction waits for certConf');
  });

  it("an ir under MAC protection gets in caPubs the root of the certificate's own CA generation", async () => {
    const keys = new MemoryKeyStore();
    await keys.generate('k', 'ec-p256');
    const make = (subject: string) =>
      createRootCertificate(keys, { keyId: 'k', keyAlg: 'ec-p256', subject, validityDays: 1, now: new Date() });
    const [cert, chain, root] = [await make('CN=device-1'), await make('CN=issuer'), await make('CN=root G1')];
    const asked: Array<[string, number | undefined]> = [];
    const { deps: d } = deps(
      {
        status: 'issued',
        implicitConfirm: true,
        serial: '02',
        caName: 'certflow-issuing',
        // Issued by generation 2; the CA may have rolled over (under a new root) since.
        caGeneration: 2,
        certPem: pemEncode('CERTIFICATE', cert),
        chainPem: pemEncode('CERTIFICATE', chain),
        notBefore: new Date().toISOString(),
        notAfter: new Date().toISOString(),
      },
      async (caName, generation) => (asked.push([caName, generation]), root),
    );
    const answer = await enroll(d, alias, exchange({ body: 'ir', implicitConfirm: true }), 'cmp-0d');
    assert.equal(answer.body.type, 'ip');
    assert.deepEqual(asked, [['certflow-issuing', 2]], 'the root of the generation that signed it, not of the active one');
    assert.deepEqual(
      (answer.body.content as CertRepMessage).caPubs?.map((c) => Buffer.from(c)),
      [Buffer.from(root)],
    );
  });
});
