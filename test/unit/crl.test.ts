import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { CaError } from '../../src/core/errors.ts';
import { signCrl } from '../../src/ca/crl.ts';
import {
  assembleCrl,
  buildTbsCrl,
  describeCertificate,
  describeCrl,
  pemEncode,
  reasonCode,
  reasonFromCode,
  REVOCATION_REASONS,
  serialFromHex,
  verifyCrlSignature,
  type CrlEntry,
} from '../../src/pki/index.ts';
import { writePem } from '../helpers/openssl.ts';
import { hierarchy, issueLeaf, ISSUING_CRL_URL, opensslAll, writeDer, type Hierarchy } from '../helpers/revocation.ts';

const HOUR = 3_600_000;

/** `openssl crl -text` with signature verification against `issuerCert`. */
function crlText(crl: Uint8Array, issuerCert: Uint8Array) {
  return opensslAll([
    'crl',
    '-inform',
    'DER',
    '-in',
    writeDer('crl.der', crl),
    '-CAfile',
    writePem('issuer.pem', issuerCert),
    '-noout',
    '-text',
  ]);
}

/** `openssl verify -crl_check` of `leaf` against root + issuing with the given CRLs (PEM file). */
function verifyWithCrl(h: Hierarchy, leaf: Uint8Array, crls: Uint8Array[], all = false) {
  const crlFile = writeDer('crls.pem', Buffer.from(crls.map((c) => pemEncode('X509 CRL', c)).join('')));
  return opensslAll([
    'verify',
    '-x509_strict',
    all ? '-crl_check_all' : '-crl_check',
    '-CRLfile',
    crlFile,
    '-CAfile',
    writePem('root.pem', h.root.certDer),
    '-untrusted',
    writePem('chain.pem', h.issuing.certDer),
    writePem('leaf.pem', leaf),
  ]);
}

describe('revocation reasons', () => {
  it('maps names to RFC 5280 codes and back (7 is unused)', () => {
    assert.equal(reasonCode('keyCompromise'), 1);
    assert.equal(reasonCode('certificateHold'), 6);
    assert.equal(reasonCode('removeFromCRL'), 8);
    assert.equal(reasonCode('aACompromise'), 10);
    assert.equal(reasonFromCode(7), undefined);
    assert.equal(reasonFromCode(11), undefined);
    for (const [name, code] of Object.entries(REVOCATION_REASONS)) assert.equal(reasonFromCode(code), name);
    assert.equal(Object.keys(REVOCATION_REASONS).length, 10);
  });

  it('encodes serials as positive INTEGERs', () => {
    assert.deepEqual([...serialFromHex('7f01')], [0x7f, 0x01]);
    assert.deepEqual([...serialFromHex('ff01')], [0x00, 0xff, 0x01]);
    assert.deepEqual([...serialFromHex('000abc')], [0x0a, 0xbc]);
    assert.deepEqual([...serialFromHex('abc')], [0x0a, 0xbc]);
    for (const bad of ['', 'xyz', '00', 'ff'.repeat(20)])
      assert.throws(
        () => serialFromHex(bad),
        (e) => CaError.is(e, 'malformed'),
        bad,
      );
  });
});

