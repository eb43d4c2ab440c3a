/**
 * dns-01 and the VA's DNS client against a local pebble-challtestsrv (TXT, CNAME, A/AAAA,
 * CAA, SERVFAIL set through its management API) and a UDP socket that never answers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CaError } from '../../src/core/errors.ts';
import { createDnsClient, createVaContext, dns01TxtValue, validateChallenge, validateDns01, type DnsClient } from '../../src/va/index.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { rejectsWith, setAaaa, setCname, setServfail, startBlackholeDns, vaConfig } from '../helpers/va.ts';

const ka = (token: string) => `${token}.dGh1bWJwcmludA`;

describe('dns-01 and the DNS client', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let srv: ChallTestSrv;
  let dns: DnsClient;
  const ctx = () => createVaContext(vaConfig({ dnsResolver: srv.resolver }), { dns });
  const dns01 = (token: string, domain: string) =>
    validateDns01(ctx(), { identifier: { type: 'dns', value: domain }, keyAuthorization: ka(token) });

  before(async () => {
    srv = await startChalltestsrv();
    dns = createDnsClient({ server: srv.resolver, timeoutMs: 2000 });
  });
  after(async () => {
    await srv?.stop();
  });

  it('computes the TXT value as base64url(SHA-256(key authorization))', () => {
    const expected = createHash('sha256').update(ka('t')).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    assert.equal(dns01TxtValue(ka('t')), expected);
  });

  it('accepts the right TXT value among others', async () => {
    await srv.setTxt('_acme-challenge.example.test', 'unrelated');
    await srv.setTxt('_acme-challenge.example.test', dns01TxtValue(ka('ok')));
    assert.deepEqual(await dns01('ok', 'example.test'), [
      { hostname: 'example.test', txtName: '_acme-challenge.example.test', cnames: [] },
    ]);
  });

  it('refuses wrong TXT values, finally, listing what it found', async () => {
    await srv.setTxt('_acme-challenge.wrong.test', 'nope');
    await rejectsWith(dns01('w', 'wrong.test'), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: `TXT records at _acme-challenge.wrong.test: expected "${dns01TxtValue(ka('w'))}", got "nope"`,
    });
  });

  it('refuses when there is no TXT record', async () => {
    await rejectsWith(dns01('n', 'example-none.test'), {
      problemType: 'unauthorized',
      retryable: false,
      message: 'no TXT record at _acme-challenge.example-none.test',
    });
  });

  it('validates a wildcard at the base domain (a leading "*." is dropped too)', async () => {
    await srv.setTxt('_acme-challenge.wild.test', dns01TxtValue(ka('wild')));
    const input = {
      type: 'dns-01' as const,
      identifier: { type: 'dns' as const, value: 'wild.test' },
      wildcard: true,
      token: 'wild',
      keyAuthorization: ka('wild'),
    };
    assert.equal((await validateChallenge(ctx(), input))[0].txtName, '_acme-challenge.wild.test');
    assert.equal(
      (await validateChallenge(ctx(), { ...input, identifier: { type: 'dns', value: '*.wild.test' } }))[0].txtName,
      '_acme-challenge.wild.test',
    );
  });

  it('follows a CNAME answered together with the target TXT', async () => {
    await setCname(srv, '_acme-challenge.alias.test', '_acme-challenge.validation.test');
    await srv.setTxt('_acme-challenge.validation.test', dns01TxtValue(ka('alias')));
    const [record] = await dns01('alias', 'alias.test');
    assert.equal(record.txtName, '_acme-challenge.alias.test');
  });

  it('follows a CNAME chain the server does not resolve (explicit CNAME queries)', async () => {
    // challtestsrv follows one CNAME per answer: a -> b is answered, b -> c needs a new query.
    await setCname(srv, '_acme-challenge.chain.test', '_acme-challenge.hop1.test');
    await setCname(srv, '_acme-challenge.hop1.test', '_acme-challenge.hop2.test');
    await setCname(srv, '_acme-challenge.hop2.test', '_acme-challenge.final.test');
    await srv.setTxt('_acme-challenge.final.test', dns01TxtValue(ka('chain')));
    const [record] = await dns01('chain', 'chain.test');
    // hop2 -> final came in the answer for hop2: only the CNAMEs queried explicitly are listed.
    assert.deepEqual(record.cnames, ['_acme-challenge.hop1.test', '_acme-challenge.hop2.test']);
    const lookup = await dns.resolveTxtFollowingCname('_acme-challenge.chain.test');
    assert.deepEqual(lookup.records, [dns01TxtValue(ka('chain'))]);
  });

  it('refuses a CNAME loop, finally', async () => {
    await setCname(srv, '_acme-challenge.loop.test', '_acme-challenge.loop2.test');
    await setCname(srv, '_acme-challenge.loop2.test', '_acme-challenge.loop.test');
    await rejectsWith(dns01('loop', 'loop.test'), {
      problemType: 'dns',
      retryable: false,
      message: /CNAME loop looking up TXT for _acme-challenge.loop.test/,
    });
  });

  it('stops after 8 CNAMEs', async () => {
    for (let i = 0; i < 12; i++) await setCname(srv, `_acme-challenge.long${i}.test`, `_acme-challenge.long${i + 1}.test`);
    await rejectsWith(dns01('long', 'long0.test'), { problemType: 'dns', retryable: false, message: /more than 8 CNAMEs/ });
  });

  it('reports SERVFAIL as a retryable DNS problem naming the query and the resolver', async () => {
    await setServfail(srv, '_acme-challenge.broken.test');
    await rejectsWith(dns01('sf', 'broken.test'), {
      problemType: 'dns',
      retryable: true,
      message: `DNS query for TXT _acme-challenge.broken.test failed: SERVFAIL (resolver ${srv.resolver})`,
    });
  });

  it('reports a resolver that does not answer as a retryable timeout, within the call timeout', async () => {
    const hole = await startBlackholeDns();
    try {
      const slow = createDnsClient({ server: hole.address, timeoutMs: 600 });
      const started = Date.now();
      await rejectsWith(slow.resolveTxtFollowingCname('_acme-challenge.example.test'), {
        problemType: 'dns',
        retryable: true,
        message: `DNS query for TXT _acme-challenge.example.test failed: timeout (resolver ${hole.address})`,
      });
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
      await rejectsWith(slow.resolveAddresses('example.test'), { problemType: 'dns', retryable: true, message: /timeout/ });
      await rejectsWith(slow.resolveCaa('example.test'), {
        problemType: 'dns',
        retryable: true,
        message: /CAA example.test failed: timeout/,
      });
    } finally {
      await hole.close();
    }
  });

  it('refuses dns-01 for an IP identifier (RFC 8738 section 7)', async () => {
    await rejectsWith(validateDns01(ctx(), { identifier: { type: 'ip', value: '127.0.0.1' }, keyAuthorization: ka('ip') }), {
      problemType: 'malformed',
      retryable: false,
    });
  });

  it('resolveAddresses: IPv6 first, then IPv4; [] for a name without any', async () => {
    await srv.setA('both.test', '127.0.0.2', '127.0.0.3');
    await setAaaa(srv, 'both.test', '::1');
    assert.deepEqual(await dns.resolveAddresses('Both.Test.'), ['::1', '127.0.0.2', '127.0.0.3']);
    // challtestsrv answers A queries for unknown names with its default (127.0.0.1), AAAA with nothing.
    assert.deepEqual(await dns.resolveAddresses('unknown.test'), ['127.0.0.1']);
  });

  it('resolveCaa: flags, lower-cased tags and values; [] without records', async () => {
    await srv.setCaa('caa.test', [
      { tag: 'issue', value: 'ca.test; accounturi=https://acme.test/acct/1' },
      { tag: 'ISSUEWILD', value: ';' },
    ]);
    assert.deepEqual(await dns.resolveCaa('caa.test'), [
      { flags: 0, tag: 'issue', value: 'ca.test; accounturi=https://acme.test/acct/1' },
      { flags: 0, tag: 'issuewild', value: ';' },
    ]);
    assert.deepEqual(await dns.resolveCaa('sub.caa.test'), []);
  });

  it('rejects a resolver address that is not ip:port as a configuration error', () => {
    assert.throws(
      () => createDnsClient({ server: 'dns.example:53', timeoutMs: 1000 }),
      (e: unknown) => CaError.is(e, 'config'),
    );
  });
});
