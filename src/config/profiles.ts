import { CaError } from '../core/errors.ts';
import { usagesFittingPurposes } from './key-usage.ts';

export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGES)[number];

/** Named extended key usages; any dotted OID is accepted as well. */
export const EKU_OIDS: Record<string, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  cmcCA: '1.3.6.1.5.5.7.3.27',
  cmcRA: '1.3.6.1.5.5.7.3.28',
};

/** Subject attributes a profile can let through, by short name. */
export const SUBJECT_ATTRS: Record<string, string> = {
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  emailAddress: '1.2.840.113549.1.9.1',
};

/**
 * Pre-issuance lint sets (src/ca/lint.ts): every certificate is checked against RFC 5280;
 * `cabf-serverauth` adds the CA/Browser Forum Baseline Requirements for profiles meant to
 * look like public TLS.
 */
export const LINT_SETS = ['rfc5280', 'cabf-serverauth'] as const;
export type LintSet = (typeof LINT_SETS)[number];

export interface CertProfile {
  name: string;
  description: string;
  /** Issuing CA name; undefined = the default issuing CA. */
  issuer?: string;
  /** Validity of issued certificates, in seconds. */
  validitySeconds: number;
  /** notBefore is set this many seconds in the past to absorb client clock skew. */
  backdateSeconds: number;
  keyUsage: KeyUsageName[];
  /**
   * For RSA keys only: keyEncipherment is added (TLS 1.2 RSA key exchange) where the
   * certificate's extended key usages permit it (serverAuth, emailProtection, or none).
   */
  rsaKeyEncipherment: boolean;
  /** Extended key usages, names from EKU_OIDS or dotted OIDs. Empty = no EKU extension. */
  extKeyUsage: string[];
  keys: {
    rsa?: { minBits: number; maxBits: number };
    /** Allowed named curves: 'P-256' | 'P-384' | 'P-521'. */
    ec?: { curves: string[] };
    ed25519?: boolean;
    ed448?: boolean;
  };
  san: {
    dns: boolean;
    /** dNSName may be a wildcard (*.example.com). */
    dnsWildcard: boolean;
    ip: boolean;
    email: boolean;
    uri: boolean;
    /** At least one SAN is required. */
    required: boolean;
    /** Upper bound on the number of SANs. */
    max: number;
  };
  subject: {
    /** Attributes copied from the CSR subject; anything else is rejected (or dropped, see below). */
    allowed: string[];
    /** Attributes the CSR must contain. */
    required: string[];
    /** true: disallowed attributes are dropped silently; false: the request is rejected. */
    dropDisallowed: boolean;
    /** When the subject has no CN, use the first DNS SAN as CN (ACME style). */
    cnFromFirstSan: boolean;
    /** The CN must also be a SAN (a CN that is a DNS name or IP address is added to the SANs). A subject has at most one CN. */
    cnMustBeSan: boolean;
  };
  /** Add a CRL distribution point pointing at the issuing CA's CRL. */
  crlDistributionPoint: boolean;
  aia: { caIssuers: boolean; ocsp: boolean };
  /** Lints on top of RFC 5280 (default: RFC 5280 only). */
  lint?: LintSet;
  /** certificatePolicies (OIDs); none = no extension. cabf-serverauth needs a CA/B Forum reserved one (2.23.140.1.2.x). */
  policies?: string[];
  /** The named key profile `keys` came from, if any. */
  keyProfile?: string;
}

const DAY = 86_400;

export const DEFAULT_PROFILES: CertProfile[] = [
  {
    name: 'tls-server',
    description: 'TLS server certificates (default for ACME): DNS and IP SANs, serverAuth',
    validitySeconds: 90 * DAY,
    backdateSeconds: 60,
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: true,
    extKeyUsage: ['serverAuth'],
    keys: { rsa: { minBits: 2048, maxBits: 8192 }, ec: { curves: ['P-256', 'P-384'] }, ed25519: true },
    san: { dns: true, dnsWildcard: true, ip: true, email: false, uri: false, required: true, max: 100 },
    subject: {
      allowed: ['CN'],
      required: [],
      dropDisallowed: true,
      cnFromFirstSan: true,
      cnMustBeSan: true,
    },
    crlDistributionPoint: true,
    aia: { caIssuers: true, ocsp: true },
  },
  {
    name: 'tls-client',
    description: 'TLS client certificates: clientAuth, DNS/email/URI SANs',
    validitySeconds: 365 * DAY,
    backdateSeconds: 60,
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: false,
    extKeyUsage: ['clientAuth'],
    keys: { rsa: { minBits: 2048, maxBits: 8192 }, ec: { curves: ['P-256', 'P-384'] }, ed25519: true },
    san: { dns: true, dnsWildcard: false, ip: false, email: true, uri: true, required: false, max: 20 },
    subject: {
      allowed: ['CN', 'O', 'OU', 'C', 'ST', 'L', 'emailAddress'],
      required: ['CN'],
      dropDisallowed: false,
      cnFromFirstSan: false,
      cnMustBeSan: false,
    },
    crlDistributionPoint: true,
    aia: { caIssuers: true, ocsp: true },
  },
  {
    name: 'device',
    description:
      'Device identity certificates (EST/CMP): clientAuth, and serverAuth for devices with a DNS or IP SAN; serial number in the subject',
    validitySeconds: 2 * 365 * DAY,
    backdateSeconds: 60,
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: true,
    extKeyUsage: ['clientAuth', 'serverAuth'],
    keys: { rsa: { minBits: 2048, maxBits: 4096 }, ec: { curves: ['P-256', 'P-384'] }, ed25519: true },
    san: { dns: true, dnsWildcard: false, ip: true, email: false, uri: true, required: false, max: 10 },
    subject: {
      allowed: ['CN', 'serialNumber', 'O', 'OU', 'C'],
      required: ['CN'],
      dropDisallowed: false,
      cnFromFirstSan: false,
      cnMustBeSan: false,
    },
    crlDistributionPoint: true,
    aia: { caIssuers: true, ocsp: true },
  },
  {
    name: 'cmp-signer',
    description: "The CMP server's own protection certificate (RFC 9483 3.1): digitalSignature, id-kp-cmcCA",
    validitySeconds: 365 * DAY,
    backdateSeconds: 60,
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: false,
    extKeyUsage: ['cmcCA'],
    keys: { ec: { curves: ['P-256', 'P-384'] } },
    san: { dns: true, dnsWildcard: false, ip: true, email: false, uri: false, required: false, max: 10 },
    subject: { allowed: ['CN', 'O'], required: ['CN'], dropDisallowed: false, cnFromFirstSan: false, cnMustBeSan: false },
    crlDistributionPoint: true,
    aia: { caIssuers: true, ocsp: true },
  },
];

