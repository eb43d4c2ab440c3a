/**
 * Pre-issuance linting, as Boulder does it: every TBSCertificate is checked with named rules
 * before it is signed, end-entity and CA certificates (src/ca/hierarchy.ts) alike. A certificate that breaks a rule is never signed: the request fails
 * with CaError('config') naming the rule — the profile or the CA produced something it must
 * not issue, which an operator fixes (the request stays open and is retried, see
 * workflows/enrollment.ts). The rules are checked against the reference linters in CI
 * (zlint and pkilint over everything the test suite issues, scripts/test.js).
 *
 * Sets: RFC 5280 always; `"lint": "cabf-serverauth"` in a profile adds the CA/Browser Forum
 * Baseline Requirements for TLS server certificates.
 */
import { CaError } from '../core/errors.ts';
import { EKU_OIDS, type CertProfile, type LintSet } from '../config/profiles.ts';
import { inspectTbs, keyIdentifier, normalizeIp, OID, type CertSummary, type TbsView } from '../pki/index.ts';

/** What the rules read of the issuing CA's certificate. */
type IssuerView = Pick<CertSummary, 'subjectDer' | 'notBefore' | 'notAfter' | 'subjectKeyIdHex'>;

export interface LintContext {
  profile: Pick<CertProfile, 'name' | 'lint'>;
  /** The issuing CA's certificate; 'self' for a self-signed root, which is its own issuer. */
  issuer: IssuerView | 'self';
  /** Extended key usages (OIDs) the profile decided for this certificate. */
  expectedEku: string[];
  /** A CA certificate (root or subordinate): the CA rules apply instead of the end-entity ones. */
  ca?: boolean;
}

export interface LintRule {
  name: string;
  set: LintSet;
  /** Where the requirement comes from. */
  source: string;
  /** Only for CA certificates (true) or only for end-entity certificates (false); both when left out. */
  ca?: boolean;
  /** undefined when the certificate passes; otherwise what is wrong. */
  check(tbs: TbsView, ctx: LintContext & { issuer: IssuerView }): string | undefined;
}

export interface LintFinding {
  rule: string;
  source: string;
  message: string;
}

const DAY = 86_400_000;
const CABF_TLS_POLICIES = ['2.23.140.1.2.1', '2.23.140.1.2.2', '2.23.140.1.2.3'];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function dnsProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 253) return 'has an invalid length';
  const labels = name.split('.');
  for (const [i, label] of labels.entries()) {
    if (label === '*' && i === 0 && labels.length > 2) continue;
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label)) return `has an invalid label "${label}"`;
  }
  if (/^\d+$/.test(labels.at(-1)!)) return 'has an all-numeric top-level label';
  return undefined;
}

function uriProblem(uri: string, schemes?: string[]): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  const scheme = u.protocol.slice(0, -1);
  if (schemes && !schemes.includes(scheme)) return `has scheme "${scheme}" (expected ${schemes.join(' or ')})`;
  if (uri.slice(u.protocol.length).startsWith('//') && !u.hostname) return 'has an authority without a host';
  return undefined;
}

const each = (values: string[], problem: (v: string) => string | undefined, what: string) => {
  for (const v of values) {
    const p = problem(v);
    if (p) return `${what} "${v}" ${p}`;
  }
  return undefined;
};

