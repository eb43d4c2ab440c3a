import { describe, it, before } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { CaError } from '../../src/core/errors.ts';
import { DEFAULT_PROFILES, type CertProfile } from '../../src/config/profiles.ts';
import type { KeyAlg } from '../../src/keys/types.ts';
import { createRootCertificate, createSubordinateCertificate } from '../../src/ca/hierarchy.ts';
import { prepareCertificate, signCertificate, type CaUrls, type IssuingCa } from '../../src/ca/issuer.ts';
import {
  buildTbsCertificate,
  describeCertificate,
  encodeName,
  keyIdentifier,
  parseCsr,
  parseDn,
  randomSerial,
} from '../../src/pki/index.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';
import { makeCsr, verifyChain, x509Text } from '../helpers/openssl.ts';

const DAY = 86_400_000;
const profile = (name: string): CertProfile => structuredClone(DEFAULT_PROFILES.find((p) => p.name === name)!);
const urls = (ca: string): CaUrls => ({
  crl: `http://ca.test:8080/crl/${ca}.crl`,
  ocsp: 'http://ca.test:8080/ocsp',
  caIssuers: `http://ca.test:8080/ca/${ca}.crt`,
});

interface Hierarchy {
  keys: MemoryKeyStore;
  root: IssuingCa;
  issuing: IssuingCa;
}

async function hierarchy(keyAlg: KeyAlg, opts: { now?: Date; rootDays?: number; issuingDays?: number } = {}): Promise<Hierarchy> {
  const keys = new MemoryKeyStore();
  const now = opts.now ?? new Date();
  await keys.generate('root', keyAlg);
  await keys.generate('issuing', keyAlg);
  const rootDer = await createRootCertificate(keys, {
    keyId: 'root',
    keyAlg,
    subject: 'CN=Test Root CA,O=certflow',
    validityDays: opts.rootDays ?? 3650,
    now,
  });
  const root: IssuingCa = { name: 'root', certDer: rootDer, keyId: 'root', keyAlg };
  const issuingDer = await createSubordinateCertificate(keys, {
    issuer: root,
    keyId: 'issuing',
    keyAlg,
    subject: 'CN=Test Issuing CA 1,O=certflow',
    validityDays: opts.issuingDays ?? 1825,
    now,
    pathLen: 0,
    urls: urls('root'),
  });
  return { keys, root, issuing: { name: 'issuing', certDer: issuingDer, keyId: 'issuing', keyAlg } };
}

async function issue(h: Hierarchy, csrPem: string, p: CertProfile, now = new Date(), caUrls: CaUrls = urls('issuing')) {
  const prepared = prepareCertificate({ csr: parseCsr(csrPem), profile: p, ca: h.issuing, serial: randomSerial(), now, urls: caUrls });
  const der = await signCertificate(h.keys, { keyId: h.issuing.keyId, keyAlg: h.issuing.keyAlg }, prepared.tbsDer, prepared.sigAlg);
  return { prepared, der };
}

/** The lines of `openssl x509 -text` after the line containing `heading`. */
function section(text: string, heading: string): string {
  const i = text.indexOf(heading);
  assert.ok(i >= 0, `no "${heading}" in:\n${text}`);
  return text.slice(i, text.indexOf('\n', text.indexOf('\n', i) + 1));
}

