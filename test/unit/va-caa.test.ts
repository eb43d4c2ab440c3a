/**
 * CAA (RFC 8659, RFC 8657): the evaluation rules with records given directly or by a fake
 * DnsClient (challtestsrv cannot set the critical flag). The whole path, DNS included, against
 * pebble-challtestsrv: test/component/va-caa-dns.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkCaaAll,
  createVaContext,
  Deadline,
  evaluateCaa,
  findRelevantCaa,
  parseIssueValue,
  type CaaRecord,
  type CaaRequest,
  type DnsClient,
  ValidationError,
} from '../../src/va/index.ts';
import { rejectsWith, vaConfig } from '../helpers/va.ts';

const ACCOUNT = 'https://ca.test/acme/acct/1';
const req = (over: Partial<CaaRequest> = {}): CaaRequest => ({
  domain: 'example.test',
  wildcard: false,
  method: 'http-01',
  accountUri: ACCOUNT,
  caaIdentities: ['certflow.test'],
  ...over,
});
const issue = (value: string, flags = 0): CaaRecord => ({ flags, tag: 'issue', value });
const wild = (value: string): CaaRecord => ({ flags: 0, tag: 'issuewild', value });
const evaluate = (records: CaaRecord[], over: Partial<CaaRequest> = {}) => evaluateCaa({ name: 'example.test', records }, req(over));

/** A DnsClient answering CAA from a table, recording the names asked. */
function fakeDns(table: Record<string, CaaRecord[] | Error>): DnsClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async resolveCaa(name) {
      asked.push(name);
      const a = table[name];
      if (a instanceof Error) throw a;
      return a ?? [];
    },
    async resolveAddresses() {
      return [];
    },
    async resolveTxtFollowingCname(name) {
      return { name, records: [], cnames: [] };
    },
  };
}

describe('CAA issue values (RFC 8659 section 4.2)', () => {
  it('parses issuer and parameters', () => {
    assert.deepEqual(parseIssueValue('CertFlow.Test'), { issuer: 'certflow.test', params: new Map() });
    assert.deepEqual(parseIssueValue(' certflow.test ;  accounturi = https://ca.test/acme/acct/1 ; validationmethods=dns-01,http-01'), {
      issuer: 'certflow.test',
      params: new Map([
        ['accounturi', 'https://ca.test/acme/acct/1'],
        ['validationmethods', 'dns-01,http-01'],
      ]),
    });
    assert.deepEqual(parseIssueValue(';'), { issuer: '', params: new Map() });
    assert.deepEqual(parseIssueValue('certflow.test;'), { issuer: 'certflow.test', params: new Map() });
  });

  it('rejects malformed values', () => {
    for (const v of ['certflow.test;;a=b', 'cert flow.test', 'certflow.test; a b', 'certflow.test; a=b c', '-ca.test', 'ca.test; =x']) {
      assert.equal(parseIssueValue(v), undefined, v);
    }
  });
});

describe('CAA evaluation', () => {
  it('allows the CA named by issue (case-insensitive), refuses others', () => {
    assert.equal(evaluate([issue('CERTFLOW.test')]).allowed, true);
    const refused = evaluate([issue('other-ca.test')]);
    assert.equal(refused.allowed, false);
    assert.match(refused.reason, /issue "other-ca.test" \(issuer is not certflow.test\) at example.test/);
    assert.equal(evaluate([issue('other-ca.test'), issue('certflow.test')]).allowed, true);
  });

  it('";" forbids every CA', () => {
    assert.match(evaluate([issue(';')]).reason, /no CA may issue/);
    assert.equal(evaluate([issue(';')]).allowed, false);
  });

  it('no issue property (only iodef, or only issuewild for a non-wildcard): any CA may issue', () => {
    assert.equal(evaluate([{ flags: 0, tag: 'iodef', value: 'mailto:sec@example.test' }]).allowed, true);
    assert.equal(evaluate([wild(';')]).allowed, true);
  });

  it('wildcards: issuewild when present, else issue', () => {
    assert.equal(evaluate([issue(';'), wild('certflow.test')], { wildcard: true }).allowed, true);
    assert.equal(evaluate([issue('certflow.test'), wild(';')], { wildcard: true }).allowed, false);
    assert.equal(evaluate([issue('certflow.test')], { wildcard: true }).allowed, true);
    assert.equal(evaluate([issue('other.test')], { wildcard: true }).allowed, false);
  });

  it('an unknown critical property forbids issuance; an unknown non-critical one is ignored', () => {
    const crit = evaluate([issue('certflow.test'), { flags: 128, tag: 'tbs', value: 'x' }]);
    assert.equal(crit.allowed, false);
    assert.match(crit.reason, /unknown critical property "tbs"/);
    assert.equal(evaluate([issue('certflow.test'), { flags: 0, tag: 'tbs', value: 'x' }]).allowed, true);
    assert.equal(evaluate([issue('certflow.test', 128)]).allowed, true, 'a critical issue property is understood');
    assert.equal(evaluate([{ flags: 128, tag: 'ISSUE', value: 'certflow.test' }]).allowed, true, 'tags are case-insensitive');
  });

  it('accounturi must be the account URL (RFC 8657 section 3)', () => {
    assert.equal(evaluate([issue(`certflow.test; accounturi=${ACCOUNT}`)]).allowed, true);
    const other = evaluate([issue('certflow.test; accounturi=https://ca.test/acme/acct/2')]);
    assert.equal(other.allowed, false);
    assert.match(other.reason, /accounturi is not https:\/\/ca.test\/acme\/acct\/1/);
  });

  it('validationmethods must include the method used (RFC 8657 section 4)', () => {
    assert.equal(evaluate([issue('certflow.test; validationmethods=dns-01,http-01')]).allowed, true);
    const no = evaluate([issue('certflow.test; validationmethods=dns-01')], { method: 'tls-alpn-01' });
    assert.equal(no.allowed, false);
    assert.match(no.reason, /validationmethods does not include tls-alpn-01/);
  });

  it('a malformed property authorizes nobody; unknown parameters are ignored', () => {
    assert.equal(evaluate([issue('certflow.test;;')]).allowed, false);
    assert.equal(evaluate([issue('certflow.test; policy=ev')]).allowed, true);
  });

  it('without caaIdentities, any issue property forbids issuance', () => {
    const r = evaluate([issue('certflow.test')], { caaIdentities: [] });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /no caaIdentities configured/);
  });
});

