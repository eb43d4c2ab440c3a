import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CaError } from '../../src/core/errors.ts';
import { DEFAULT_PROFILES, type CertProfile } from '../../src/config/profiles.ts';
import { applyProfile } from '../../src/ca/policy.ts';
import { emptySans, formatDn, parseCsr, parseDn, type ParsedCsr, type PublicKeyKind, type SanSet } from '../../src/pki/index.ts';
import { makeCsr } from '../helpers/openssl.ts';

const profile = (name: string): CertProfile => structuredClone(DEFAULT_PROFILES.find((p) => p.name === name)!);
const tlsServer = profile('tls-server');
const tlsClient = profile('tls-client');
const device = profile('device');

/** A real request made by openssl and parsed by certflow. */
function csr(subj: string, san?: string, key = 'ec:P-256'): ParsedCsr {
  return parseCsr(makeCsr({ key, subj, san }).der);
}

/**
 * A request with chosen fields, for cases openssl cannot or should not produce quickly
 * (8192-bit keys, 300 SANs, names openssl refuses). applyProfile only reads these fields.
 */
const base = csr('/CN=base.example');
function synthetic(fields: { subject?: string; sans?: Partial<SanSet>; key?: PublicKeyKind; unsupportedSans?: string[] }): ParsedCsr {
  return {
    ...base,
    subject: parseDn(fields.subject ?? ''),
    sans: { ...emptySans(), ...fields.sans },
    key: fields.key ?? base.key,
    ...(fields.unsupportedSans ? { unsupportedSans: fields.unsupportedSans } : {}),
  };
}