for (const keyAlg of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
  describe(`issuance with ${keyAlg} CA keys`, () => {
    let h: Hierarchy;
    before(async () => {
      h = await hierarchy(keyAlg);
    });

    it('creates a root and an issuing CA with the right extensions', () => {
      const rootText = x509Text(h.root.certDer);
      assert.match(section(rootText, 'X509v3 Basic Constraints'), /critical\s+CA:TRUE\s*$/);
      assert.match(section(rootText, 'X509v3 Key Usage'), /critical\s+Digital Signature, Certificate Sign, CRL Sign/);
      const root = describeCertificate(h.root.certDer);
      assert.equal(root.subject, 'CN=Test Root CA,O=certflow');
      assert.equal(root.issuer, root.subject);
      assert.equal(root.subjectKeyIdHex, root.authorityKeyIdHex);
      assert.equal(root.pathLen, undefined);

      const sub = describeCertificate(h.issuing.certDer);
      const subText = x509Text(h.issuing.certDer);
      assert.match(section(subText, 'X509v3 Basic Constraints'), /critical\s+CA:TRUE, pathlen:0/);
      assert.equal(sub.issuer, 'CN=Test Root CA,O=certflow');
      assert.equal(sub.authorityKeyIdHex, root.subjectKeyIdHex);
      assert.deepEqual(sub.crlUrls, ['http://ca.test:8080/crl/root.crl']);
      assert.deepEqual(sub.ocspUrls, ['http://ca.test:8080/ocsp']);
      assert.deepEqual(sub.caIssuersUrls, ['http://ca.test:8080/ca/root.crt']);
      const ca = verifyChain({ root: h.root.certDer, leaf: h.issuing.certDer });
      assert.equal(ca.code, 0, ca.stderr + ca.stdout);
    });

    it('issues a tls-server certificate that openssl verifies against the chain', async () => {
      const csr = makeCsr({ subj: '/CN=www.example.com', san: 'DNS:www.example.com,DNS:example.com,IP:192.0.2.7' });
      const { prepared, der } = await issue(h, csr.pem, profile('tls-server'));
      assert.equal(prepared.sigAlg, keyAlg === 'ec-p384' ? 'ecdsa-sha384' : keyAlg === 'ec-p256' ? 'ecdsa-sha256' : 'rsa-pkcs1-sha256');
      const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der, purpose: 'sslserver' });
      assert.equal(v.code, 0, v.stderr + v.stdout);
      assert.match(v.stdout, /: OK/);

      const text = x509Text(der);
      assert.match(section(text, 'X509v3 Basic Constraints'), /critical\s+CA:FALSE/);
      assert.match(section(text, 'X509v3 Key Usage'), /critical\s+Digital Signature\s*$/);
      assert.match(section(text, 'X509v3 Extended Key Usage'), /TLS Web Server Authentication\s*$/);
      assert.match(section(text, 'X509v3 Subject Alternative Name'), /DNS:www\.example\.com, DNS:example\.com, IP Address:192\.0\.2\.7/);
      assert.match(text, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/ca\.test:8080\/crl\/issuing\.crl/);
      assert.match(
        text,
        /Authority Information Access:\s+OCSP - URI:http:\/\/ca\.test:8080\/ocsp\s+CA Issuers - URI:http:\/\/ca\.test:8080\/ca\/issuing\.crt/,
      );
      assert.match(text, /X509v3 Subject Key Identifier/);
      assert.match(text, /X509v3 Authority Key Identifier/);

      const d = describeCertificate(der);
      const issuer = describeCertificate(h.issuing.certDer);
      assert.equal(d.authorityKeyIdHex, issuer.subjectKeyIdHex);
      assert.equal(d.subjectKeyIdHex, Buffer.from(keyIdentifier(parseCsr(csr.der).spki)).toString('hex'));
      assert.deepEqual(d.subjectDer.length > 2, true);
      assert.equal(d.issuer, issuer.subject);
      assert.equal(d.subject, prepared.subject);
      assert.equal(d.serialHex, prepared.serialHex);
      assert.deepEqual(d.sans, prepared.sans);
      assert.equal(d.notBefore.getTime(), prepared.notBefore.getTime());
      assert.equal(d.notAfter.getTime(), prepared.notAfter.getTime());
    });
  });
}