/**
 * Validates a profile (from defaults merged with the configuration file) and returns it.
 * Every mistake names the profile and the field, so an operator can fix the file.
 */
export function validateProfile(p: CertProfile, where = 'profile'): CertProfile {
  const bad = (field: string, why: string): never => {
    throw new CaError('config', `${where}.${field}: profile "${p.name}": ${field} ${why}`, { rule: `profile.${field}` });
  };
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(p.name)) bad('name', 'must be letters, digits, ".", "_" or "-"');
  if (!(p.validitySeconds > 0)) bad('validitySeconds', 'must be positive');
  if (!(p.backdateSeconds >= 0)) bad('backdateSeconds', 'must not be negative');
  for (const ku of p.keyUsage) if (!(KEY_USAGES as readonly string[]).includes(ku)) bad('keyUsage', `has unknown usage "${ku}"`);
  for (const eku of p.extKeyUsage) {
    if (!(eku in EKU_OIDS) && !/^\d+(\.\d+)+$/.test(eku)) bad('extKeyUsage', `has unknown usage "${eku}"`);
  }
  if (!p.keys.rsa && !p.keys.ec && !p.keys.ed25519 && !p.keys.ed448) bad('keys', 'allow no key type');
  if (p.keys.rsa && (p.keys.rsa.minBits < 1024 || p.keys.rsa.maxBits < p.keys.rsa.minBits)) bad('keys.rsa', 'has an invalid size range');
  for (const c of p.keys.ec?.curves ?? []) if (!['P-256', 'P-384', 'P-521'].includes(c)) bad('keys.ec.curves', `has unknown curve "${c}"`);
  for (const a of [...p.subject.allowed, ...p.subject.required])
    if (!(a in SUBJECT_ATTRS)) bad('subject', `names unknown attribute "${a}"`);
  for (const a of p.subject.required) if (!p.subject.allowed.includes(a)) bad('subject.required', `"${a}" is required but not allowed`);
  if (!(p.san.max >= 0)) bad('san.max', 'must not be negative');
  for (const oid of p.policies ?? []) if (!/^\d+(\.\d+)+$/.test(oid)) bad('policies', `has "${oid}", which is not a dotted OID`);
  if (p.lint === 'cabf-serverauth') {
    if (!(p.policies ?? []).some((o) => /^2\.23\.140\.1\.2\.[123]$/.test(o)))
      bad('policies', 'must contain a CA/B Forum reserved policy (2.23.140.1.2.1, .2 or .3) where lint is cabf-serverauth');
    if (p.validitySeconds > 398 * 86_400) bad('validitySeconds', 'must be at most 398 days where lint is cabf-serverauth');
    if (!p.san.required || p.san.email || p.san.uri)
      bad('san', 'must require SANs and allow only DNS and IP where lint is cabf-serverauth');
  }
  // A TLS server certificate names its server in a DNS or IP SAN (RFC 6125, CA/B Forum BR
  // 7.1.2.7): serverAuth is only issued with one (see applyProfile), so a profile whose only
  // usage is serverAuth must allow and require them.
  const ekus = p.extKeyUsage.map((e) => EKU_OIDS[e] ?? e);
  // Key usage follows the purposes (RFC 5280 4.2.1.12); rsaKeyEncipherment is added only where they permit it.
  const fitting = usagesFittingPurposes(p.keyUsage, ekus);
  for (const ku of p.keyUsage.filter((u) => !fitting.includes(u)))
    bad('keyUsage', `has "${ku}", which none of the extended key usages (${p.extKeyUsage.join(', ')}) permits (RFC 5280 4.2.1.12)`);
  if (ekus.length === 1 && ekus[0] === EKU_OIDS.serverAuth) {
    if (!p.san.dns && !p.san.ip) bad('san', 'must allow DNS or IP SANs where serverAuth is the only extKeyUsage');
    if (!p.san.required)
      bad('san.required', 'must be true where serverAuth is the only extKeyUsage (a TLS server certificate needs a SAN)');
  }
  return p;
}
