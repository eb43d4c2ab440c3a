/**
 * Pre-issuance linting (src/ca/lint.ts, issue 11 item 4): certificates certflow prepares
 * pass every rule; each rule fires, by name, on a TBSCertificate that breaks it; a profile
 * with "lint": "cabf-serverauth" gets the CA/B Forum rules; prepareCertificate refuses to
 * produce what the linter refuses; the device profile puts serverAuth only into
 * certificates with a DNS or IP SAN.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { createRootCertificate, createSubordinateCertificate } from '../../src/ca/hierarchy.ts';
import { issuerSummary, prepareCertificate, type IssuingCa } from '../../src/ca/issuer.ts';
import { LINT_RULES, lintTbs, type LintContext } from '../../src/ca/lint.ts';
import { DEFAULT_PROFILES, validateProfile, type CertProfile } from '../../src/config/profiles.ts';
import { CaError } from '../../src/core/errors.ts';
import {
  buildCsr,
  buildTbsCertificate,
  emptySans,
  encodeName,
  inspectTbs,
  keyIdentifier,
  parseCsr,
  parseDn,
  randomSerial,
  type SanSet,
  type TbsParams,
} from '../../src/pki/index.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';

const DAY = 86_400_000;
const profile = (name: string): CertProfile => structuredClone(DEFAULT_PROFILES.find((p) => p.name === name)!);
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const urls = { crl: 'http://ca.test/crl/issuing.crl', ocsp: 'http://ca.test/ocsp', caIssuers: 'http://ca.test/ca/issuing.crt' };

const sans = (dns: string[] = [], more: Partial<SanSet> = {}): SanSet => ({ ...emptySans(), dns, ...more });
const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

describe('pre-issuance linting', () => {
  let issuing: IssuingCa;
  let issuingWithCountry: IssuingCa;

  before(async () => {
    const keys = new MemoryKeyStore();
    const now = new Date();
    for (const id of ['root', 'issuing', 'issuing-c']) await keys.generate(id, 'ec-p256');
    const rootDer = await createRootCertificate(keys, {
      keyId: 'root',
      keyAlg: 'ec-p256',
      subject: 'CN=Lint Root,O=certflow,C=DE',
      validityDays: 3650,
      now,
    });
    const root = { name: 'root', certDer: rootDer, keyId: 'root', keyAlg: 'ec-p256' as const };
    const sub = (keyId: string, subject: string) =>
      createSubordinateCertificate(keys, { issuer: root, keyId, keyAlg: 'ec-p256', subject, validityDays: 1825, now, pathLen: 0, urls });
    issuing = { name: 'issuing', certDer: await sub('issuing', 'CN=Lint Issuing CA,O=certflow'), keyId: 'issuing', keyAlg: 'ec-p256' };
    issuingWithCountry = {
      name: 'issuing-c',
      certDer: await sub('issuing-c', 'CN=Lint Issuing CA C,O=certflow,C=DE'),
      keyId: 'issuing-c',
      keyAlg: 'ec-p256',
    };
  });

  function prepare(p: CertProfile, subject: string, names: SanSet, ca = issuing, key = ecKey()) {
    const csr = parseCsr(buildCsr({ subject, sans: names, privateKey: key }));
    return prepareCertificate({ csr, profile: p, ca, serial: randomSerial(), now: new Date(), urls });
  }

  /** A TBS built directly (bypassing the profile) with one thing changed. */
  function tbs(
    over: Partial<TbsParams> & { ext?: Partial<TbsParams['extensions']> } = {},
    ca = issuing,
  ): { der: Uint8Array; ctx: LintContext } {
    const issuer = issuerSummary(ca, new Date());
    const pub = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }));
    const { ext, ...rest } = over;
    const params: TbsParams = {
      serial: randomSerial(),
      issuer: issuer.subjectDer,
      subject: encodeName(parseDn('CN=www.example.test')),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 90 * DAY),
      spki: pub,
      sigAlg: 'ecdsa-sha256',
      ...rest,
      extensions: {
        basicConstraints: { ca: false },
        keyUsage: ['digitalSignature'],
        extKeyUsage: [SERVER_AUTH],
        sans: sans(['www.example.test']),
        subjectKeyId: keyIdentifier(rest.spki ?? pub),
        authorityKeyId: Buffer.from(issuer.subjectKeyIdHex!, 'hex'),
        crlUrls: [urls.crl],
        ocspUrls: [urls.ocsp],
        caIssuersUrls: [urls.caIssuers],
        ...ext,
      },
    };
    return { der: buildTbsCertificate(params), ctx: { profile: { name: 'test' }, issuer, expectedEku: [SERVER_AUTH] } };
  }

  const fired = (t: { der: Uint8Array; ctx: LintContext }, ctx: Partial<LintContext> = {}) =>
    lintTbs(t.der, { ...t.ctx, ...ctx }).map((f) => f.rule);

  it('what certflow prepares passes every rule of every built-in profile', () => {
    for (const name of ['tls-server', 'tls-client', 'device']) {
      const p = profile(name);
      const prepared = prepare(
        p,
        'CN=dev.example.test',
        p.san.email ? sans(['dev.example.test'], { email: ['a@example.test'] }) : sans(['dev.example.test']),
      );
      assert.ok(prepared.tbsDer.length > 0, name);
    }
  });

  it('a well-formed TBS fires nothing, also with the CA/B Forum set', () => {
    assert.deepEqual(fired(tbs()), []);
    const cabf = tbs({ ext: { policies: ['2.23.140.1.2.1'] } }, issuingWithCountry);
    assert.deepEqual(fired(cabf, { profile: { name: 'public', lint: 'cabf-serverauth' } }), []);
  });

  it('each RFC 5280 rule fires by name on a certificate that breaks it', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
    const cases: Array<[string, ReturnType<typeof tbs>, Partial<LintContext>?]> = [
      ['e_key_usage_incompatible_with_key', tbs({ ext: { keyUsage: ['digitalSignature', 'keyEncipherment'] } })],
      ['e_key_usage_incompatible_with_key', tbs({ spki: new Uint8Array(rsa), ext: { keyUsage: ['keyAgreement'] } })],
      ['e_key_usage_cert_sign_without_ca', tbs({ ext: { keyUsage: ['digitalSignature', 'keyCertSign'] } })],
      ['e_ee_basic_constraints_ca', tbs({ ext: { basicConstraints: { ca: true } } })],
      ['e_eku_not_as_profile', tbs({ ext: { extKeyUsage: [CLIENT_AUTH] } })],
      ['e_ext_ski_missing_or_wrong', tbs({ ext: { subjectKeyId: new Uint8Array(20).fill(7) } })],
      ['e_ext_aki_missing_or_wrong', tbs({ ext: { authorityKeyId: new Uint8Array(20).fill(9) } })],
      ['e_ext_aki_missing_or_wrong', tbs({ ext: { authorityKeyId: undefined } })],
      ['e_validity_outside_issuer', tbs({ notAfter: new Date(Date.now() + 4000 * DAY) })],
      ['e_issuer_name_not_ca_subject', tbs({ issuer: encodeName(parseDn('CN=Someone Else')) })],
      ['e_ext_san_dns_syntax', tbs({ ext: { sans: sans(['bad_name.example.test']) } })],
      ['e_ext_san_uri_syntax', tbs({ ext: { sans: sans(['www.example.test'], { uri: ['no-scheme'] }) } })],
      ['e_ext_crl_distribution_uri_syntax', tbs({ ext: { crlUrls: ['ftp://ca.test/x.crl'] } })],
      ['e_ext_aia_uri_syntax', tbs({ ext: { ocspUrls: ['not a url'] } })],
      ['e_subject_attribute_too_long', tbs({ subject: encodeName(parseDn(`CN=${'a'.repeat(65)}`)) })],
      ['e_key_usage_missing_or_not_critical', tbs({ ext: { keyUsage: undefined } })],
    ];
    for (const [rule, t, ctx] of cases) {
      const rules = fired(t, ctx);
      assert.ok(rules.includes(rule), `${rule} expected, got ${JSON.stringify(rules)}`);
    }
  });

  it('CA certificates are linted before they are signed: the CA rules instead of the end-entity ones', async () => {
    const caCtx: Partial<LintContext> = { profile: { name: 'subordinate CA' }, ca: true, expectedEku: [] };
    const caExt = {
      basicConstraints: { ca: true, pathLen: 0 },
      keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'] as const,
      extKeyUsage: undefined,
      sans: undefined,
    };
    const good = tbs({ subject: encodeName(parseDn('CN=Sub CA,O=certflow')), ext: { ...caExt, keyUsage: [...caExt.keyUsage] } });
    assert.deepEqual(fired(good, caCtx), [], 'a well-formed CA TBS');
    assert.ok(fired(good).includes('e_ee_basic_constraints_ca'), 'the same TBS linted as an end-entity certificate');
    const cases: Array<[string, ReturnType<typeof tbs>]> = [
      [
        'e_ca_is_ca',
        tbs({
          subject: encodeName(parseDn('CN=Sub CA')),
          ext: { ...caExt, basicConstraints: { ca: false }, keyUsage: ['digitalSignature'] },
        }),
      ],
      [
        'e_ca_key_cert_sign_not_set',
        tbs({ subject: encodeName(parseDn('CN=Sub CA')), ext: { ...caExt, keyUsage: ['digitalSignature', 'cRLSign'] } }),
      ],
      [
        'e_ca_subject_field_empty',
        tbs({ subject: encodeName([]), ext: { ...caExt, keyUsage: [...caExt.keyUsage], sans: sans(['ca.example.test']) } }),
      ],
    ];
    for (const [rule, t] of cases) {
      const rules = fired(t, caCtx);
      assert.ok(rules.includes(rule), `${rule} expected, got ${JSON.stringify(rules)}`);
    }
    // The hierarchy refuses to sign what the linter refuses: a root whose CN is over 64 characters.
    const keys = new MemoryKeyStore();
    await keys.generate('long-root', 'ec-p256');
    await assert.rejects(
      createRootCertificate(keys, {
        keyId: 'long-root',
        keyAlg: 'ec-p256',
        subject: `CN=${'R'.repeat(65)},O=certflow`,
        validityDays: 3650,
        now: new Date(),
      }),
      (e: unknown) => CaError.is(e, 'config') && e.rule === 'lint.e_subject_attribute_too_long',
    );
  });

  it('the CA/B Forum set fires only where a profile asks for it', () => {
    const cabf = { profile: { name: 'public', lint: 'cabf-serverauth' as const } };
    const cases: Array<[string, ReturnType<typeof tbs>]> = [
      [
        'e_cabf_validity_over_398_days',
        tbs({ notAfter: new Date(Date.now() + 400 * DAY), ext: { policies: ['2.23.140.1.2.1'] } }, issuingWithCountry),
      ],
      ['e_cabf_cert_policy_missing', tbs({}, issuingWithCountry)],
      ['e_cabf_ca_subject_country_missing', tbs({ ext: { policies: ['2.23.140.1.2.1'] } })],
      [
        'e_cabf_san_missing',
        tbs({ ext: { policies: ['2.23.140.1.2.1'], sans: sans([], { email: ['a@example.test'] }) } }, issuingWithCountry),
      ],
      [
        'e_cabf_cn_not_in_san',
        tbs({ subject: encodeName(parseDn('CN=other.example.test')), ext: { policies: ['2.23.140.1.2.1'] } }, issuingWithCountry),
      ],
      [
        'e_cabf_eku_not_server_auth',
        tbs({ ext: { policies: ['2.23.140.1.2.1'], extKeyUsage: [SERVER_AUTH, '1.3.6.1.5.5.7.3.3'] } }, issuingWithCountry),
      ],
    ];
    for (const [rule, t] of cases) {
      assert.ok(fired(t, cabf).includes(rule), `${rule} expected, got ${JSON.stringify(fired(t, cabf))}`);
      assert.ok(!fired(t).some((r) => r.startsWith('e_cabf_')), 'not without the profile flag');
    }
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    assert.ok(
      fired(tbs({ spki: new Uint8Array(ed), ext: { policies: ['2.23.140.1.2.1'] } }, issuingWithCountry), cabf).includes(
        'e_cabf_key_algorithm',
      ),
    );
    assert.ok(LINT_RULES.every((r) => /^e_/.test(r.name) && r.source));
  });

  it('prepareCertificate refuses what the linter refuses, as a server fault naming the rule', () => {
    const p: CertProfile = { ...profile('tls-server'), name: 'public', lint: 'cabf-serverauth', policies: ['2.23.140.1.2.1'] };
    validateProfile(p);
    // The default CA has no countryName in its subject: BR 7.1.2.10.2.
    assert.throws(
      () => prepare(p, 'CN=www.example.test', sans(['www.example.test'])),
      (e: unknown) => e instanceof CaError && e.kind === 'config' && e.rule === 'lint.e_cabf_ca_subject_country_missing',
    );
    const ok = prepare(p, 'CN=www.example.test', sans(['www.example.test']), issuingWithCountry);
    assert.ok(ok.tbsDer.length > 0);
  });

  it('profile checks: cabf-serverauth needs a reserved policy and at most 398 days', () => {
    const base = { ...profile('tls-server'), name: 'public', lint: 'cabf-serverauth' as const };
    assert.throws(() => validateProfile({ ...base }), /CA\/B Forum reserved policy/);
    assert.throws(() => validateProfile({ ...base, policies: ['2.23.140.1.2.1'], validitySeconds: 400 * 86_400 }), /at most 398 days/);
  });

  it('device profile: serverAuth only with a DNS or IP SAN', () => {
    const p = profile('device');
    const withoutSan = describeEku(prepare(p, 'CN=device-1', sans([])).tbsDer);
    assert.deepEqual(withoutSan, [CLIENT_AUTH]);
    const withSan = describeEku(prepare(p, 'CN=device-1', sans(['device-1.example.test'])).tbsDer);
    assert.deepEqual(withSan.sort(), [SERVER_AUTH, CLIENT_AUTH].sort());
    assert.throws(
      () => validateProfile({ ...profile('tls-server'), name: 'x', san: { ...profile('tls-server').san, required: false } }),
      /san.required/,
    );
  });
});

function describeEku(tbsDer: Uint8Array): string[] {
  return inspectTbs(tbsDer).decoded.extKeyUsage;
}