describe('profiles end to end', () => {
  let h: Hierarchy;
  before(async () => {
    h = await hierarchy('ec-p256');
  });

  it('tls-client certificates verify for sslclient', async () => {
    const csr = makeCsr({
      subj: '/CN=alice/O=Example/emailAddress=alice@example.com',
      san: 'email:alice@example.com,URI:spiffe://example.org/alice',
    });
    const { der } = await issue(h, csr.pem, profile('tls-client'));
    const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der, purpose: 'sslclient' });
    assert.equal(v.code, 0, v.stderr + v.stdout);
    const text = x509Text(der);
    assert.match(section(text, 'X509v3 Extended Key Usage'), /TLS Web Client Authentication\s*$/);
    assert.match(section(text, 'X509v3 Subject Alternative Name'), /email:alice@example\.com, URI:spiffe:\/\/example\.org\/alice/);
    assert.match(text, /Subject: CN = alice, O = Example, emailAddress = alice@example\.com/);
  });

  it('device certificates verify as client and server, with keyEncipherment for RSA', async () => {
    const csr = makeCsr({ key: 'rsa:2048', subj: '/CN=sensor-1/serialNumber=SN1', san: 'IP:10.0.0.1,URI:urn:dev:sensor-1' });
    const { der } = await issue(h, csr.pem, profile('device'));
    for (const purpose of ['sslclient', 'sslserver']) {
      const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der, purpose });
      assert.equal(v.code, 0, `${purpose}: ${v.stderr}${v.stdout}`);
    }
    const text = x509Text(der);
    assert.match(section(text, 'X509v3 Key Usage'), /critical\s+Digital Signature, Key Encipherment/);
    assert.match(section(text, 'X509v3 Extended Key Usage'), /TLS Web Client Authentication, TLS Web Server Authentication/);
  });

  it('key usage follows the extended key usages: an RSA device certificate without a DNS or IP SAN (no serverAuth) has no keyEncipherment, and zlint finds no KU/EKU inconsistency', async () => {
    const zlint = fileURLToPath(new URL('../../.certflow/go/bin/zlint', import.meta.url));
    assert.ok(existsSync(zlint), `zlint is not installed at ${zlint} (.ci/run installs it)`);
    const lint = (der: Uint8Array) => {
      const file = join(mkdtempSync(join(tmpdir(), 'certflow-zlint-')), 'cert.der');
      writeFileSync(file, der);
      const out = JSON.parse(execFileSync(zlint, ['-format', 'der', '-includeSources', 'RFC5280', file], { encoding: 'utf8' }));
      return out as Record<string, { result: string; details?: string }>;
    };
    // Without a DNS or IP SAN the device profile leaves serverAuth out (clientAuth only), and
    // keyEncipherment belongs to serverAuth (TLS 1.2 RSA key exchange), not to clientAuth.
    const bare = makeCsr({ key: 'rsa:2048', subj: '/CN=sensor-2/serialNumber=SN2', san: 'URI:urn:dev:sensor-2' });
    const { der } = await issue(h, bare.pem, profile('device'));
    const r = lint(der)['e_key_usage_and_extended_key_usage_inconsistent'];
    assert.equal(r?.result, 'pass', JSON.stringify(r));
    const text = x509Text(der);
    assert.match(section(text, 'X509v3 Extended Key Usage'), /^\s*X509v3 Extended Key Usage:\s*\n\s*TLS Web Client Authentication\s*$/);
    assert.match(section(text, 'X509v3 Key Usage'), /critical\s+Digital Signature\s*$/);
    // With a server name it keeps serverAuth, and with it keyEncipherment, still consistent.
    const named = makeCsr({ key: 'rsa:2048', subj: '/CN=sensor-3', san: 'DNS:sensor-3.example.test' });
    const server = await issue(h, named.pem, profile('device'));
    assert.match(section(x509Text(server.der), 'X509v3 Key Usage'), /critical\s+Digital Signature, Key Encipherment/);
    assert.equal(lint(server.der)['e_key_usage_and_extended_key_usage_inconsistent']?.result, 'pass');
  });

  it('an ACME-style request (empty subject) gets the CN from its first SAN', async () => {
    const csr = makeCsr({ subj: '/', san: 'DNS:acme.example,DNS:www.acme.example' });
    const { der } = await issue(h, csr.pem, profile('tls-server'));
    assert.equal(describeCertificate(der).subject, 'CN=acme.example');
  });

  it('leaves CDP and AIA out when no URLs are configured', async () => {
    const csr = makeCsr({ subj: '/CN=nourl.example', san: 'DNS:nourl.example' });
    const { der } = await issue(h, csr.pem, profile('tls-server'), new Date(), {});
    const text = x509Text(der);
    assert.doesNotMatch(text, /CRL Distribution Points|Authority Information Access/);
    const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der, purpose: 'sslserver' });
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  it('uses 20-byte positive serial numbers', async () => {
    const csr = makeCsr({ subj: '/CN=serial.example', san: 'DNS:serial.example' });
    for (let i = 0; i < 5; i++) {
      const { prepared, der } = await issue(h, csr.pem, profile('tls-server'));
      assert.equal(prepared.serialHex.length, 40);
      assert.ok(parseInt(prepared.serialHex[0], 16) < 8, prepared.serialHex);
      assert.notEqual(prepared.serialHex.slice(0, 2), '00');
      const shown = /Serial Number:\s*\n\s*([0-9a-f:]+)/.exec(x509Text(der))?.[1].replace(/:/g, '');
      assert.equal(shown, prepared.serialHex);
    }
  });

  it('prepareCertificate is deterministic for the same inputs (the TBS can be persisted and re-signed)', () => {
    const csr = parseCsr(makeCsr({ subj: '/CN=det.example', san: 'DNS:det.example' }).der);
    const args = {
      csr,
      profile: profile('tls-server'),
      ca: h.issuing,
      serial: randomSerial(),
      now: new Date('2030-01-01T00:00:00.123Z'),
      urls: urls('issuing'),
    };
    const a = prepareCertificate(args);
    const b = prepareCertificate(args);
    assert.deepEqual(a.tbsDer, b.tbsDer);
    assert.equal(a.notBefore.toISOString(), '2029-12-31T23:59:00.000Z'); // backdated 60 s, whole seconds
    assert.equal(a.notAfter.toISOString(), '2030-04-01T00:00:00.000Z'); // 90 days
  });
});

