/**
 * CAA (RFC 8659, RFC 8657) along the whole path, DNS included, against pebble-challtestsrv.
 * The evaluation rules without a server: test/unit/va-caa.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkCaaAll, createDnsClient, createVaContext, type DnsClient } from '../../src/va/index.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { rejectsWith, setServfail, vaConfig } from '../helpers/va.ts';

const ACCOUNT = 'https://ca.test/acme/acct/1';

describe('CAA through DNS (pebble-challtestsrv)', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let srv: ChallTestSrv;
  let dns: DnsClient;
  const check = (value: string, over: { wildcard?: boolean; method?: string; accountUri?: string } = {}) =>
    checkCaaAll(createVaContext(vaConfig({ dnsResolver: srv.resolver }), { dns }), {
      identifiers: [{ type: 'dns', value, wildcard: over.wildcard ?? false, method: over.method ?? 'http-01' }],
      accountUri: over.accountUri ?? ACCOUNT,
      caaIdentities: ['certflow.test'],
    });

  before(async () => {
    srv = await startChalltestsrv();
    dns = createDnsClient({ server: srv.resolver, timeoutMs: 2000 });
    await srv.setCaa('caa.test', [
      { tag: 'issue', value: `certflow.test; accounturi=${ACCOUNT}; validationmethods=http-01,dns-01` },
      { tag: 'issuewild', value: ';' },
    ]);
    await srv.setCaa('other.caa.test', [{ tag: 'issue', value: 'letsencrypt.org' }]);
  });
  after(async () => {
    await srv?.stop();
  });

  it('allows when no CAA records exist up to the root', async () => {
    const [d] = await check('www.nocaa.test');
    assert.equal(d.allowed, true);
    assert.equal(d.reason, 'no CAA records');
  });

  it('applies the parent RRset with its accounturi and validationmethods', async () => {
    assert.equal((await check('www.caa.test'))[0].allowed, true);
    await rejectsWith(check('www.caa.test', { accountUri: 'https://ca.test/acme/acct/9' }), {
      problemType: 'caa',
      retryable: false,
      message: /accounturi is not/,
    });
    await rejectsWith(check('www.caa.test', { method: 'tls-alpn-01' }), {
      problemType: 'caa',
      retryable: false,
      message: /validationmethods does not include tls-alpn-01/,
    });
    await rejectsWith(check('caa.test', { wildcard: true, method: 'dns-01' }), {
      problemType: 'caa',
      retryable: false,
      message: /^CAA records for \*\.caa\.test forbid issuance: issuewild ";"/,
    });
    await rejectsWith(check('x.other.caa.test'), {
      problemType: 'caa',
      retryable: false,
      message: /issuer is not certflow.test\) at other.caa.test/,
    });
  });

  it('a SERVFAIL is a retryable DNS problem, never "no records"', async () => {
    await setServfail(srv, 'broken.caa.test');
    await rejectsWith(check('broken.caa.test'), {
      problemType: 'dns',
      retryable: true,
      message: /DNS query for CAA broken.caa.test failed: SERVFAIL/,
    });
  });
});