for (const keyAlg of ['ec-p256', 'rsa-2048'] as const) {
  describe(`CRLs signed by ${keyAlg} CAs`, () => {
    let h: Hierarchy;
    let revoked: { der: Uint8Array; serialHex: string };
    let held: { der: Uint8Array; serialHex: string };
    let good: { der: Uint8Array; serialHex: string };
    const now = new Date();
    const ca = () => ({ certDer: h.issuing.certDer, keyId: h.issuing.keyId, keyAlg: h.issuing.keyAlg });

    before(async () => {
      h = await hierarchy(keyAlg);
      [revoked, held, good] = await Promise.all([
        issueLeaf(h, 'revoked.example'),
        issueLeaf(h, 'held.example'),
        issueLeaf(h, 'good.example'),
      ]);
    });

    const entries = (): CrlEntry[] => [
      { serialHex: revoked.serialHex, revokedAt: new Date(now.getTime() - HOUR), reason: 'keyCompromise' },
      { serialHex: held.serialHex, revokedAt: new Date(now.getTime() - 2 * HOUR), reason: 'certificateHold' },
      { serialHex: 'ff01', revokedAt: new Date(now.getTime() - 3 * HOUR), reason: 'superseded' },
      { serialHex: '0123', revokedAt: new Date(now.getTime() - 4 * HOUR), reason: 'unspecified' },
      { serialHex: '4567', revokedAt: new Date(now.getTime() - 5 * HOUR) },
    ];

    /** Signs a CRL of the issuing CA; `idp` false leaves the issuingDistributionPoint out. */
    const sign = (list: CrlEntry[], crlNumber = 42n, idp = true) =>
      signCrl(h.keys, ca(), {
        thisUpdate: new Date(now.getTime() - 60_000),
        nextUpdate: new Date(now.getTime() + 24 * HOUR),
        crlNumber,
        entries: list,
        idpUrl: idp ? ISSUING_CRL_URL : undefined,
      });

    it('openssl verifies the CRL and lists serials, reasons, number and scope', async () => {
      const crl = await sign(entries());
      const r = crlText(crl, h.issuing.certDer);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /verify OK/);
      assert.match(r.out, /Version 2 \(0x1\)/);
      assert.match(r.out, /Issuer: CN = Test Issuing CA 1, O = certflow/);
      assert.match(r.out, /X509v3 CRL Number:\s*\n\s*42\n/);
      assert.match(r.out, /X509v3 Authority Key Identifier:/);
      assert.match(
        r.out,
        /X509v3 Issuing Distribution Point: critical\s*\n\s*Full Name:\s*\n\s*URI:http:\/\/ca\.test:8080\/crl\/issuing\.crl/,
      );
      const entry = (serial: string) =>
        new RegExp(
          `Serial Number: ${serial.toUpperCase()}\\n\\s*Revocation Date: [^\\n]+\\n(\\s*CRL entry extensions:\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*([^\\n]+))?`,
        );
      assert.equal(entry(revoked.serialHex).exec(r.out)?.[2], 'Key Compromise');
      assert.equal(entry(held.serialHex).exec(r.out)?.[2], 'Certificate Hold');
      assert.equal(entry('FF01').exec(r.out)?.[2], 'Superseded');
      // unspecified is written as "no reason code" (RFC 5280 5.3.1)
      assert.ok(entry('0123').exec(r.out), r.out);
      assert.equal(entry('0123').exec(r.out)?.[2], undefined);
      assert.equal(entry('4567').exec(r.out)?.[2], undefined);

      const wrongIssuer = crlText(crl, h.root.certDer);
      assert.notEqual(wrongIssuer.code, 0, wrongIssuer.out);
    });

    it('describeCrl reads back what was signed', async () => {
      const crl = await sign(entries(), 2n ** 150n);
      assert.ok(verifyCrlSignature(crl, describeCertificate(h.issuing.certDer).spki));
      assert.ok(!verifyCrlSignature(crl, describeCertificate(h.root.certDer).spki));
      const d = describeCrl(crl);
      assert.equal(d.issuer, 'CN=Test Issuing CA 1,O=certflow');
      assert.equal(d.crlNumber, 2n ** 150n);
      assert.equal(d.idpUrl, ISSUING_CRL_URL);
      assert.equal(d.authorityKeyIdHex, describeCertificate(h.issuing.certDer).subjectKeyIdHex);
      assert.equal(d.thisUpdate.getTime(), Math.floor((now.getTime() - 60_000) / 1000) * 1000);
      assert.equal(d.nextUpdate?.getTime(), Math.floor((now.getTime() + 24 * HOUR) / 1000) * 1000);
      assert.deepEqual(
        d.entries,
        entries().map((e) => {
          const out: CrlEntry = { serialHex: e.serialHex, revokedAt: new Date(Math.floor(e.revokedAt.getTime() / 1000) * 1000) };
          if (e.reason && e.reason !== 'unspecified') out.reason = e.reason;
          return out;
        }),
      );
    });

    it('openssl verify -crl_check rejects the revoked and held leaves and accepts the good one', async () => {
      const crl = await sign(entries());
      for (const leaf of [revoked, held]) {
        const r = verifyWithCrl(h, leaf.der, [crl]);
        assert.notEqual(r.code, 0, r.out);
        assert.match(r.out, /certificate revoked/);
      }
      const ok = verifyWithCrl(h, good.der, [crl]);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /: OK/);
    });

    it('an empty CRL has no revokedCertificates and verifies', async () => {
      const crl = await sign([], 1n, false);
      const r = crlText(crl, h.issuing.certDer);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /verify OK/);
      assert.match(r.out, /No Revoked Certificates\./);
      assert.doesNotMatch(r.out, /Issuing Distribution Point/);
      assert.deepEqual(describeCrl(crl).entries, []);
      assert.equal(describeCrl(crl).idpUrl, undefined);
      const ok = verifyWithCrl(h, revoked.der, [crl]);
      assert.equal(ok.code, 0, ok.out);
    });

    it('a root CRL checks the issuing CA too (-crl_check_all)', async () => {
      const root = { certDer: h.root.certDer, keyId: h.root.keyId, keyAlg: h.root.keyAlg };
      const window = { thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + HOUR), crlNumber: 7n };
      const issuingCrl = await sign(entries());
      const rootCrl = await signCrl(h.keys, root, { ...window, entries: [] });
      const ok = verifyWithCrl(h, good.der, [issuingCrl, rootCrl], true);
      assert.equal(ok.code, 0, ok.out);
      const issuingSerial = describeCertificate(h.issuing.certDer).serialHex;
      const revokedCa = await signCrl(h.keys, root, {
        ...window,
        entries: [{ serialHex: issuingSerial, revokedAt: now, reason: 'cACompromise' }],
      });
      const bad = verifyWithCrl(h, good.der, [issuingCrl, revokedCa], true);
      assert.notEqual(bad.code, 0, bad.out);
      assert.match(bad.out, /certificate revoked/);
    });

    it('refuses a signature that does not verify', async () => {
      h.keys.tamper = (sig) => {
        const out = sig.slice();
        out[out.length - 1] ^= 1;
        return out;
      };
      try {
        await assert.rejects(sign(entries()), (e) => CaError.is(e, 'internal') && e.rule === 'sign.verify');
      } finally {
        h.keys.tamper = undefined;
      }
    });
  });
}

