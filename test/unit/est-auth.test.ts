/**
 * EST client authentication without a server: scrypt password hashes, the password policy,
 * the verification cache, RFC 7617 Basic header parsing, client names. authenticateBasic and
 * the est_clients repository against a real database: test/component/est-clients-repo.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaError } from '../../src/core/errors.ts';
import { checkClientName, clientMayUse, parseBasicAuth } from '../../src/est/auth.ts';
import {
  checkPasswordPolicy,
  hashPassword,
  verifyAgainstNothing,
  verifyPassword,
  verifyPasswordCached,
  VerifiedCache,
} from '../../src/est/password.ts';

const basic = (userPass: string | Buffer) => `Basic ${Buffer.from(userPass).toString('base64')}`;

function throwsKind(fn: () => unknown, kind: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(CaError.is(e), `expected a CaError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('password hashes', () => {
  it('encodes scrypt with N=2^15, r=8, p=1, a 16-byte salt and a 32-byte key', async () => {
    const encoded = await hashPassword('correct horse battery');
    const m = /^scrypt\$32768\$8\$1\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(encoded);
    assert.ok(m, encoded);
    assert.equal(Buffer.from(m[1]!, 'base64url').length, 16);
    assert.equal(Buffer.from(m[2]!, 'base64url').length, 32);
    assert.ok(!encoded.includes('correct horse battery'));
  });

  it('salts: the same password hashes differently each time, and both verify', async () => {
    const [a, b] = await Promise.all([hashPassword('same password 1'), hashPassword('same password 1')]);
    assert.notEqual(a, b);
    assert.equal(await verifyPassword('same password 1', a), true);
    assert.equal(await verifyPassword('same password 1', b), true);
  });

  it('refuses a wrong password (false, no exception)', async () => {
    const encoded = await hashPassword('correct horse battery');
    assert.equal(await verifyPassword('correct horse batterY', encoded), false);
    assert.equal(await verifyPassword('', encoded), false);
    assert.equal(await verifyPassword('correct horse battery ', encoded), false);
  });

  it('handles non-ASCII passwords and compares them in NFC (RFC 8265 OpaqueString)', async () => {
    const composed = 'Grüße aus Köln 🔐 パスワード';
    const encoded = await hashPassword(composed);
    assert.equal(await verifyPassword(composed, encoded), true);
    assert.equal(await verifyPassword(composed.normalize('NFD'), encoded), true);
    assert.equal(await verifyPassword('Grusse aus Koln 🔐 パスワード', encoded), false);
  });

  it('rejects malformed or out-of-bounds encodings with false, quickly', async () => {
    const good = await hashPassword('correct horse battery');
    const [, n, r, p, salt, hash] = good.split('$');
    const bad = [
      '',
      'scrypt',
      good.replace(/^scrypt/, 'bcrypt'),
      `${good}$extra`,
      ['scrypt', n, r, p, salt].join('$'),
      ['scrypt', '1000', r, p, salt, hash].join('$'), // N not a power of two
      ['scrypt', '0', r, p, salt, hash].join('$'),
      ['scrypt', '032768', r, p, salt, hash].join('$'), // leading zero
      ['scrypt', '-32768', r, p, salt, hash].join('$'),
      ['scrypt', '1e5', r, p, salt, hash].join('$'),
      ['scrypt', String(2 ** 24), r, p, salt, hash].join('$'), // would take 16 GiB
      ['scrypt', n, '1000', p, salt, hash].join('$'),
      ['scrypt', n, r, '100', salt, hash].join('$'),
      ['scrypt', n, r, p, `${salt}!`, hash].join('$'), // not base64url
      ['scrypt', n, r, p, salt, `${hash}==`].join('$'), // padding is not base64url
      ['scrypt', n, r, p, 'AAAA', hash].join('$'), // 3-byte salt
      ['scrypt', n, r, p, salt, 'AAAA'].join('$'), // 3-byte hash
      ['scrypt', n, r, p, salt, ''].join('$'),
    ];
    const started = Date.now();
    for (const encoded of bad) assert.equal(await verifyPassword('correct horse battery', encoded), false, encoded);
    assert.ok(Date.now() - started < 1000, 'malformed encodings must not run scrypt');
  });

  it('verifies against nothing in the time of a real verification, always false', async () => {
    assert.equal(await verifyAgainstNothing('anything at all'), false);
  });
});

describe('password policy', () => {
  it('wants at least 12 characters (code points, not UTF-16 units)', () => {
    throwsKind(() => checkPasswordPolicy('short'), 'malformed', /at least 12 characters \(it has 5\)/);
    throwsKind(() => checkPasswordPolicy('elevenchars'), 'malformed', /at least 12/);
    checkPasswordPolicy('twelve chars');
    throwsKind(() => checkPasswordPolicy('🔐🔐🔐🔐🔐🔐'), 'malformed', /it has 6/); // 12 UTF-16 units, 6 characters
    checkPasswordPolicy('🔐'.repeat(12));
  });

  it('refuses control characters (RFC 7617) and absurd lengths', () => {
    throwsKind(() => checkPasswordPolicy('twelve chars\n'), 'malformed', /control characters/);
    throwsKind(() => checkPasswordPolicy('twelve\tchars!'), 'malformed', /control characters/);
    throwsKind(() => checkPasswordPolicy('x'.repeat(1025)), 'malformed', /at most 1024/);
  });
});

describe('verification cache', () => {
  it('remembers a triple for its TTL only', () => {
    let now = 1_000_000;
    const cache = new VerifiedCache({ ttlMs: 1000, now: () => now });
    cache.add('dev1', 'password one', 'scrypt$x');
    assert.equal(cache.has('dev1', 'password one', 'scrypt$x'), true);
    assert.equal(cache.has('dev1', 'password two', 'scrypt$x'), false);
    assert.equal(cache.has('dev2', 'password one', 'scrypt$x'), false);
    assert.equal(cache.has('dev1', 'password one', 'scrypt$y'), false, 'a new hash (passwd) misses');
    now += 999;
    assert.equal(cache.has('dev1', 'password one', 'scrypt$x'), true);
    now += 1;
    assert.equal(cache.has('dev1', 'password one', 'scrypt$x'), false);
    assert.equal(cache.size, 0, 'expired entries are dropped');
  });

  it('keys fields unambiguously (name+password boundaries cannot shift)', () => {
    const cache = new VerifiedCache();
    cache.add('ab', 'c', 'h');
    assert.equal(cache.has('a', 'bc', 'h'), false);
  });

  it('is bounded: the oldest entry goes first, a re-added one counts as new', () => {
    const cache = new VerifiedCache({ maxEntries: 3 });
    for (const name of ['a', 'b', 'c']) cache.add(name, 'pw', 'h');
    cache.add('a', 'pw', 'h'); // refresh a: b is now the oldest
    cache.add('d', 'pw', 'h');
    assert.equal(cache.size, 3);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((n) => cache.has(n, 'pw', 'h')),
      [true, false, true, true],
    );
  });

  it('verifyPasswordCached stores only successes, and a hit skips scrypt', async () => {
    const cache = new VerifiedCache();
    const encoded = await hashPassword('cached password');
    assert.equal(await verifyPasswordCached('dev', 'wrong password!', encoded, cache), false);
    assert.equal(cache.size, 0);
    assert.equal(await verifyPasswordCached('dev', 'cached password', encoded, cache), true);
    assert.equal(cache.has('dev', 'cached password', encoded), true);
    // Proof that a hit does not verify: an entry for an encoding no password matches.
    cache.add('dev', 'cached password', 'not-a-hash');
    assert.equal(await verifyPasswordCached('dev', 'cached password', 'not-a-hash', cache), true);
  });
});

describe('parseBasicAuth (RFC 7617)', () => {
  it('returns undefined without credentials or for other schemes', () => {
    assert.equal(parseBasicAuth(undefined), undefined);
    assert.equal(parseBasicAuth(''), undefined);
    assert.equal(parseBasicAuth('Bearer abc.def.ghi'), undefined);
    assert.equal(parseBasicAuth('Digest username="x", realm="y"'), undefined);
    assert.equal(parseBasicAuth('Basicish dXNlcjpwYXNz'), undefined);
  });

  it('decodes user and password; the scheme is case-insensitive', () => {
    assert.deepEqual(parseBasicAuth(basic('device-1:s3cret password')), { user: 'device-1', password: 's3cret password' });
    assert.deepEqual(parseBasicAuth('basic dXNlcjpwYXNz'), { user: 'user', password: 'pass' });
    assert.deepEqual(parseBasicAuth('BASIC   dXNlcjpwYXNz  '), { user: 'user', password: 'pass' });
  });

  it('splits at the first colon: the password may contain colons, and be empty', () => {
    assert.deepEqual(parseBasicAuth(basic('dev:pa:ss:word')), { user: 'dev', password: 'pa:ss:word' });
    assert.deepEqual(parseBasicAuth(basic('dev::')), { user: 'dev', password: ':' });
    assert.deepEqual(parseBasicAuth(basic('dev:')), { user: 'dev', password: '' });
    assert.deepEqual(parseBasicAuth(basic(':pw')), { user: '', password: 'pw' });
  });

  it('decodes UTF-8 (charset="UTF-8", RFC 7617 2.1)', () => {
    assert.deepEqual(parseBasicAuth(basic('gerät:Grüße 🔐 パス')), { user: 'gerät', password: 'Grüße 🔐 パス' });
    assert.deepEqual(parseBasicAuth('Basic dGVzdDoxMjPCow=='), { user: 'test', password: '123£' }); // RFC 7617 2.1's example
  });

  it('accepts base64 without its padding', () => {
    assert.deepEqual(parseBasicAuth('Basic YTpiYw'), { user: 'a', password: 'bc' });
    assert.deepEqual(parseBasicAuth('Basic YTpiYw=='), { user: 'a', password: 'bc' });
  });

  it("throws 'unauthorized' for a Basic header that cannot be decoded", () => {
    const cases: Array<[string, RegExp]> = [
      ['Basic', /nothing after "Basic"/],
      ['Basic    ', /nothing after "Basic"/],
      ['Basic !!!!', /not base64/],
      ['Basic dXNl cjpwYXNz', /not base64/],
      ['Basic dXNlcjpwYXNz====', /not base64/],
      ['Basic YTpiYw=', /wrong length/],
      ['Basic YTpiY', /wrong length/],
      ['Basic YTpiYx==', /not canonical/], // trailing bits set
      ['Basic dXNlcnBhc3M=', /no ":"/], // "userpass"
      [basic(Buffer.from([0x75, 0x3a, 0xff, 0xfe])), /not UTF-8/],
      [basic('user:pass\nword'), /control characters/],
      [basic('us\u0000er:password'), /control characters/],
    ];
    for (const [header, message] of cases) throwsKind(() => parseBasicAuth(header), 'unauthorized', message);
  });
});

describe('clientMayUse and client names', () => {
  it('no labels means every label; otherwise only the listed ones', () => {
    assert.equal(clientMayUse({ labels: [] }, ''), true);
    assert.equal(clientMayUse({ labels: [] }, 'iot'), true);
    assert.equal(clientMayUse({ labels: ['iot'] }, 'iot'), true);
    assert.equal(clientMayUse({ labels: ['iot'] }, ''), false);
    assert.equal(clientMayUse({ labels: [''] }, ''), true);
    assert.equal(clientMayUse({ labels: [''] }, 'iot'), false);
  });

  it('client names are Basic user-ids: no colon, no spaces', () => {
    checkClientName('router-17.site_a@example');
    for (const bad of ['', 'a:b', 'with space', '-leading', 'ü', 'x'.repeat(129)]) {
      throwsKind(() => checkClientName(bad), 'malformed', /EST client name/);
    }
  });
});
