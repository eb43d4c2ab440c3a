import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CaError } from '../../src/core/errors.ts';
import { DEFAULT_PROFILES } from '../../src/config/profiles.ts';
import { buildCsrAttrs, csrAttrsForProfile, parseCsrAttrs } from '../../src/pki/index.ts';
import { openssl } from '../helpers/openssl.ts';

/** `openssl asn1parse -inform DER` output; fails the test when openssl cannot parse it. */
function asn1parse(der: Uint8Array): string {
  const r = openssl(['asn1parse', '-inform', 'DER'], der);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** The OBJECT names openssl prints, in order. */
function objectNames(der: Uint8Array): string[] {
  return [...asn1parse(der).matchAll(/OBJECT\s+:(.*)$/gm)].map((m) => m[1].trim());
}

function throwsCa(fn: () => unknown, kind: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CaError && e.kind === kind && message.test(e.message));
}

const OIDS = {
  challengePassword: '1.2.840.113549.1.9.7',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  p521: '1.3.132.0.35',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  extensionRequest: '1.2.840.113549.1.9.14',
  macAddress: '1.3.6.1.1.1.1.22',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  serialNumber: '2.5.4.5',
  ed25519: '1.3.101.112',
};

describe('buildCsrAttrs', () => {
  it('reproduces the RFC 7030 4.5.2 example byte for byte', () => {
    const rfcExample = 'MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==';
    const built = buildCsrAttrs([
      { oid: OIDS.challengePassword },
      { attribute: OIDS.ecPublicKey, values: [{ oid: OIDS.p384 }] },
      { attribute: OIDS.extensionRequest, values: [{ oid: OIDS.macAddress }] },
      { oid: OIDS.ecdsaSha384 },
    ]);
    assert.equal(Buffer.from(built).toString('base64'), rfcExample);
    assert.deepEqual(objectNames(built), [
      'challengePassword',
      'id-ecPublicKey',
      'secp384r1',
      'Extension Request',
      '1.3.6.1.1.1.1.22',
      'ecdsa-with-SHA384',
    ]);
  });

  it('round-trips through parseCsrAttrs', () => {
    const der = buildCsrAttrs([
      { oid: OIDS.challengePassword },
      { attribute: OIDS.ecPublicKey, values: [{ oid: OIDS.p384 }] },
      { oid: OIDS.serialNumber },
    ]);
    assert.deepEqual(parseCsrAttrs(der), [
      { oid: OIDS.challengePassword },
      { attribute: OIDS.ecPublicKey, values: [OIDS.p384] },
      { oid: OIDS.serialNumber },
    ]);
  });

  it('writes attribute values as a DER SET OF (sorted, no duplicates)', () => {
    const der = buildCsrAttrs([
      { attribute: OIDS.ecPublicKey, values: [{ oid: OIDS.p256 }, { oid: OIDS.p521 }, { oid: OIDS.p384 }, { oid: OIDS.p256 }] },
    ]);
    // 06 05 2b 81 04 00 22 (P-384) < 06 05 2b 81 04 00 23 (P-521) < 06 08 2a ... (P-256)
    assert.deepEqual(parseCsrAttrs(der), [{ attribute: OIDS.ecPublicKey, values: [OIDS.p384, OIDS.p521, OIDS.p256] }]);
    assert.deepEqual(objectNames(der), ['id-ecPublicKey', 'secp384r1', 'secp521r1', 'prime256v1']);
  });

  it('builds an empty SEQUENCE for no items', () => {
    assert.deepEqual(buildCsrAttrs([]), new Uint8Array([0x30, 0x00]));
    assert.deepEqual(parseCsrAttrs(new Uint8Array([0x30, 0x00])), []);
  });

  it('rejects bad OIDs and attributes without values', () => {
    throwsCa(() => buildCsrAttrs([{ oid: '1.2.x' }]), 'internal', /CSR attribute 1: "1.2.x" is not a dotted object identifier/);
    throwsCa(() => buildCsrAttrs([{ oid: '3.1' }]), 'internal', /not a dotted object identifier/);
    throwsCa(() => buildCsrAttrs([{ oid: '1.40' }]), 'internal', /not a dotted object identifier/);
    throwsCa(() => buildCsrAttrs([{ oid: '1.2.03' }]), 'internal', /not a dotted object identifier/);
    throwsCa(() => buildCsrAttrs([{ attribute: OIDS.ecPublicKey, values: [] }]), 'internal', /has no values/);
    throwsCa(() => buildCsrAttrs([{ attribute: OIDS.ecPublicKey, values: [{ oid: 'P-256' }] }]), 'internal', /a value of CSR attribute 1/);
  });
});