describe('validity limits', () => {
  it('never lets a certificate outlive its issuer', async () => {
    const now = new Date();
    const h = await hierarchy('ec-p256', { now, rootDays: 60, issuingDays: 3650 });
    const root = describeCertificate(h.root.certDer);
    const issuing = describeCertificate(h.issuing.certDer);
    assert.equal(issuing.notAfter.getTime(), root.notAfter.getTime()); // sub CA capped at the root
    const csr = makeCsr({ subj: '/CN=cap.example', san: 'DNS:cap.example' });
    const { prepared, der } = await issue(h, csr.pem, profile('tls-server'), now); // 90 days wanted
    assert.equal(prepared.notAfter.getTime(), issuing.notAfter.getTime());
    assert.equal(describeCertificate(der).notAfter.getTime(), issuing.notAfter.getTime());
    assert.ok(prepared.notAfter.getTime() - now.getTime() < 61 * DAY);
    const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der });
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  it('refuses to issue from an expired CA', async () => {
    const h = await hierarchy('ec-p256', { rootDays: 10, issuingDays: 5 });
    const csr = parseCsr(makeCsr({ subj: '/CN=late.example', san: 'DNS:late.example' }).der);
    assert.throws(
      () =>
        prepareCertificate({
          csr,
          profile: profile('tls-server'),
          ca: h.issuing,
          serial: randomSerial(),
          now: new Date(Date.now() + 6 * DAY),
          urls: {},
        }),
      (e: unknown) => CaError.is(e, 'config') && e.rule === 'ca.expired',
    );
  });
});