describe('CAA tree climbing', () => {
  const deadline = () => new Deadline(5000);

  it('climbs to the first non-empty RRset, stopping before the root', async () => {
    const dns = fakeDns({ 'example.test': [issue('certflow.test')] });
    assert.deepEqual(await findRelevantCaa(dns, 'a.b.example.test', deadline()), {
      name: 'example.test',
      records: [issue('certflow.test')],
    });
    assert.deepEqual(dns.asked, ['a.b.example.test', 'b.example.test', 'example.test']);
    const none = fakeDns({});
    assert.equal(await findRelevantCaa(none, 'a.example.test', deadline()), undefined);
    assert.deepEqual(none.asked, ['a.example.test', 'example.test', 'test']);
  });

  it('the closest RRset wins, even when a parent would allow', async () => {
    const dns = fakeDns({ 'sub.example.test': [issue('other.test')], 'example.test': [issue('certflow.test')] });
    const ctx = createVaContext(vaConfig(), { dns });
    await rejectsWith(
      checkCaaAll(ctx, {
        identifiers: [{ type: 'dns', value: 'sub.example.test', wildcard: false, method: 'http-01' }],
        accountUri: ACCOUNT,
        caaIdentities: ['certflow.test'],
      }),
      {
        problemType: 'caa',
        retryable: false,
        message: 'CAA records for sub.example.test forbid issuance: issue "other.test" (issuer is not certflow.test) at sub.example.test',
      },
    );
  });

  it('checkCaaAll: skips IP identifiers, names every refusal, final if any is definite', async () => {
    const dns = fakeDns({
      'a.test': [issue(';')],
      'b.test': [{ flags: 128, tag: 'future', value: '1' }],
      'c.test': new ValidationError('dns', 'DNS query for CAA c.test failed: SERVFAIL', { retryable: true }),
      'ok.test': [issue('certflow.test')],
    });
    const ctx = createVaContext(vaConfig(), { dns });
    const id = (value: string, type: 'dns' | 'ip' = 'dns') => ({ type, value, wildcard: false, method: 'dns-01' });
    const input = (...ids: ReturnType<typeof id>[]) => ({ identifiers: ids, accountUri: ACCOUNT, caaIdentities: ['certflow.test'] });
    assert.equal((await checkCaaAll(ctx, input(id('ok.test'), id('10.0.0.1', 'ip')))).length, 1);
    assert.ok(!dns.asked.includes('10.0.0.1'));
    const e = await rejectsWith(checkCaaAll(ctx, input(id('a.test'), id('b.test'), id('c.test'), id('ok.test'))), {
      problemType: 'caa',
      retryable: false,
    });
    assert.match(
      e.message,
      /a\.test forbid issuance: issue ";" \(no CA may issue\).*; .*b\.test forbid issuance: unknown critical property "future".*; DNS query for CAA c\.test failed: SERVFAIL/,
    );
    await rejectsWith(checkCaaAll(ctx, input(id('c.test'), id('ok.test'))), {
      problemType: 'dns',
      retryable: true,
      message: 'DNS query for CAA c.test failed: SERVFAIL',
    });
  });
});
