/**
 * The pure rules behind the CA lifecycle (issue 19): name constraints (checked against
 * openssl's reading of them), RFC 7512 PKCS#11 URIs, when a CA may sign, certificate paths
 * to a trust anchor, the profile set (seed, managed versions, key profiles), profile diffs,
 * CRL policies and the CA file URLs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { cannotSign } from '../../src/ca/authority.ts';
import { certificatePath } from '../../src/ca/chain-check.ts';
import { crlPolicy } from '../../src/ca/crl-policy.ts';
import { createRootCertificate, createSubordinateCertificate } from '../../src/ca/hierarchy.ts';
import { profileDiff } from '../../src/ra/profiles.ts';
import { caUrls, parseCaFile } from '../../src/ca/urls.ts';
import { buildProfileSet, overlay, retiredBuiltins, type StoredProfile } from '../../src/config/profile-set.ts';
import { keyLabelOf, parsePkcs11Uri } from '../../src/keys/pkcs11-uri.ts';
import {
  decodeNameConstraints,
  describeCertificate,
  encodeNameConstraints,
  nameConstraintViolation,
  parseNameConstraint,
  pemEncode,
} from '../../src/pki/index.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';
import { openssl, tmpFile } from '../helpers/openssl.ts';

const sans = (s: Partial<Record<'dns' | 'ip' | 'email' | 'uri', string[]>>) => ({ dns: [], ip: [], email: [], uri: [], ...s });

describe('name constraints', () => {
  it('normalizes what operators write and refuses what is not a constraint', () => {
    assert.equal(parseNameConstraint('dns:Example.COM'), 'dns:example.com');
    assert.equal(parseNameConstraint('ip:10.1.2.3/8'), 'ip:10.0.0.0/8');
    assert.equal(parseNameConstraint('ip:2001:db8::1/32'), 'ip:2001:db8::/32');
    assert.equal(parseNameConstraint('email:a@example.com'), 'email:a@example.com');
    for (const bad of ['example.com', 'dns:-x-', 'ip:10.0.0.0', 'ip:10.0.0.0/33', 'uri:', 'x500:CN=a']) {
      assert.throws(() => parseNameConstraint(bad), /name constraint/, bad);
    }
  });

  it('round-trips through DER, and openssl reads the extension in a CA certificate', async () => {
    const nc = { permitted: ['dns:example.com', 'ip:10.0.0.0/8', 'email:.example.com'], excluded: ['dns:secret.example.com'] };
    assert.deepEqual(decodeNameConstraints(encodeNameConstraints(nc)), nc);
    const keys = new MemoryKeyStore();
    await keys.generate('root', 'ec-p256');
    await keys.generate('sub', 'ec-p256');
    const now = new Date();
    const rootDer = await createRootCertificate(keys, { keyId: 'root', keyAlg: 'ec-p256', subject: 'CN=NC Root', validityDays: 10, now });
    const subDer = await createSubordinateCertificate(keys, {
      issuer: { name: 'root', certDer: rootDer, keyId: 'root', keyAlg: 'ec-p256' },
      keyId: 'sub',
      keyAlg: 'ec-p256',
      subject: 'CN=NC Sub',
      validityDays: 5,
      now,
      nameConstraints: nc,
      urls: {},
    });
    assert.deepEqual(describeCertificate(subDer).nameConstraints, nc);
    const file = tmpFile('nc.pem');
    writeFileSync(file, pemEncode('CERTIFICATE', subDer));
    const text = openssl(['x509', '-in', file, '-noout', '-text']).stdout;
    assert.match(
      text,
      /Name Constraints: critical\s+Permitted:\s+DNS:example.com\s+IP:10.0.0.0\/255.0.0.0\s+email:.example.com\s+Excluded:\s+DNS:secret.example.com/,
    );
  });

  it('checks names as RFC 5280 4.2.1.10 says: below a permitted name, never below an excluded one', () => {
    const nc = {
      permitted: ['dns:example.com', 'ip:10.0.0.0/8', 'email:example.com', 'uri:.example.com'],
      excluded: ['dns:secret.example.com'],
    };
    assert.equal(
      nameConstraintViolation(nc, sans({ dns: ['example.com', 'a.b.example.com', '*.example.com'], ip: ['10.9.9.9'] })),
      undefined,
    );
    assert.equal(nameConstraintViolation(nc, sans({ dns: ['badexample.com'] })), 'dns:badexample.com');
    assert.equal(nameConstraintViolation(nc, sans({ dns: ['db.secret.example.com'] })), 'dns:db.secret.example.com');
    assert.equal(nameConstraintViolation(nc, sans({ ip: ['11.0.0.1'] })), 'ip:11.0.0.1');
    assert.equal(nameConstraintViolation(nc, sans({ email: ['a@example.com'] })), undefined);
    assert.equal(nameConstraintViolation(nc, sans({ email: ['a@sub.example.com'] })), 'email:a@sub.example.com');
    assert.equal(nameConstraintViolation(nc, sans({ uri: ['https://www.example.com/x'] })), undefined);
    assert.equal(nameConstraintViolation(nc, sans({ uri: ['https://example.org/'] })), 'uri:https://example.org/');
    // A type without permitted subtrees is unconstrained.
    assert.equal(nameConstraintViolation({ permitted: ['dns:example.com'], excluded: [] }, sans({ ip: ['192.0.2.1'] })), undefined);
  });
});

describe('PKCS#11 URIs (RFC 7512)', () => {
  it('reads token, object, id and type, percent-decoded', () => {
    assert.deepEqual(parsePkcs11Uri('pkcs11:token=My%20HSM;object=ca%2Dkey;id=%01%02;type=private'), {
      token: 'My HSM',
      object: 'ca-key',
      id: new Uint8Array([1, 2]),
      type: 'private',
    });
    assert.equal(keyLabelOf('pkcs11:token=certflow;object=issuing-2019', 'certflow'), 'issuing-2019');
    assert.equal(keyLabelOf('pkcs11:object=issuing-2019', 'certflow'), 'issuing-2019');
  });
  it('refuses what certflow cannot or must not use', () => {
    assert.throws(() => parsePkcs11Uri('pkcs11:object=a?pin-value=1234'), /query attributes/);
    assert.throws(() => parsePkcs11Uri('pkcs11:object=a;type=public'), /type=private/);
    assert.throws(() => parsePkcs11Uri('pkcs11:colour=blue'), /unknown attribute "colour"/);
    assert.throws(() => parsePkcs11Uri('pkcs11:object=%zz'), /percent-encoded/);
    assert.throws(() => parsePkcs11Uri('file:/key.pem'), /does not start with "pkcs11:"/);
    assert.throws(
      () => keyLabelOf('pkcs11:token=other;object=a', 'certflow'),
      /names token "other", but the worker's key store is token "certflow"/,
    );
    assert.throws(() => keyLabelOf('pkcs11:token=certflow;id=%01', 'certflow'), /names no key/);
  });
});

describe('when a CA may sign', () => {
  const base = { name: 'x', status: 'active' as const, keyBackend: 'software', notAfter: new Date(Date.now() + 86_400_000) };
  const now = new Date();
  it('an active CA with its key, before its notAfter', () => assert.equal(cannotSign(base, now), undefined));
  it('never a pending, revoked, outside or expired one', () => {
    assert.match(cannotSign({ ...base, status: 'pending' }, now)!.message, /has no certificate yet/);
    assert.match(
      cannotSign({ ...base, status: 'revoked', revokedAt: now, revocationReason: 'keyCompromise' }, now)!.message,
      /was revoked .* \(keyCompromise\)/,
    );
    assert.match(cannotSign({ ...base, keyBackend: 'none' }, now)!.message, /holds no key/);
    assert.match(cannotSign({ ...base, notAfter: new Date(now.getTime() - 1) }, now)!.message, /expired on/);
  });
  it("a revoked CA's last CRL and OCSP responses only (final)", () => {
    assert.equal(cannotSign({ ...base, status: 'revoked' }, now, { final: true }), undefined);
    assert.ok(cannotSign({ ...base, status: 'revoked', notAfter: new Date(0) }, now, { final: true }), 'not even then once expired');
  });
});

describe('certificate paths to a trust anchor', () => {
  it('finds the path through intermediates, and names what is missing or not allowed', async () => {
    const keys = new MemoryKeyStore();
    for (const k of ['root', 'mid', 'leafca', 'other']) await keys.generate(k, 'ec-p256');
    const now = new Date();
    const root = await createRootCertificate(keys, { keyId: 'root', keyAlg: 'ec-p256', subject: 'CN=Anchor', validityDays: 10, now });
    const other = await createRootCertificate(keys, { keyId: 'other', keyAlg: 'ec-p256', subject: 'CN=Other', validityDays: 10, now });
    const sub = (issuer: { name: string; certDer: Uint8Array; keyId: string }, keyId: string, subject: string, pathLen: number) =>
      createSubordinateCertificate(keys, {
        issuer: { ...issuer, keyAlg: 'ec-p256' },
        keyId,
        keyAlg: 'ec-p256',
        subject,
        validityDays: 5,
        now,
        pathLen,
        urls: {},
      });
    const mid = await sub({ name: 'root', certDer: root, keyId: 'root' }, 'mid', 'CN=Mid', 1);
    const leafCa = await sub({ name: 'mid', certDer: mid, keyId: 'mid' }, 'leafca', 'CN=LeafCA', 0);
    const path = certificatePath(leafCa, [mid], [root], now);
    assert.deepEqual(
      path.map((c) => c.summary.subject),
      ['CN=LeafCA', 'CN=Mid', 'CN=Anchor'],
    );
    assert.throws(
      () => certificatePath(leafCa, [], [root], now),
      /"CN=LeafCA" is signed by "CN=Mid", which is neither a configured trust anchor/,
    );
    assert.throws(() => certificatePath(leafCa, [mid], [other], now), /"CN=Mid" is signed by "CN=Anchor"/);
    assert.throws(() => certificatePath(root, [], [root], now), /neither a configured trust anchor/, 'a root does not anchor itself here');
  });
});

describe('profile sets', () => {
  const seed = {
    profiles: [{ name: 'iot', extends: 'device', validitySeconds: 1000 }],
    keyProfiles: [{ name: 'ec', ec: { curves: ['P-256' as const] } }],
    crlProfiles: [],
  };
  const stored = (kind: StoredProfile['kind'], name: string, definition: Record<string, unknown>, retired = false): StoredProfile => ({
    kind,
    name,
    version: 1,
    definition,
    retired,
    changedBy: 'test',
    changedAt: new Date(),
  });
  it('a stored version replaces the seed entry; new names come after; retired ones go', () => {
    const versions = [
      stored('certificate', 'iot', { name: 'iot', extends: 'device', validitySeconds: 2000, keyProfile: 'ec' }),
      stored('certificate', 'new', { name: 'new', extends: 'iot' }),
      stored('certificate', 'tls-client', { name: 'tls-client' }, true),
    ];
    const set = buildProfileSet(overlay(seed, versions), { retired: retiredBuiltins(versions) });
    assert.equal(set.profiles.get('iot')!.validitySeconds, 2000);
    assert.deepEqual(set.profiles.get('iot')!.keys, { ec: { curves: ['P-256'] } });
    assert.equal(set.profiles.get('new')!.validitySeconds, 2000);
    assert.equal(set.profiles.has('tls-client'), false);
    assert.equal(set.profiles.has('device'), true);
  });
  it('refuses unknown keyProfile and extends, and keys given twice', () => {
    assert.throws(() => buildProfileSet({ ...seed, profiles: [{ name: 'a', keyProfile: 'nope' }] }), /unknown key profile "nope"/);
    assert.throws(() => buildProfileSet({ ...seed, profiles: [{ name: 'a', extends: 'nope' }] }), /extends unknown profile "nope"/);
    assert.throws(
      () => buildProfileSet({ ...seed, profiles: [{ name: 'a', keyProfile: 'ec', keys: { ed25519: true } }] }),
      /both keys and keyProfile/,
    );
  });
  it('diffs definitions field by field', () => {
    assert.deepEqual(
      profileDiff({ name: 'a', san: { dns: true, ip: true } }, { name: 'a', san: { dns: false, ip: true }, lint: 'rfc5280' }),
      [
        { path: 'lint', from: null, to: 'rfc5280' },
        { path: 'san.dns', from: true, to: false },
      ],
    );
  });
});

describe('CRL policies and CA URLs', () => {
  const config = {
    revocation: { crlValiditySeconds: 7 * 86_400, crlRefreshSeconds: 86_400, ocspValiditySeconds: 1, ocspRefreshSeconds: 1 },
    crlProfiles: new Map([['d', { name: 'd', intervalSeconds: 3600, overlapSeconds: 600, deltaCrls: true }]]),
  };
  it("from the revocation settings, or the CA's CRL profile", () => {
    assert.deepEqual(crlPolicy(config, null), { refreshSeconds: 86_400, validitySeconds: 7 * 86_400 });
    assert.deepEqual(crlPolicy(config, 'd'), {
      profile: 'd',
      refreshSeconds: 3600,
      validitySeconds: 4200,
      delta: { intervalSeconds: 150 },
    });
    assert.throws(() => crlPolicy(config, 'gone'), /CRL profile "gone" does not exist/);
  });
  it('one URL per CA key generation, and back', () => {
    const c = { publicHttpUrl: 'http://ca.test' };
    assert.deepEqual(caUrls(c, 'x'), {
      crl: 'http://ca.test/crl/x.crl',
      ocsp: 'http://ca.test/ocsp',
      caIssuers: 'http://ca.test/ca/x.crt',
    });
    assert.equal(caUrls(c, 'x.y', 2, { delta: true }).deltaCrl, 'http://ca.test/crl/x.y/2/delta.crl');
    assert.deepEqual(parseCaFile('x.y.crl', 'crl'), { name: 'x.y', generation: 1, delta: false });
    assert.deepEqual(parseCaFile('x/3.crl', 'crl'), { name: 'x', generation: 3, delta: false });
    assert.deepEqual(parseCaFile('x/3/delta.crl', 'crl'), { name: 'x', generation: 3, delta: true });
    assert.deepEqual(parseCaFile('delta.crl', 'crl'), { name: 'delta', generation: 1, delta: false });
    assert.equal(parseCaFile('../x.crl', 'crl'), undefined);
  });
});