describe('signing', () => {
  it('signs with RSA-PSS (hash, MGF1 and salt length in the parameters)', async () => {
    const h = await hierarchy('rsa-2048');
    const issuer = describeCertificate(h.issuing.certDer);
    const csr = parseCsr(makeCsr({ subj: '/CN=pss.example', san: 'DNS:pss.example' }).der);
    const now = Date.now();
    const tbs = buildTbsCertificate({
      serial: randomSerial(),
      issuer: issuer.subjectDer,
      subject: encodeName(parseDn('CN=pss.example')),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + DAY),
      spki: csr.spki,
      sigAlg: 'rsa-pss-sha256',
      extensions: {
        basicConstraints: { ca: false },
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['1.3.6.1.5.5.7.3.1'],
        sans: csr.sans,
        subjectKeyId: keyIdentifier(csr.spki),
        authorityKeyId: Buffer.from(issuer.subjectKeyIdHex!, 'hex'),
      },
    });
    const der = await signCertificate(h.keys, { keyId: 'issuing', keyAlg: 'rsa-2048' }, tbs, 'rsa-pss-sha256');
    const text = x509Text(der);
    assert.match(
      text,
      /Signature Algorithm: rsassaPss\s+Hash Algorithm: sha256\s+Mask Algorithm: mgf1 with sha256\s+Salt Length: 0x20\s+Trailer Field: 0x01 \(default\)/,
    );
    const v = verifyChain({ root: h.root.certDer, chain: [h.issuing.certDer], leaf: der, purpose: 'sslserver' });
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  it('discards a certificate whose signature does not verify (faulty HSM)', async () => {
    const h = await hierarchy('ec-p256');
    const csr = parseCsr(makeCsr({ subj: '/CN=glitch.example', san: 'DNS:glitch.example' }).der);
    const prepared = prepareCertificate({
      csr,
      profile: profile('tls-server'),
      ca: h.issuing,
      serial: randomSerial(),
      now: new Date(),
      urls: {},
    });
    const other = await h.keys.generate('other', 'ec-p256');
    assert.ok(other);
    h.keys.tamper = (sig) => {
      const bad = sig.slice();
      bad[bad.length - 1] ^= 0x01;
      return bad;
    };
    await assert.rejects(
      signCertificate(h.keys, { keyId: 'issuing', keyAlg: 'ec-p256' }, prepared.tbsDer, prepared.sigAlg),
      (e: unknown) => CaError.is(e, 'internal') && e.rule === 'sign.verify',
    );
  });

  it('refuses mismatched algorithms and unknown keys', async () => {
    const h = await hierarchy('ec-p256');
    const tbs = new Uint8Array([0x30, 0x00]);
    await assert.rejects(signCertificate(h.keys, { keyId: 'issuing', keyAlg: 'ec-p256' }, tbs, 'rsa-pkcs1-sha256'), (e: unknown) =>
      CaError.is(e, 'internal'),
    );
    await assert.rejects(
      signCertificate(h.keys, { keyId: 'issuing', keyAlg: 'ec-p384' }, tbs, 'ecdsa-sha384'),
      (e: unknown) => CaError.is(e, 'config') && e.rule === 'ca.key',
    );
    await assert.rejects(
      signCertificate(h.keys, { keyId: 'nope', keyAlg: 'ec-p256' }, tbs, 'ecdsa-sha256'),
      (e: unknown) => CaError.is(e, 'config') && e.rule === 'ca.key',
    );
    await assert.rejects(
      createRootCertificate(h.keys, { keyId: 'missing', keyAlg: 'ec-p256', subject: 'CN=x', validityDays: 1, now: new Date() }),
      (e: unknown) => CaError.is(e, 'config'),
    );
  });

  it('a CA with pathLen 0 cannot create a subordinate CA', async () => {
    const h = await hierarchy('ec-p256');
    await h.keys.generate('third', 'ec-p256');
    await assert.rejects(
      createSubordinateCertificate(h.keys, {
        issuer: h.issuing,
        keyId: 'third',
        keyAlg: 'ec-p256',
        subject: 'CN=Third',
        validityDays: 10,
        now: new Date(),
        urls: {},
      }),
      (e: unknown) => CaError.is(e, 'config') && e.rule === 'ca.pathLen',
    );
  });
});
