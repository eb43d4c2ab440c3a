/**
 * Pure parts of the ACME shell: problem documents and the CaError mapping, revocation
 * reasons (RFC 8555 7.6), ARI certIDs and windows (RFC 9773), contact validation (7.3),
 * the directory object and kid parsing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateContacts } from '../../src/acme/accounts.ts';
import { ariCertId, parseAriCertId, suggestedWindow } from '../../src/acme/ari.ts';
import type { AcmeAccount } from '../../src/acme/api.ts';
import {
  AcmeProblem,
  compound,
  PROBLEM_STATUS,
  problem,
  problemFromError,
  problemTypeOf,
  subproblem,
  termsChanged,
  type AcmeProblemType,
} from '../../src/acme/problems.ts';
import { revocationReason } from '../../src/acme/revoke.ts';
import { accountIdOfKid, checkTermsAgreed, directoryObject, makeDirectory } from '../../src/acme/router.ts';
import { loadConfig, type AcmeAlias } from '../../src/config/index.ts';
import { CaError } from '../../src/core/errors.ts';

function silentLog() {
  const logged: unknown[] = [];
  return { logged, error: (o: unknown) => logged.push(o), warn: (o: unknown) => logged.push(o) };
}

function throwsProblem(fn: () => unknown, type: AcmeProblemType, status = PROBLEM_STATUS[type]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AcmeProblem, String(e));
    assert.equal(e.type, type, e.detail);
    assert.equal(e.status, status);
    return true;
  });
}

describe('ACME problems', () => {
  it('renders RFC 7807 documents with the ACME URN, status and subproblems with identifiers', () => {
    const p = compound('two identifiers are refused', [
      subproblem('rejectedIdentifier', 'not here', { type: 'dns', value: 'a.example' }),
      subproblem('unsupportedIdentifier', 'what is this', { type: 'email', value: 'x@y' }),
    ]);
    assert.deepEqual(p.toJSON(), {
      type: 'urn:ietf:params:acme:error:compound',
      detail: 'two identifiers are refused',
      status: 400,
      subproblems: [
        { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'not here', identifier: { type: 'dns', value: 'a.example' } },
        { type: 'urn:ietf:params:acme:error:unsupportedIdentifier', detail: 'what is this', identifier: { type: 'email', value: 'x@y' } },
      ],
    });
    const single = compound('x', [subproblem('rejectedIdentifier', 'not here', { type: 'dns', value: 'a.example' })]);
    assert.equal(single.type, 'rejectedIdentifier');
    assert.match(single.detail, /a\.example/);
  });

  it('has every RFC 8555 type with its status; problemTypeOf reads URNs back', () => {
    for (const [type, status] of Object.entries({
      badNonce: 400,
      unauthorized: 403,
      rateLimited: 429,
      serverInternal: 500,
      userActionRequired: 403,
      orderNotReady: 403,
      caa: 403,
      incorrectResponse: 403,
    })) {
      assert.equal(PROBLEM_STATUS[type as AcmeProblemType], status, type);
    }
    assert.equal(Object.keys(PROBLEM_STATUS).length >= 24, true);
    assert.equal(problemTypeOf('urn:ietf:params:acme:error:badCSR'), 'badCSR');
    assert.equal(problemTypeOf('urn:ietf:params:acme:error:nope'), undefined);
    assert.equal(problem('malformed', 'gone', { status: 404 }).status, 404);
  });

  it('RA refusals with a problem type of their own keep it (rateLimited with Retry-After); terms changes carry the terms Link', () => {
    const log = silentLog();
    const limited = problemFromError(
      new CaError('forbidden', 'slow down', { rule: 'acme.rateLimited', details: { retryAfterSeconds: 13 } }),
      log,
    );
    assert.equal(limited.type, 'rateLimited');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers?.['Retry-After'], '13');
    assert.equal(limited.detail, 'slow down');
    const replaced = problemFromError(new CaError('conflict', 'replaced', { rule: 'acme.alreadyReplaced' }), log);
    assert.deepEqual([replaced.type, replaced.status], ['alreadyReplaced', 409]);
    const notReady = problemFromError(new CaError('forbidden', 'the order is pending', { rule: 'acme.orderNotReady' }), log);
    assert.deepEqual([notReady.type, notReady.status], ['orderNotReady', 403]);
    const t = termsChanged('https://ca.example/tos/v2');
    assert.equal(t.type, 'userActionRequired');
    assert.equal(t.status, 403);
    assert.equal(t.instance, 'https://ca.example/tos/v2');
    assert.equal(t.headers?.Link, '<https://ca.example/tos/v2>;rel="terms-of-service"');
    assert.equal(t.toJSON().instance, 'https://ca.example/tos/v2');
  });

  it('maps CaError kinds: one table, server faults logged and hidden', () => {
    const cases: Array<[CaError['kind'], AcmeProblemType, number]> = [
      ['badCSR', 'badCSR', 400],
      ['badKey', 'badCSR', 400],
      ['policy', 'badCSR', 400],
      ['malformed', 'malformed', 400],
      ['notFound', 'malformed', 404],
      ['conflict', 'malformed', 409],
      ['unauthorized', 'unauthorized', 403],
      ['forbidden', 'unauthorized', 403],
      ['unavailable', 'serverInternal', 503],
      // A server fault of the configuration or key store: 503 + Retry-After (the error contract), details hidden.
      ['config', 'serverInternal', 503],
      ['internal', 'serverInternal', 500],
    ];
    for (const [kind, type, status] of cases) {
      const log = silentLog();
      const p = problemFromError(new CaError(kind, `secret ${kind} detail`), log);
      assert.equal(p.type, type, kind);
      assert.equal(p.status, status, kind);
      if (status === 500) {
        assert.equal(p.detail, 'internal error');
        assert.equal(log.logged.length, 1);
      } else if (kind === 'config') {
        assert.doesNotMatch(p.detail, /secret/);
        assert.equal(p.headers?.['Retry-After'], '60');
        assert.equal(log.logged.length, 1);
      } else {
        assert.match(p.detail, /secret/);
      }
    }
    assert.equal(problemFromError(new CaError('unavailable', 'db down'), silentLog()).headers?.['Retry-After'], '10');
    const log = silentLog();
    const bug = problemFromError(new TypeError('x is undefined'), log);
    assert.equal(bug.type, 'serverInternal');
    assert.equal(bug.detail, 'internal error');
    assert.equal(log.logged.length, 1);
    const own = problem('badNonce', 'again');
    assert.equal(problemFromError(own, silentLog()), own);
  });
});

describe('revocation reasons (RFC 8555 7.6, RFC 5280 5.3.1)', () => {
  it('accepts the subscriber reasons; absent is unspecified', () => {
    assert.equal(revocationReason(undefined), 'unspecified');
    assert.equal(revocationReason(0), 'unspecified');
    assert.equal(revocationReason(1), 'keyCompromise');
    assert.equal(revocationReason(3), 'affiliationChanged');
    assert.equal(revocationReason(4), 'superseded');
    assert.equal(revocationReason(5), 'cessationOfOperation');
    assert.equal(revocationReason(9), 'privilegeWithdrawn');
  });
  it('refuses certificateHold, 7, removeFromCRL, CA compromise claims, > 10 and non-integers', () => {
    for (const bad of [6, 7, 8, 2, 10, 11, 255, -1, 1.5, '1', null, true]) {
      throwsProblem(() => revocationReason(bad), 'badRevocationReason');
    }
  });
});

describe('ARI certIDs (RFC 9773)', () => {
  it('parses the RFC 9773 example and round-trips', () => {
    // RFC 9773 section 4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
    const id = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';
    assert.deepEqual(parseAriCertId(id), { akiHex: '69885b6b87464041e1b37b847ba0ae2cde01c8d4', serialHex: '87654321' });
    assert.equal(ariCertId('69885b6b87464041e1b37b847ba0ae2cde01c8d4', '87654321'), id);
    assert.equal(parseAriCertId(ariCertId('ab', '01')).serialHex, '01');
  });
  it('refuses what is not two canonical unpadded base64url parts or has a negative serial', () => {
    for (const bad of [
      '',
      'abc',
      'a.b.c',
      'aYhb=.AIdl',
      '.AIdlQyE',
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.',
      'aYhb+4dG.AIdl',
      'aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA',
    ]) {
      throwsProblem(() => parseAriCertId(bad), 'malformed');
    }
  });
  it('windows: 2/3 to 5/6 of the lifetime; revoked or on hold: already open', () => {
    const notBefore = new Date('2025-01-01T00:00:00Z');
    const notAfter = new Date('2025-04-01T00:00:00Z');
    const w = suggestedWindow({ status: 'valid', notBefore, notAfter });
    const life = notAfter.getTime() - notBefore.getTime();
    assert.equal(w.start.getTime(), notBefore.getTime() + Math.round((life * 2) / 3));
    assert.equal(w.end.getTime(), notBefore.getTime() + Math.round((life * 5) / 6));
    const now = new Date();
    for (const status of ['revoked', 'hold'] as const) {
      const r = suggestedWindow({ status, notBefore, notAfter }, now);
      assert.ok(r.end.getTime() < now.getTime() && r.start < r.end);
    }
  });
});

describe('contacts (RFC 8555 7.3)', () => {
  it('accepts mailto: addresses', () => {
    assert.deepEqual(validateContacts(['mailto:admin@example.com', 'MAILTO:a.b+c@sub.example.org']), [
      'mailto:admin@example.com',
      'mailto:a.b+c@sub.example.org',
    ]);
    assert.deepEqual(validateContacts(undefined), []);
    assert.deepEqual(validateContacts([]), []);
  });
  it('other schemes: unsupportedContact; header fields, lists, non-addresses: invalidContact', () => {
    throwsProblem(() => validateContacts(['tel:+12025551212']), 'unsupportedContact');
    throwsProblem(() => validateContacts(['admin@example.com']), 'unsupportedContact');
    throwsProblem(() => validateContacts(['mailto:admin@example.com?subject=hi']), 'invalidContact');
    throwsProblem(() => validateContacts(['mailto:a@example.com,b@example.com']), 'invalidContact');
    throwsProblem(() => validateContacts(['mailto:not-an-address']), 'invalidContact');
    throwsProblem(() => validateContacts(['mailto:a@localhost']), 'invalidContact');
    throwsProblem(() => validateContacts(Array.from({ length: 11 }, (_, i) => `mailto:a${i}@example.com`)), 'invalidContact');
    throwsProblem(() => validateContacts('mailto:a@example.com'), 'malformed');
    throwsProblem(() => validateContacts([42]), 'malformed');
  });
});

describe('directory', () => {
  const config = loadConfig({ CERTFLOW_HOME: '/tmp/certflow-unit-none' });
  const alias: AcmeAlias = {
    ...config.acme.aliases.get('')!,
    name: 'corp',
    termsOfService: 'https://ca.example/tos',
    website: 'https://ca.example',
    caaIdentities: ['ca.example'],
    eabRequired: true,
  };

  it('lists every resource below the alias base and the meta fields', () => {
    const dir = makeDirectory('https://localhost:8443', alias);
    assert.equal(dir.base, 'https://localhost:8443/acme/corp');
    const d = directoryObject(dir, config);
    assert.equal(d.newNonce, 'https://localhost:8443/acme/corp/new-nonce');
    assert.equal(d.newAccount, 'https://localhost:8443/acme/corp/new-account');
    assert.equal(d.newOrder, 'https://localhost:8443/acme/corp/new-order');
    assert.equal(d.newAuthz, 'https://localhost:8443/acme/corp/new-authz');
    assert.equal(d.revokeCert, 'https://localhost:8443/acme/corp/revoke-cert');
    assert.equal(d.keyChange, 'https://localhost:8443/acme/corp/key-change');
    assert.equal(d.renewalInfo, 'https://localhost:8443/acme/corp/renewal-info');
    assert.deepEqual(d.meta, {
      termsOfService: 'https://ca.example/tos',
      website: 'https://ca.example',
      caaIdentities: ['ca.example'],
      externalAccountRequired: true,
      profiles: { 'tls-server': config.profiles.get('tls-server')!.description },
    });
    const noPreAuthz = directoryObject(makeDirectory('https://h', { ...alias, preAuthorization: false }), config);
    assert.equal('newAuthz' in noPreAuthz, false);
    assert.equal(makeDirectory('https://h', { ...alias, name: '' }).base, 'https://h/acme');
  });

  it('kid: only account URLs of this directory', () => {
    const dir = makeDirectory('https://localhost:8443', alias);
    assert.equal(accountIdOfKid(dir, 'https://localhost:8443/acme/corp/acct/abc_DEF-1'), 'abc_DEF-1');
    assert.equal(accountIdOfKid(dir, 'https://localhost:8443/acme/acct/abc'), undefined);
    assert.equal(accountIdOfKid(dir, 'https://other:8443/acme/corp/acct/abc'), undefined);
    assert.equal(accountIdOfKid(dir, 'https://localhost:8443/acme/corp/acct/a/b'), undefined);
    assert.equal(accountIdOfKid(dir, 'https://localhost:8443/acme/corp/acct/'), undefined);
  });

  it('terms: an account that agreed to other terms must agree again', () => {
    const account = { tosAgreed: 'https://ca.example/tos' } as AcmeAccount;
    checkTermsAgreed(alias, account);
    checkTermsAgreed({ ...alias, termsOfService: undefined }, { tosAgreed: null } as AcmeAccount);
    throwsProblem(() => checkTermsAgreed({ ...alias, termsOfService: 'https://ca.example/tos/v2' }, account), 'userActionRequired');
    throwsProblem(() => checkTermsAgreed(alias, { tosAgreed: null } as AcmeAccount), 'userActionRequired');
  });
});
