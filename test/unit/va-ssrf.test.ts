/** The VA's address guard: pure checks on address text (nothing is contacted). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressRefusal, assertAddressAllowed, ValidationError } from '../../src/va/index.ts';

const strict = { allowLoopback: false };
const loose = { allowLoopback: true };

describe('SSRF guard', () => {
  it('refuses loopback unless allowLoopback', () => {
    for (const a of ['127.0.0.1', '127.255.255.254', '::1', '::ffff:127.0.0.1']) {
      assert.match(addressRefusal(a, strict) ?? '', /loopback/, a);
      assert.equal(addressRefusal(a, loose), undefined, a);
    }
  });

  it('always refuses cloud metadata, link-local, unspecified, multicast and reserved addresses', () => {
    const cases: Array<[string, RegExp]> = [
      ['169.254.169.254', /cloud metadata/],
      ['fd00:ec2::254', /cloud metadata/],
      ['100.100.100.200', /cloud metadata/],
      ['168.63.129.16', /cloud metadata/],
      ['169.254.1.1', /link-local/],
      ['fe80::1', /link-local/],
      ['febf::1', /link-local/],
      ['0.0.0.0', /unspecified/],
      ['0.1.2.3', /unspecified/],
      ['::', /unspecified/],
      ['224.0.0.1', /multicast/],
      ['239.255.255.250', /multicast/],
      ['ff02::1', /multicast/],
      ['240.0.0.1', /reserved/],
      ['255.255.255.255', /reserved or broadcast/],
      ['::ffff:169.254.169.254', /IPv4-mapped address of 169.254.169.254, a cloud metadata address/],
      ['64:ff9b::a9fe:a9fe', /NAT64 address of 169.254.169.254/],
      ['::7f00:1', /IPv4-compatible/],
      ['fe80::1%eth0', /not an IP address/],
      ['example.test', /not an IP address/],
    ];
    for (const [a, why] of cases) {
      assert.match(addressRefusal(a, loose) ?? '(allowed)', why, a);
      assert.match(addressRefusal(a, strict) ?? '(allowed)', why, a);
    }
  });

  it('allows private ranges (an internal CA validates internal hosts) and public addresses', () => {
    for (const a of [
      '10.0.0.1',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      'fd12:3456::1',
      '::ffff:10.0.0.1',
      '192.0.2.7',
      '2001:db8::1',
      '169.253.255.255',
      '169.255.0.1',
      'fec0::1',
    ]) {
      assert.equal(addressRefusal(a, strict), undefined, a);
    }
  });

  it('assertAddressAllowed throws a final ValidationError naming the address and the reason', () => {
    assert.throws(
      () => assertAddressAllowed('169.254.169.254', loose, 'meta.test'),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.problemType === 'rejectedIdentifier' &&
        !e.retryable &&
        e.message === 'meta.test: refusing to connect to 169.254.169.254 (a cloud metadata address)',
    );
    assert.doesNotThrow(() => assertAddressAllowed('10.1.2.3', strict, 'internal.test'));
  });
});
