/**
 * The EST enrollment handler (src/est/router.ts, after authentication) against a fake
 * registration authority: it reads the PKCS#10 body, keeps a re-enrollment's identity,
 * hands the RA who asks, where and what, and renders the RA's answer (200 certs-only,
 * 202 + Retry-After). No server, database or Temporal.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Context } from 'koa';
import { createRootCertificate } from '../../src/ca/hierarchy.ts';
import { loadConfig } from '../../src/config/index.ts';
import { CaError } from '../../src/core/errors.ts';
import type { EstClientRow } from '../../src/db/repos/est-clients.ts';
import type { EstIdentity } from '../../src/est/identity.ts';
import { enrollAs, type EstDeps } from '../../src/est/router.ts';
import { base64Body, buildCsr, parseCertsOnly, parseCsr } from '../../src/pki/index.ts';
import type { EstEnrollment, EstRa } from '../../src/ra/enrollment.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';

const config = loadConfig({ CERTFLOW_HOME: '/tmp/certflow-unit-est-handlers' });
const label = { ...config.est.labels.get('')!, name: 'devices', requireApproval: true };
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const csrDer = buildCsr({ subject: 'CN=device-1', sans: { dns: ['device-1.example.test'], ip: [], email: [], uri: [] }, privateKey: key });

/** A real certificate (what the RA returns is put into a certs-only answer as it is). */
async function aCertificate(): Promise<Uint8Array> {
  const keys = new MemoryKeyStore();
  await keys.generate('k', 'ec-p256');
  return createRootCertificate(keys, { keyId: 'k', keyAlg: 'ec-p256', subject: 'CN=device-1', validityDays: 1, now: new Date() });
}

const client: EstClientRow = {
  name: 'maker',
  passwordHash: 'scrypt$x',
  profile: 'device',
  labels: [],
  requireApproval: false,
  enabled: true,
  email: null,
  createdAt: new Date(),
  updatedAt: new Date(),
};
const basic: EstIdentity = { type: 'basic', client, key: 'basic:maker', name: 'maker' };

/** The part of a Koa context the handler uses: a PKCS#10 body, headers out, status and body. */
function fakeCtx(body: string, contentType = 'application/pkcs10') {
  const headers: Record<string, string> = {};
  return {
    req: Readable.from([Buffer.from(body)]),
    is: (type: string) => (type === contentType ? type : false),
    get: (name: string) => (name.toLowerCase() === 'content-type' ? contentType : ''),
    set: (name: string, value: string) => void (headers[name] = value),
    headers,
    status: 404,
    type: '',
    body: undefined as unknown,
  };
}

function deps(enroll: (a: EstEnrollment) => ReturnType<EstRa['enroll']>) {
  const calls: EstEnrollment[] = [];
  const ra: EstRa = {
    enroll: (a) => (calls.push(a), enroll(a)),
    archiveServerKey: () => assert.fail('no key is archived for simpleenroll'),
  };
  return { deps: { config, ra, log: console } as unknown as EstDeps, calls };
}

describe('EST enrollment handler against a fake RA', () => {
  it('hands the RA who asks, where, what kind and the CSR; an issued certificate is answered as base64 certs-only', async () => {
    const certDer = Buffer.from(await aCertificate());
    const { deps: d, calls } = deps(async () => ({ status: 'issued', certDer, requestId: 'r1' }));
    const ctx = fakeCtx(base64Body(csrDer));
    await enrollAs(ctx as unknown as Context, d, label, 'enroll', { identity: basic, client: basic });
    assert.equal(calls.length, 1);
    const a = calls[0]!;
    assert.deepEqual(a.requester, { key: 'basic:maker', name: 'maker' });
    assert.equal(a.label, 'devices');
    assert.equal(a.kind, 'enroll');
    assert.equal(a.profile, 'device');
    assert.equal(a.requireApproval, true, 'the label asks for approval');
    assert.deepEqual(Buffer.from(a.csrDer), Buffer.from(csrDer));
    assert.equal(ctx.status, 200);
    assert.equal(ctx.headers['Content-Type'], 'application/pkcs7-mime; smime-type=certs-only');
    assert.equal(ctx.headers['Content-Transfer-Encoding'], 'base64');
    assert.deepEqual(
      parseCertsOnly(Buffer.from(ctx.body as string, 'base64')).map((c) => Buffer.from(c)),
      [certDer],
    );
  });

  it("an enrollment still waiting (approval, signing) is 202 with the RA's Retry-After and message", async () => {
    const { deps: d } = deps(async () => ({
      status: 'pending',
      retryAfter: 60,
      message: 'enrollment r1 waits for approval by an operator',
    }));
    const ctx = fakeCtx(base64Body(csrDer));
    await enrollAs(ctx as unknown as Context, d, label, 'enroll', { identity: basic, client: basic });
    assert.equal(ctx.status, 202);
    assert.equal(ctx.headers['Retry-After'], '60');
    assert.equal(ctx.body, 'enrollment r1 waits for approval by an operator\n');
  });

  it('refuses a body that is not application/pkcs10 (415) and a re-enrollment that changes the subject (policy), never asking the RA', async () => {
    const { deps: d, calls } = deps(async () => assert.fail('the RA is not asked'));
    await assert.rejects(
      enrollAs(fakeCtx(base64Body(csrDer), 'text/plain') as unknown as Context, d, label, 'enroll', { identity: basic, client: basic }),
      (e: unknown) => CaError.is(e, 'malformed') && e.details?.httpStatus === 415,
    );
    const current = parseCsr(csrDer);
    const holder = {
      type: 'cert',
      key: 'cert:0a',
      name: 'cert:0a',
      cert: { serial: '0a', profile: 'device', caName: 'certflow-issuing' },
      summary: { serialHex: '0a', subject: 'CN=device-2', sans: current.sans },
    } as unknown as EstIdentity;
    await assert.rejects(
      enrollAs(fakeCtx(base64Body(csrDer)) as unknown as Context, d, label, 'reenroll', {
        identity: holder,
        replaces: '0a',
      }),
      (e: unknown) => CaError.is(e, 'policy') && e.rule === 'renewal.names',
    );
    assert.equal(calls.length, 0);
  });
});
