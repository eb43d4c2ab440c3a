/**
 * The validation activities as a worker runs them: configuration from the environment
 * (CERTFLOW_HTTP01_PORT, CERTFLOW_DNS_RESOLVER, CERTFLOW_VALIDATION_ALLOW_LOOPBACK), and
 * failures as ApplicationFailures typed with the ACME problem type.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createValidationActivities } from '../../activities/validation.ts';
import type { ValidationActivities } from '../../activities/validation-types.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { freePort } from '../../src/core/net.ts';
import { dns01TxtValue } from '../../src/va/index.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { startHttpServer, type TestHttpServer } from '../helpers/va.ts';

const ACCOUNT = 'https://ca.test/acme/acct/7';
const ka = (token: string) => `${token}.dGh1bWJwcmludA`;

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a failure');
}

describe('validation activities', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let srv: ChallTestSrv;
  let web: TestHttpServer;
  let home: string;
  const log = createLogger('test', 'silent');
  const activities = (extraEnv: Record<string, string> = {}): ValidationActivities =>
    createValidationActivities({
      config: loadConfig({
        CERTFLOW_HOME: home,
        CERTFLOW_HTTP01_PORT: String(web.port),
        CERTFLOW_DNS_RESOLVER: srv.resolver,
        CERTFLOW_VALIDATION_ALLOW_LOOPBACK: '1',
        ...extraEnv,
      }),
      log,
    });
  const http01 = (token: string, value = 'example.test') => ({
    type: 'http-01' as const,
    identifier: { type: 'dns' as const, value },
    wildcard: false,
    token,
    keyAuthorization: ka(token),
  });

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'certflow-va-'));
    srv = await startChalltestsrv();
    web = await startHttpServer((req, res) => {
      const token = (req.url ?? '').split('/').pop() ?? '';
      if (token.startsWith('good')) res.writeHead(200).end(ka(token));
      else res.writeHead(200).end('nope');
    });
  });
  after(async () => {
    await web?.close();
    await srv?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('validateChallenge returns the validation record', async () => {
    const result = await activities().validateChallenge(http01('good1'));
    assert.deepEqual(result.validationRecord, [
      {
        url: `http://example.test:${web.port}/.well-known/acme-challenge/good1`,
        hostname: 'example.test',
        port: web.port,
        addressesResolved: ['127.0.0.1'],
        addressUsed: '127.0.0.1',
      },
    ]);
  });

  it('a wrong answer is a non-retryable failure typed incorrectResponse', async () => {
    const f = await failure(activities().validateChallenge(http01('bad1')));
    assert.equal(f.type, 'incorrectResponse');
    assert.equal(f.nonRetryable, true);
    assert.equal(
      f.message,
      `http://example.test:${web.port}/.well-known/acme-challenge/bad1: expected the key authorization "${ka('bad1')}", got "nope"`,
    );
  });

  it('a refused connection is a retryable failure typed connection', async () => {
    const port = await freePort();
    const f = await failure(activities({ CERTFLOW_HTTP01_PORT: String(port) }).validateChallenge(http01('good2')));
    assert.equal(f.type, 'connection');
    assert.equal(f.nonRetryable, false);
    assert.equal(f.message, `connection refused by 127.0.0.1:${port}`);
  });

  it('without CERTFLOW_VALIDATION_ALLOW_LOOPBACK=1 loopback is refused: rejectedIdentifier', async () => {
    const f = await failure(activities({ CERTFLOW_VALIDATION_ALLOW_LOOPBACK: '' }).validateChallenge(http01('good3')));
    assert.equal(f.type, 'rejectedIdentifier');
    assert.equal(f.nonRetryable, true);
  });

  it('dns-01 through CERTFLOW_DNS_RESOLVER', async () => {
    await srv.setTxt('_acme-challenge.dns.test', dns01TxtValue(ka('d1')));
    const input = {
      type: 'dns-01' as const,
      identifier: { type: 'dns' as const, value: 'dns.test' },
      wildcard: true,
      token: 'd1',
      keyAuthorization: ka('d1'),
    };
    const result = await activities().validateChallenge(input);
    assert.equal(result.validationRecord[0].txtName, '_acme-challenge.dns.test');
    const f = await failure(activities().validateChallenge({ ...input, identifier: { type: 'dns', value: 'nodns.test' } }));
    assert.deepEqual([f.type, f.nonRetryable, f.message], ['unauthorized', true, 'no TXT record at _acme-challenge.nodns.test']);
  });

  it('checkCaa resolves when allowed, fails typed caa when not', async () => {
    await srv.setCaa('caa-allowed.test', [{ tag: 'issue', value: `certflow.test; accounturi=${ACCOUNT}` }]);
    await srv.setCaa('caa-denied.test', [{ tag: 'issue', value: 'other-ca.test' }]);
    const input = (value: string) => ({
      identifiers: [
        { type: 'dns' as const, value, wildcard: false, method: 'http-01' },
        { type: 'ip' as const, value: '10.0.0.1', wildcard: false, method: 'http-01' },
      ],
      accountUri: ACCOUNT,
      caaIdentities: ['certflow.test'],
    });
    await activities().checkCaa(input('www.caa-allowed.test'));
    const f = await failure(activities().checkCaa(input('caa-denied.test')));
    assert.equal(f.type, 'caa');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /^CAA records for caa-denied.test forbid issuance: issue "other-ca.test"/);
  });
});