describe('parseCsrAttrs', () => {
  it('gives non-OID values as hex DER', () => {
    // SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.1.1, SET { INTEGER 3072 } } }
    const der = new Uint8Array(Buffer.from('30133011' + '06092a864886f70d010101' + '3104' + '02020c00', 'hex'));
    assert.equal(der.length, 0x15);
    assert.deepEqual(parseCsrAttrs(der), [{ attribute: OIDS.rsaEncryption, values: ['02020c00'] }]);
  });

  it('rejects what is not a CsrAttrs', () => {
    throwsCa(() => parseCsrAttrs(new Uint8Array(0)), 'malformed', /empty/);
    throwsCa(() => parseCsrAttrs(new Uint8Array([0x31, 0x00])), 'malformed', /not a SEQUENCE/);
    throwsCa(() => parseCsrAttrs(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])), 'malformed', /CSR attribute 1 is neither/);
    throwsCa(() => parseCsrAttrs(new Uint8Array([0x30, 0x05, 0x30, 0x03, 0x06, 0x01, 0x2a])), 'malformed', /is not an Attribute/);
    throwsCa(
      () => parseCsrAttrs(new Uint8Array([0x30, 0x07, 0x30, 0x05, 0x06, 0x01, 0x2a, 0x31, 0x00])),
      'malformed',
      /empty SET of values/,
    );
    throwsCa(() => parseCsrAttrs(new Uint8Array([0x30, 0x00, 0x00])), 'malformed', /trailing data/);
  });
});

describe('csrAttrsForProfile', () => {
  it('P-384 only with a challenge password: the RFC 7030 example set', () => {
    const der = csrAttrsForProfile({ keys: { ec: { curves: ['P-384'] } }, challengePassword: true });
    assert.deepEqual(parseCsrAttrs(der), [
      { oid: OIDS.challengePassword },
      { attribute: OIDS.ecPublicKey, values: [OIDS.p384] },
      { oid: OIDS.ecdsaSha384 },
    ]);
    assert.deepEqual(objectNames(der), ['challengePassword', 'id-ecPublicKey', 'secp384r1', 'ecdsa-with-SHA384']);
  });

  it('the default tls-server profile: EC P-256/P-384 with SHA-256, Ed25519, no RSA', () => {
    const profile = DEFAULT_PROFILES.find((p) => p.name === 'tls-server')!;
    const der = csrAttrsForProfile({ keys: profile.keys, requireSerialNumber: true });
    assert.deepEqual(parseCsrAttrs(der), [
      { oid: OIDS.serialNumber },
      { attribute: OIDS.ecPublicKey, values: [OIDS.p384, OIDS.p256] },
      { oid: OIDS.ecdsaSha256 },
      { oid: OIDS.ed25519 },
    ]);
    assert.deepEqual(objectNames(der), ['serialNumber', 'id-ecPublicKey', 'secp384r1', 'prime256v1', 'ecdsa-with-SHA256', 'ED25519']);
  });

  it('RSA only: rsaEncryption and sha256WithRSAEncryption', () => {
    const der = csrAttrsForProfile({ keys: { rsa: { minBits: 2048, maxBits: 4096 } } });
    assert.deepEqual(parseCsrAttrs(der), [{ oid: OIDS.rsaEncryption }, { oid: OIDS.sha256WithRsa }]);
    assert.deepEqual(objectNames(der), ['rsaEncryption', 'sha256WithRSAEncryption']);
  });

  it('RSA and Ed25519 without EC advertise both', () => {
    const der = csrAttrsForProfile({ keys: { rsa: { minBits: 2048, maxBits: 4096 }, ed25519: true }, challengePassword: true });
    assert.deepEqual(objectNames(der), ['challengePassword', 'rsaEncryption', 'sha256WithRSAEncryption', 'ED25519']);
  });

  it('matches the ECDSA hash to the weakest allowed curve', () => {
    const sigOf = (curves: string[]) => parseCsrAttrs(csrAttrsForProfile({ keys: { ec: { curves } } }))[1];
    assert.deepEqual(sigOf(['P-256']), { oid: OIDS.ecdsaSha256 });
    assert.deepEqual(sigOf(['P-384', 'P-256']), { oid: OIDS.ecdsaSha256 });
    assert.deepEqual(sigOf(['P-384']), { oid: OIDS.ecdsaSha384 });
    assert.deepEqual(sigOf(['P-384', 'P-521']), { oid: OIDS.ecdsaSha384 });
    assert.deepEqual(sigOf(['P-521']), { oid: OIDS.ecdsaSha512 });
    assert.deepEqual(objectNames(csrAttrsForProfile({ keys: { ec: { curves: ['P-521'] } } })), [
      'id-ecPublicKey',
      'secp521r1',
      'ecdsa-with-SHA512',
    ]);
  });

  it('Ed25519 only, and a profile that asks for nothing', () => {
    assert.deepEqual(parseCsrAttrs(csrAttrsForProfile({ keys: { ed25519: true } })), [{ oid: OIDS.ed25519 }]);
    assert.deepEqual(csrAttrsForProfile({ keys: { ec: { curves: [] } } }), new Uint8Array([0x30, 0x00]));
  });

  it('rejects unknown curve names as a configuration error', () => {
    throwsCa(() => csrAttrsForProfile({ keys: { ec: { curves: ['P-257'] } } }), 'config', /unknown EC curve "P-257"/);
  });
});