describe('CRL building rules', () => {
  let h: Hierarchy;
  before(async () => {
    h = await hierarchy('ec-p256');
  });
  const base = () => {
    const issuer = describeCertificate(h.issuing.certDer);
    return {
      issuer: issuer.subjectDer,
      thisUpdate: new Date('2049-12-31T00:00:00.750Z'),
      nextUpdate: new Date('2050-01-02T00:00:00Z'),
      crlNumber: 1n,
      authorityKeyId: Buffer.from(issuer.subjectKeyIdHex!, 'hex'),
      sigAlg: 'ecdsa-sha256' as const,
      entries: [] as CrlEntry[],
    };
  };

  it('uses UTCTime through 2049 and GeneralizedTime from 2050, whole seconds', () => {
    const tbs = Buffer.from(buildTbsCrl({ ...base(), entries: [{ serialHex: '01', revokedAt: new Date('2051-06-01T12:00:00.5Z') }] }));
    assert.ok(tbs.includes(Buffer.from('\x17\x0d491231000000Z', 'latin1')));
    assert.ok(tbs.includes(Buffer.from('\x18\x0f20500102000000Z', 'latin1')));
    assert.ok(tbs.includes(Buffer.from('\x18\x0f20510601120000Z', 'latin1')));
  });

  it('rejects inconsistent input', () => {
    const internal = (e: unknown) => CaError.is(e, 'internal');
    assert.throws(() => buildTbsCrl({ ...base(), nextUpdate: base().thisUpdate }), internal);
    assert.throws(() => buildTbsCrl({ ...base(), crlNumber: -1n }), internal);
    assert.throws(() => buildTbsCrl({ ...base(), crlNumber: 2n ** 160n }), internal);
    const at = new Date();
    assert.throws(
      () =>
        buildTbsCrl({
          ...base(),
          entries: [
            { serialHex: '0a', revokedAt: at },
            { serialHex: '000A', revokedAt: at },
          ],
        }),
      internal,
    );
    assert.throws(() => buildTbsCrl({ ...base(), entries: [{ serialHex: '0a', revokedAt: at, reason: 'removeFromCRL' }] }), internal);
    assert.throws(
      () => buildTbsCrl({ ...base(), entries: [{ serialHex: 'zz', revokedAt: at }] }),
      (e) => CaError.is(e, 'malformed'),
    );
    const tbs = buildTbsCrl(base());
    assert.throws(() => assembleCrl(tbs, 'ecdsa-sha384', new Uint8Array([1])), internal);
    assert.throws(() => assembleCrl(tbs, 'ecdsa-sha256', new Uint8Array()), internal);
  });

  it('describeCrl turns garbage into CaError(malformed)', () => {
    for (const bad of [new Uint8Array(), new Uint8Array([0x30, 0x03, 0x02, 0x01]), h.issuing.certDer, new Uint8Array([0x30, 0x00, 0x00])]) {
      assert.throws(
        () => describeCrl(bad),
        (e) => CaError.is(e, 'malformed'),
      );
    }
  });

  it('refuses to sign with a CA certificate whose key is elsewhere', async () => {
    await assert.rejects(
      signCrl(
        h.keys,
        { certDer: h.issuing.certDer, keyId: 'root', keyAlg: 'ec-p256' },
        { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + HOUR), crlNumber: 1n, entries: [] },
      ),
      (e) => CaError.is(e, 'config') && e.rule === 'ca.key',
    );
  });
});