/** Asserts rejection with kind + rule, and that the message names the rule and the profile. */
function rejects(fn: () => unknown, kind: 'badKey' | 'policy', rule: string, p: CertProfile, message?: RegExp): CaError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CaError, `expected CaError(${kind}, ${rule}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  assert.equal(caught.rule, rule, caught.message);
  assert.ok(caught.message.includes(`(rule ${rule})`), `message does not name the rule: ${caught.message}`);
  assert.ok(caught.message.includes(`"${p.name}"`), `message does not name the profile: ${caught.message}`);
  assert.equal(caught.details?.profile, p.name);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('default profiles', () => {
  it('tls-server: DNS/IP SANs, only the CN kept, serverAuth, keyEncipherment for RSA only', () => {
    const ec = applyProfile(
      csr('/CN=WWW.Example.com/O=Dropped Inc', 'DNS:www.example.com,DNS:Example.COM,IP:192.0.2.1,DNS:example.com'),
      tlsServer,
    );
    assert.equal(formatDn(ec.subject), 'CN=www.example.com');
    assert.deepEqual(ec.sans, { dns: ['www.example.com', 'example.com'], ip: ['192.0.2.1'], email: [], uri: [] });
    assert.deepEqual(ec.keyUsage, ['digitalSignature']);
    assert.deepEqual(ec.extKeyUsage, ['1.3.6.1.5.5.7.3.1']);

    const rsa = applyProfile(csr('/CN=rsa.example', 'DNS:rsa.example', 'rsa:2048'), tlsServer);
    assert.deepEqual(rsa.keyUsage, ['digitalSignature', 'keyEncipherment']);

    const ed = applyProfile(csr('/CN=ed.example', undefined, 'ed25519'), tlsServer);
    assert.deepEqual(ed.sans.dns, ['ed.example']);
    assert.deepEqual(ed.keyUsage, ['digitalSignature']);
  });

  it('tls-server, ACME style: an empty subject gets the first DNS SAN as CN', () => {
    const r = applyProfile(csr('/', 'DNS:first.example,DNS:second.example'), tlsServer);
    assert.equal(formatDn(r.subject), 'CN=first.example');
    const longName = `${'a'.repeat(60)}.example.com`;
    const r2 = applyProfile(synthetic({ sans: { dns: [longName, 'short.example'] } }), tlsServer);
    assert.equal(formatDn(r2.subject), 'CN=short.example'); // a CN holds at most 64 characters
    const r3 = applyProfile(synthetic({ sans: { ip: ['2001:db8::1'] } }), tlsServer);
    assert.equal(formatDn(r3.subject), 'CN=2001:db8::1');
  });

  it('tls-server: a CN that is a DNS name or IP address becomes a SAN (first, canonical)', () => {
    const r = applyProfile(csr('/CN=New.Example', 'DNS:other.example'), tlsServer);
    assert.deepEqual(r.sans.dns, ['new.example', 'other.example']);
    assert.equal(formatDn(r.subject), 'CN=new.example');
    const ip = applyProfile(synthetic({ subject: 'CN=0:0::1' }), tlsServer);
    assert.deepEqual(ip.sans.ip, ['::1']);
    assert.equal(formatDn(ip.subject), 'CN=::1');
    const wildcard = applyProfile(synthetic({ subject: 'CN=*.example.com' }), tlsServer);
    assert.deepEqual(wildcard.sans.dns, ['*.example.com']);
  });

  it('tls-client: person subject, email/URI SANs, clientAuth', () => {
    const r = applyProfile(
      csr(
        '/CN=Alice/O=Org/OU=Team/C=de/ST=Berlin/L=Berlin/emailAddress=alice@Example.COM',
        'email:alice@Example.COM,URI:spiffe://example.org/alice,DNS:alice.example',
      ),
      tlsClient,
    );
    assert.equal(formatDn(r.subject), 'CN=Alice,O=Org,OU=Team,C=DE,ST=Berlin,L=Berlin,emailAddress=alice@example.com');
    assert.deepEqual(r.sans, { dns: ['alice.example'], ip: [], email: ['alice@example.com'], uri: ['spiffe://example.org/alice'] });
    assert.deepEqual(r.extKeyUsage, ['1.3.6.1.5.5.7.3.2']);
    const rsa = applyProfile(csr('/CN=bob', undefined, 'rsa:2048'), tlsClient);
    assert.deepEqual(rsa.keyUsage, ['digitalSignature']); // rsaKeyEncipherment is off
    assert.deepEqual(rsa.sans, emptySans()); // SANs are optional, CN need not be one
  });

  it('device: serial number in the subject, IP/URI SANs, clientAuth and serverAuth', () => {
    const r = applyProfile(csr('/CN=sensor-17/serialNumber=SN-0017/O=Acme', 'IP:10.0.0.17,URI:urn:dev:ops:acme-sensor-17'), device);
    assert.equal(formatDn(r.subject), 'CN=sensor-17,serialNumber=SN-0017,O=Acme');
    assert.deepEqual(r.sans.ip, ['10.0.0.17']);
    assert.deepEqual(r.extKeyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']);
    // An RSA key: keyEncipherment with serverAuth (a server name), not without (clientAuth only: RFC 5280 4.2.1.12).
    const named = applyProfile(csr('/CN=sensor-18', 'DNS:sensor-18.example.test', 'rsa:2048'), device);
    assert.deepEqual(named.extKeyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']);
    assert.deepEqual(named.keyUsage, ['digitalSignature', 'keyEncipherment']);
    const bare = applyProfile(csr('/CN=sensor-19', undefined, 'rsa:2048'), device);
    assert.deepEqual(bare.extKeyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.deepEqual(bare.keyUsage, ['digitalSignature']);
  });

  it('deduplicates SANs after normalisation', () => {
    const r = applyProfile(
      synthetic({ subject: 'CN=a.example', sans: { dns: ['A.example', 'a.example', 'b.example'], ip: ['::1', '0::1'] } }),
      tlsServer,
    );
    assert.deepEqual(r.sans.dns, ['a.example', 'b.example']);
    assert.deepEqual(r.sans.ip, ['::1']);
  });
});

describe('key rules', () => {
  it('rejects a weak RSA 1024 key', () => {
    const e = rejects(
      () => applyProfile(csr('/CN=weak.example', undefined, 'rsa:1024'), tlsServer),
      'badKey',
      'key.rsa.minBits',
      tlsServer,
    );
    assert.equal(e.message, 'RSA key of 1024 bits is below the profile "tls-server" minimum of 2048 (rule key.rsa.minBits)');
  });

  it('rejects an RSA key above the maximum', () => {
    rejects(
      () => applyProfile(synthetic({ subject: 'CN=big', key: { type: 'rsa', bits: 8192 } }), device),
      'badKey',
      'key.rsa.maxBits',
      device,
      /8192 bits is above the profile "device" maximum of 4096/,
    );
  });

  it('rejects a disallowed curve (P-521 on tls-server)', () => {
    rejects(
      () => applyProfile(csr('/CN=p521.example', undefined, 'ec:P-521'), tlsServer),
      'badKey',
      'key.ec.curve',
      tlsServer,
      /EC curve P-521 is not allowed .*allowed: P-256, P-384/,
    );
  });

  it('rejects a disallowed key type (Ed448)', () => {
    rejects(
      () => applyProfile(csr('/CN=ed448.example', undefined, 'ed448'), tlsServer),
      'badKey',
      'key.type',
      tlsServer,
      /Ed448 keys are not allowed .*Ed25519/,
    );
  });
});

describe('SAN rules', () => {
  it('rejects an IP SAN on tls-client', () => {
    rejects(
      () => applyProfile(csr('/CN=c', 'IP:10.0.0.1'), tlsClient),
      'policy',
      'san.ip',
      tlsClient,
      /IP address SAN "10\.0\.0\.1" is not allowed by profile "tls-client"/,
    );
  });

  it('rejects an email SAN on tls-server', () => {
    rejects(
      () => applyProfile(csr('/CN=s.example', 'DNS:s.example,email:ops@s.example'), tlsServer),
      'policy',
      'san.email',
      tlsServer,
      /"ops@s\.example"/,
    );
  });

  it('rejects a URI SAN on tls-server', () => {
    rejects(() => applyProfile(csr('/CN=s.example', 'URI:https://s.example/'), tlsServer), 'policy', 'san.uri', tlsServer);
  });

  it('rejects a wildcard on device, allows it on tls-server', () => {
    rejects(
      () => applyProfile(csr('/CN=d', 'DNS:*.devices.example'), device),
      'policy',
      'san.dnsWildcard',
      device,
      /"\*\.devices\.example"/,
    );
    assert.deepEqual(applyProfile(csr('/', 'DNS:*.example.com'), tlsServer).sans.dns, ['*.example.com']);
  });

  it('rejects too many SANs', () => {
    const san = Array.from({ length: 21 }, (_, i) => `DNS:h${i}.example`).join(',');
    rejects(
      () => applyProfile(csr('/CN=many', san), tlsClient),
      'policy',
      'san.max',
      tlsClient,
      /has 21 SANs; profile "tls-client" allows at most 20/,
    );
    const hundred = Array.from({ length: 100 }, (_, i) => `h${i}.example`);
    assert.equal(applyProfile(synthetic({ sans: { dns: hundred } }), tlsServer).sans.dns.length, 100);
    // the CN added as a SAN counts too
    rejects(
      () => applyProfile(synthetic({ subject: 'CN=extra.example', sans: { dns: hundred } }), tlsServer),
      'policy',
      'san.max',
      tlsServer,
    );
  });

  it('requires a SAN on tls-server', () => {
    rejects(() => applyProfile(csr('/'), tlsServer), 'policy', 'san.required', tlsServer);
  });

  it('rejects bad DNS names', () => {
    const bad: Array<[string, RegExp]> = [
      ['bad_label.example.com', /label "bad_label"/],
      ['-lead.example.com', /starts or ends with "-"/],
      [`${'a'.repeat(64)}.example.com`, /label of 64 characters/],
      [`${'abcdefghi.'.repeat(25)}example.com`, /261 characters long; the maximum is 253/],
      ['trailing.example.', /ends with a dot/],
      ['double..example', /empty label/],
      ['a.*.example.com', /wildcard that is not the whole leftmost label/],
      ['foo*.example.com', /wildcard that is not the whole leftmost label/],
      ['*.com', /wildcard directly under a top-level domain/],
      ['münchen.example', /punycode/],
      ['192.0.2.1', /is an IP address/],
      ['host.123', /all-numeric top-level label/],
    ];
    for (const [name, why] of bad) {
      rejects(() => applyProfile(synthetic({ sans: { dns: [name] } }), tlsServer), 'policy', 'san.dnsSyntax', tlsServer, why);
    }
    // and through a real request
    rejects(() => applyProfile(csr('/', 'DNS:under_score.example'), tlsServer), 'policy', 'san.dnsSyntax', tlsServer);
    assert.deepEqual(
      applyProfile(synthetic({ sans: { dns: ['xn--mnchen-3ya.example', 'localhost', 'a-b.c0.example'] } }), tlsServer).sans.dns,
      ['xn--mnchen-3ya.example', 'localhost', 'a-b.c0.example'],
    );
  });

  it('checks email and URI syntax', () => {
    for (const email of ['not-an-email', '@example.com', 'a@', 'a b@example.com', 'a@bad_domain.example', '"quoted"@example.com']) {
      rejects(
        () => applyProfile(synthetic({ subject: 'CN=x', sans: { email: [email] } }), tlsClient),
        'policy',
        'san.emailSyntax',
        tlsClient,
      );
    }
    for (const uri of ['not a uri', 'relative/path', 'http://', 'https://ex ample.com/']) {
      rejects(() => applyProfile(synthetic({ subject: 'CN=x', sans: { uri: [uri] } }), tlsClient), 'policy', 'san.uriSyntax', tlsClient);
    }
  });

  it('rejects SAN kinds it cannot issue', () => {
    rejects(
      () => applyProfile(synthetic({ subject: 'CN=x', unsupportedSans: ['otherName 1.3.6.1.4.1.311.20.2.3'] }), tlsClient),
      'policy',
      'san.type',
      tlsClient,
      /otherName/,
    );
  });
});

describe('subject rules', () => {
  it('requires the CN where the profile says so', () => {
    rejects(() => applyProfile(csr('/O=Org', 'DNS:x.example'), tlsClient), 'policy', 'subject.required', tlsClient, /must contain CN/);
    rejects(() => applyProfile(csr('/serialNumber=1', 'IP:10.0.0.1'), device), 'policy', 'subject.required', device, /must contain CN/);
  });

  it('rejects disallowed attributes unless the profile drops them', () => {
    rejects(
      () => applyProfile(csr('/CN=dev/L=Somewhere'), device),
      'policy',
      'subject.attribute',
      device,
      /L="Somewhere" is not allowed .*allowed: CN, serialNumber, O, OU, C/,
    );
    assert.equal(formatDn(applyProfile(csr('/CN=s.example/L=Somewhere/OU=x'), tlsServer).subject), 'CN=s.example');
  });

  it('rejects a CN that cannot be a SAN where the CN must be one', () => {
    rejects(
      () => applyProfile(csr('/CN=My Web Server', 'DNS:web.example'), tlsServer),
      'policy',
      'subject.cnNotSan',
      tlsServer,
      /"My Web Server" is neither a DNS name nor an IP address/,
    );
    const noIp = { ...tlsServer, name: 'dns-only', san: { ...tlsServer.san, ip: false } };
    rejects(
      () => applyProfile(synthetic({ subject: 'CN=10.1.1.1', sans: { dns: ['a.example'] } }), noIp),
      'policy',
      'subject.cnNotSan',
      noIp,
      /IP SANs are not allowed/,
    );
  });

  it('refuses a subject with more than one CN, in every profile (each would be a name; tls-server would add each as a SAN)', () => {
    for (const p of [tlsServer, tlsClient, device]) {
      rejects(
        () => applyProfile(csr('/CN=attacker.example/CN=victim.example', 'DNS:attacker.example'), p),
        'policy',
        'subject.cnCount',
        p,
        /2 common names \(CN=attacker\.example, CN=victim\.example\)/,
      );
    }
    // One CN, also when it comes from the first SAN: the SANs are what was asked for plus that CN.
    const r = applyProfile(csr('/CN=only.example', 'DNS:other.example'), tlsServer);
    assert.deepEqual(r.sans.dns, ['only.example', 'other.example']);
  });

  it('validates attribute values', () => {
    rejects(() => applyProfile(synthetic({ subject: 'CN=x,C=USA' }), tlsClient), 'policy', 'subject.value', tlsClient, /two-letter/);
    rejects(
      () => applyProfile(synthetic({ subject: `CN=${'x'.repeat(65)}` }), tlsClient),
      'policy',
      'subject.value',
      tlsClient,
      /longer than 64/,
    );
    rejects(
      () => applyProfile(synthetic({ subject: 'CN=x,serialNumber=a_b' }), device),
      'policy',
      'subject.value',
      device,
      /PrintableString/,
    );
    rejects(() => applyProfile(synthetic({ subject: 'CN=x,emailAddress=nope' }), tlsClient), 'policy', 'subject.value', tlsClient);
  });

  it('rejects a request that names nothing', () => {
    const anything = { ...tlsClient, name: 'anything', subject: { ...tlsClient.subject, required: [] } };
    rejects(() => applyProfile(csr('/'), anything), 'policy', 'subject.empty', anything);
  });
});