/** The rules, by set. Names follow zlint's: e_ for errors. */
export const LINT_RULES: readonly LintRule[] = [
  // ---- RFC 5280 --------------------------------------------------------------------------
  {
    name: 'e_cert_not_v3',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.1',
    check: (t) => (t.version === 2 ? undefined : `version is v${t.version + 1}; extensions need v3`),
  },
  {
    name: 'e_serial_number_not_positive',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.2',
    check: (t) =>
      (t.serialBytes[0]! & 0x80) !== 0
        ? 'the serial number is negative'
        : t.serialBytes.every((b) => b === 0)
          ? 'the serial number is zero'
          : undefined,
  },
  {
    name: 'e_serial_number_longer_than_20_octets',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.2',
    check: (t) => (t.serialBytes.length > 20 ? `the serial number has ${t.serialBytes.length} octets` : undefined),
  },
  {
    name: 'e_issuer_name_not_ca_subject',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.4',
    check: (t, c) =>
      hex(t.issuerDer) === hex(c.issuer.subjectDer) ? undefined : "the issuer name is not the CA certificate's subject, byte for byte",
  },
  {
    name: 'e_validity_order',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.5',
    check: (t) => (t.notBefore < t.notAfter ? undefined : 'notBefore is not before notAfter'),
  },
  {
    name: 'e_wrong_time_format',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.5',
    check: (t) => {
      const want = (d: Date) => (d.getUTCFullYear() >= 1950 && d.getUTCFullYear() <= 2049 ? 'UTCTime' : 'GeneralizedTime');
      if (t.notBeforeType !== want(t.notBefore)) return `notBefore is ${t.notBeforeType}, must be ${want(t.notBefore)}`;
      if (t.notAfterType !== want(t.notAfter)) return `notAfter is ${t.notAfterType}, must be ${want(t.notAfter)}`;
      return undefined;
    },
  },
  {
    name: 'e_validity_outside_issuer',
    set: 'rfc5280',
    source: 'RFC 5280 6.1.3 (a)(2)',
    check: (t, c) =>
      t.notAfter > c.issuer.notAfter
        ? 'notAfter is after the issuing CA expires'
        : t.notBefore < c.issuer.notBefore
          ? 'notBefore is before the issuing CA is valid'
          : undefined,
  },
  {
    name: 'e_ext_duplicate',
    set: 'rfc5280',
    source: 'RFC 5280 4.2',
    check: (t) => {
      const seen = new Set<string>();
      for (const e of t.extensions) {
        if (seen.has(e.oid)) return `extension ${e.oid} appears twice`;
        seen.add(e.oid);
      }
      return undefined;
    },
  },
  {
    name: 'e_ee_basic_constraints_ca',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.9',
    ca: false,
    check: (t) => (t.decoded.isCa ? 'an end-entity certificate has cA TRUE' : undefined),
  },
  {
    name: 'e_ca_is_ca',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.9',
    ca: true,
    check: (t) => (t.decoded.isCa ? undefined : 'a CA certificate without cA TRUE in basicConstraints'),
  },
  {
    name: 'e_basic_constraints_not_critical',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.9',
    ca: true,
    check: (t) =>
      t.has(OID.basicConstraints) && !t.critical(OID.basicConstraints) ? 'basicConstraints of a CA certificate is not critical' : undefined,
  },
  {
    name: 'e_ca_key_cert_sign_not_set',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.3',
    ca: true,
    check: (t) => (t.decoded.keyUsage.includes('keyCertSign') ? undefined : 'a CA certificate without keyCertSign'),
  },
  {
    name: 'e_ca_subject_field_empty',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.6',
    ca: true,
    check: (t) => (t.subject.length > 0 ? undefined : 'a CA certificate with an empty subject'),
  },
  {
    name: 'e_key_usage_missing_or_not_critical',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.3',
    check: (t) =>
      !t.has(OID.keyUsage) || t.decoded.keyUsage.length === 0
        ? 'no key usage'
        : !t.critical(OID.keyUsage)
          ? 'keyUsage is not critical'
          : undefined,
  },
  {
    name: 'e_key_usage_cert_sign_without_ca',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.3, 4.2.1.9',
    check: (t) =>
      !t.decoded.isCa && t.decoded.keyUsage.some((u) => u === 'keyCertSign' || u === 'cRLSign')
        ? 'keyCertSign or cRLSign without cA TRUE'
        : undefined,
  },
  {
    name: 'e_key_usage_incompatible_with_key',
    set: 'rfc5280',
    source: 'RFC 5480 3, RFC 8410 5, RFC 4055 1.2',
    check: (t) => {
      const allowed: Record<string, string[]> = {
        rsa: ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyCertSign', 'cRLSign'],
        ec: ['digitalSignature', 'nonRepudiation', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'],
        ed25519: ['digitalSignature', 'nonRepudiation', 'keyCertSign', 'cRLSign'],
        ed448: ['digitalSignature', 'nonRepudiation', 'keyCertSign', 'cRLSign'],
      };
      const bad = t.decoded.keyUsage.filter((u) => !allowed[t.key.type]!.includes(u));
      return bad.length ? `${bad.join(', ')} with a ${t.key.type} key` : undefined;
    },
  },
  {
    name: 'e_ext_san_missing_with_empty_subject',
    set: 'rfc5280',
    source: 'RFC 5280 4.1.2.6, 4.2.1.6',
    check: (t) =>
      t.subject.length > 0
        ? undefined
        : !t.has(OID.subjectAltName)
          ? 'an empty subject without subjectAltName'
          : !t.critical(OID.subjectAltName)
            ? 'subjectAltName is not critical though the subject is empty'
            : undefined,
  },
  {
    name: 'e_ext_san_critical_with_subject',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6',
    check: (t) =>
      t.subject.length > 0 && t.critical(OID.subjectAltName) ? 'subjectAltName is critical though the subject is not empty' : undefined,
  },
  {
    name: 'e_ext_san_empty',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6',
    check: (t) => {
      const s = t.decoded.sans;
      return t.has(OID.subjectAltName) && s.dns.length + s.ip.length + s.email.length + s.uri.length === 0
        ? 'subjectAltName holds no name'
        : undefined;
    },
  },
  {
    name: 'e_ext_san_dns_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6, RFC 1034 3.5',
    check: (t) => each(t.decoded.sans.dns, dnsProblem, 'DNS name'),
  },
  {
    name: 'e_ext_san_ip_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6',
    check: (t) => each(t.decoded.sans.ip, (ip) => (normalizeIp(ip) ? undefined : 'is not an IP address'), 'IP address'),
  },
  {
    name: 'e_ext_san_uri_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6, RFC 3986 4.3',
    check: (t) => each(t.decoded.sans.uri, (u) => uriProblem(u), 'URI'),
  },
  {
    name: 'e_ext_san_email_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.6',
    check: (t) =>
      each(
        t.decoded.sans.email,
        (e) => (/^[^@\s]+@([^@\s]+)$/.test(e) && !dnsProblem(e.split('@')[1]!.toLowerCase()) ? undefined : 'is not local@domain'),
        'email address',
      ),
  },
  {
    name: 'e_eku_not_as_profile',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.12',
    check: (t, c) => {
      const have = [...t.decoded.extKeyUsage].sort().join(',');
      const want = [...c.expectedEku].sort().join(',');
      return have === want
        ? undefined
        : `extended key usages ${have || '(none)'} differ from profile "${c.profile.name}": ${want || '(none)'}`;
    },
  },
  {
    name: 'e_ext_crl_distribution_uri_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.13',
    check: (t) => each(t.decoded.crlUrls, (u) => uriProblem(u, ['http', 'https', 'ldap']), 'CRL distribution point'),
  },
  {
    name: 'e_ext_aia_uri_syntax',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.2.1',
    check: (t) => each([...t.decoded.ocspUrls, ...t.decoded.caIssuersUrls], (u) => uriProblem(u, ['http', 'https', 'ldap']), 'AIA URL'),
  },
  {
    name: 'e_ext_ski_missing_or_wrong',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.2',
    check: (t) =>
      !t.decoded.subjectKeyId
        ? 'no subject key identifier'
        : t.critical(OID.subjectKeyIdentifier)
          ? 'subjectKeyIdentifier is critical'
          : hex(t.decoded.subjectKeyId) !== hex(keyIdentifier(t.spki))
            ? 'the subject key identifier is not the hash of the key'
            : undefined,
  },
  {
    name: 'e_ext_aki_missing_or_wrong',
    set: 'rfc5280',
    source: 'RFC 5280 4.2.1.1',
    check: (t, c) =>
      !t.decoded.authorityKeyId
        ? 'no authority key identifier'
        : t.critical(OID.authorityKeyIdentifier)
          ? 'authorityKeyIdentifier is critical'
          : c.issuer.subjectKeyIdHex && hex(t.decoded.authorityKeyId) !== c.issuer.subjectKeyIdHex
            ? "the authority key identifier is not the CA's subject key identifier"
            : undefined,
  },
  {
    name: 'e_subject_attribute_too_long',
    set: 'rfc5280',
    source: 'RFC 5280 A.1 (ub-common-name, ub-country)',
    check: (t) => {
      for (const a of t.subject) {
        if (a.type === '2.5.4.3' && [...a.value].length > 64) return `CN is ${[...a.value].length} characters (at most 64)`;
        if (a.type === '2.5.4.6' && !/^[A-Z]{2}$/.test(a.value)) return `countryName "${a.value}" is not two capital letters`;
      }
      return undefined;
    },
  },
  // ---- CA/Browser Forum Baseline Requirements (TLS server certificates) ----------------------
  {
    name: 'e_cabf_validity_over_398_days',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 6.3.2',
    check: (t) =>
      t.notAfter.getTime() - t.notBefore.getTime() + 1000 > 398 * DAY
        ? `valid for ${Math.round((t.notAfter.getTime() - t.notBefore.getTime()) / DAY)} days (at most 398)`
        : undefined,
  },
  {
    name: 'e_cabf_san_missing',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.7.12',
    check: (t) => {
      const s = t.decoded.sans;
      if (s.dns.length + s.ip.length === 0) return 'no DNS name or IP address in subjectAltName';
      if (s.email.length + s.uri.length > 0) return 'subjectAltName holds email addresses or URIs';
      return undefined;
    },
  },
  {
    name: 'e_cabf_cert_policy_missing',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.7.9',
    check: (t) =>
      t.decoded.policies.some((p) => CABF_TLS_POLICIES.includes(p))
        ? undefined
        : `no CA/B Forum reserved policy (${CABF_TLS_POLICIES.join(', ')}) in certificatePolicies`,
  },
  {
    name: 'e_cabf_ca_subject_country_missing',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.10.2',
    check: (t) => (t.issuer.some((a) => a.type === '2.5.4.6') ? undefined : "the issuing CA's subject has no countryName"),
  },
  {
    name: 'e_cabf_eku_not_server_auth',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.7.10',
    check: (t) => {
      const eku = t.decoded.extKeyUsage;
      if (!eku.includes(EKU_OIDS.serverAuth!)) return 'no serverAuth extended key usage';
      const extra = eku.filter((e) => e !== EKU_OIDS.serverAuth && e !== EKU_OIDS.clientAuth);
      return extra.length ? `extended key usages other than serverAuth and clientAuth: ${extra.join(', ')}` : undefined;
    },
  },
  {
    name: 'e_cabf_key_usage',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.7.11',
    check: (t) => {
      const ku = t.decoded.keyUsage;
      if (t.key.type === 'ec' && (!ku.includes('digitalSignature') || ku.some((u) => u !== 'digitalSignature' && u !== 'keyAgreement')))
        return `EC key with key usage ${ku.join(', ')}`;
      if (t.key.type === 'rsa' && ku.some((u) => u !== 'digitalSignature' && u !== 'keyEncipherment'))
        return `RSA key with key usage ${ku.join(', ')}`;
      return undefined;
    },
  },
  {
    name: 'e_cabf_key_algorithm',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 6.1.5',
    check: (t) =>
      t.key.type === 'rsa'
        ? t.key.bits < 2048 || t.key.bits % 8 !== 0
          ? `RSA key of ${t.key.bits} bits`
          : undefined
        : t.key.type === 'ec'
          ? ['P-256', 'P-384', 'P-521'].includes(t.key.curve)
            ? undefined
            : `EC curve ${t.key.curve}`
          : `${t.key.type} keys are not allowed for publicly trusted TLS`,
  },
  {
    name: 'e_cabf_cn_not_in_san',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.4.3',
    check: (t) => {
      const names = new Set([...t.decoded.sans.dns.map((d) => d.toLowerCase()), ...t.decoded.sans.ip.map((ip) => normalizeIp(ip) ?? ip)]);
      const cn = t.subject.find((a) => a.type === '2.5.4.3' && !names.has(normalizeIp(a.value) ?? a.value.toLowerCase()));
      return cn ? `CN "${cn.value}" is not one of the SANs` : undefined;
    },
  },
  {
    name: 'e_cabf_aia_missing',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1.2.7.7',
    check: (t) => (t.decoded.caIssuersUrls.length + t.decoded.ocspUrls.length > 0 ? undefined : 'no authorityInformationAccess'),
  },
  {
    name: 'e_cabf_serial_entropy',
    set: 'cabf-serverauth',
    source: 'CA/B Forum BR 7.1',
    check: (t) =>
      t.serialBytes.length >= 9 ? undefined : `the serial number has ${t.serialBytes.length} octets; 64 random bits need at least 9`,
  },
];

/** The rules a profile is linted with: RFC 5280, plus its `lint` set; those for CA or end-entity certificates. */
function rulesFor(profile: Pick<CertProfile, 'lint'>, ca = false): LintRule[] {
  return LINT_RULES.filter((r) => (r.set === 'rfc5280' || r.set === profile.lint) && (r.ca === undefined || r.ca === ca));
}

export function lintTbs(tbsDer: Uint8Array, ctx: LintContext): LintFinding[] {
  return lintView(inspectTbs(tbsDer), ctx);
}

function lintView(tbs: TbsView, ctx: LintContext): LintFinding[] {
  const issuer =
    ctx.issuer === 'self'
      ? {
          subjectDer: tbs.subjectDer,
          notBefore: tbs.notBefore,
          notAfter: tbs.notAfter,
          subjectKeyIdHex: tbs.decoded.subjectKeyId && hex(tbs.decoded.subjectKeyId),
        }
      : ctx.issuer;
  const findings: LintFinding[] = [];
  for (const rule of rulesFor(ctx.profile, ctx.ca)) {
    const message = rule.check(tbs, { ...ctx, issuer });
    if (message) findings.push({ rule: rule.name, source: rule.source, message });
  }
  return findings;
}

/**
 * Lints and refuses: CaError('config') naming every broken rule; the certificate is not
 * signed. Returns the decoded TBSCertificate it linted (the issuer checks its names on it
 * rather than decoding the same bytes again).
 */
export function assertLintClean(tbsDer: Uint8Array, ctx: LintContext): TbsView {
  const tbs = inspectTbs(tbsDer);
  const findings = lintView(tbs, ctx);
  if (!findings.length) return tbs;
  const list = findings.map((f) => `${f.rule} (${f.source}): ${f.message}`).join('; ');
  throw new CaError('config', `pre-issuance lint refused the certificate of profile "${ctx.profile.name}": ${list}`, {
    rule: `lint.${findings[0]!.rule}`,
    details: { findings },
  });
}
