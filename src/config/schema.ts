/**
 * The schema of the configuration file ($CERTFLOW_CONFIG or $CERTFLOW_HOME/config.json),
 * checked with zod before anything else reads the file: an unknown key (a typo), a value of
 * the wrong type or an impossible value stops the start with the JSON path of the mistake
 * and what is expected there (CaError 'config': exit code 2).
 *
 * Adding a section: write its schema below (z.strictObject, so that typos are caught; every
 * key optional, the defaults live where the section is turned into Config) and add it to
 * SECTIONS. Its TypeScript type comes with it: ConfigFile['<section>'].
 */
import { z } from 'zod';
import { CaError } from '../core/errors.ts';
import { EKU_OIDS, KEY_USAGES, LINT_SETS, SUBJECT_ATTRS } from './profiles.ts';
import { notificationsSchema } from './notifications.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const name = (what: string) =>
  z.string().regex(NAME, `${what} must start with a letter or digit and contain only letters, digits, ".", "_" or "-"`);
const seconds = z
  .int()
  .positive()
  .max(100 * 365 * 86_400);
const count = z.int().nonnegative();
const port = z.int().min(1).max(65535);
const httpsUrl = z.url({ protocol: /^https?$/ });
const curve = z.enum(['P-256', 'P-384', 'P-521']);
const eku = z.union([
  z.enum(Object.keys(EKU_OIDS) as [string, ...string[]]),
  z.string().regex(/^\d+(\.\d+)+$/, 'expected a usage name or a dotted OID'),
]);
const subjectAttr = z.enum(Object.keys(SUBJECT_ATTRS) as [string, ...string[]]);

const ca = z.strictObject({
  rootName: name('a CA name').optional(),
  rootSubject: z.string().min(3).optional(),
  rootValidityDays: z
    .int()
    .positive()
    .max(100 * 365)
    .optional(),
  issuingName: name('a CA name').optional(),
  issuingSubject: z.string().min(3).optional(),
  issuingValidityDays: z
    .int()
    .positive()
    .max(100 * 365)
    .optional(),
  /**
   * PEM files (relative paths: below $CERTFLOW_HOME) of the outside CAs that externally signed
   * or imported CAs may chain to (`certflow ca import-cert`, `ca import`).
   */
  trustAnchors: z.array(z.string().min(1)).optional(),
  /** A CA's expiry is reported this many days before its remaining validity falls below the longest profile it serves. */
  expiryWarningDays: z.int().nonnegative().max(3650).optional(),
});

/** Key types and sizes a certificate profile accepts: inline (`keys`) or a named key profile (`keyProfile`). */
const keysSchema = z.strictObject({
  rsa: z.strictObject({ minBits: z.int().min(1024).max(16384), maxBits: z.int().min(1024).max(16384) }).optional(),
  ec: z.strictObject({ curves: z.array(curve).min(1) }).optional(),
  ed25519: z.boolean().optional(),
  ed448: z.boolean().optional(),
});

/** A named key profile (managed like certificate profiles): the algorithms and sizes allowed. */
export const keyProfileSchema = keysSchema.extend({ name: name('a key profile name'), description: z.string().optional() });

/**
 * A named CRL profile, for the CAs that name it (`ca create --crl-profile`): a new complete
 * CRL every intervalSeconds, valid overlapSeconds longer (nextUpdate = thisUpdate +
 * interval + overlap), and delta CRLs (RFC 5280 5.2.4) every deltaIntervalSeconds if on.
 */
export const crlProfileSchema = z.strictObject({
  name: name('a CRL profile name'),
  description: z.string().optional(),
  intervalSeconds: z
    .int()
    .min(60)
    .max(365 * 86_400),
  overlapSeconds: z
    .int()
    .nonnegative()
    .max(365 * 86_400),
  deltaCrls: z.boolean().optional(),
  deltaIntervalSeconds: z
    .int()
    .min(60)
    .max(30 * 86_400)
    .optional(),
});

export const profileSchema = z.strictObject({
  name: name('a profile name'),
  extends: z.string().optional(),
  /** A named key profile (keyProfiles) instead of inline keys. */
  keyProfile: name('a key profile name').optional(),
  description: z.string().optional(),
  issuer: name('a CA name').optional(),
  validitySeconds: seconds.optional(),
  backdateSeconds: z.int().nonnegative().max(86_400).optional(),
  keyUsage: z.array(z.enum(KEY_USAGES)).optional(),
  rsaKeyEncipherment: z.boolean().optional(),
  extKeyUsage: z.array(eku).optional(),
  keys: keysSchema.optional(),
  san: z
    .strictObject({
      dns: z.boolean(),
      dnsWildcard: z.boolean(),
      ip: z.boolean(),
      email: z.boolean(),
      uri: z.boolean(),
      required: z.boolean(),
      max: count.max(1000),
    })
    .partial()
    .optional(),
  subject: z
    .strictObject({
      allowed: z.array(subjectAttr),
      required: z.array(subjectAttr),
      dropDisallowed: z.boolean(),
      cnFromFirstSan: z.boolean(),
      cnMustBeSan: z.boolean(),
    })
    .partial()
    .optional(),
  crlDistributionPoint: z.boolean().optional(),
  aia: z.strictObject({ caIssuers: z.boolean(), ocsp: z.boolean() }).partial().optional(),
  /** Pre-issuance lint set on top of RFC 5280 (src/ca/lint.ts). */
  lint: z.enum(LINT_SETS).optional(),
  policies: z.array(z.string().regex(/^\d+(\.\d+)+$/, 'expected a dotted OID')).optional(),
});

const revocation = z.strictObject({
  crlValiditySeconds: seconds.optional(),
  crlRefreshSeconds: seconds.optional(),
  ocspValiditySeconds: seconds.optional(),
  ocspRefreshSeconds: seconds.optional(),
});

/** Protocols a certificate may have been issued over (certificates.protocol). */
export const ISSUING_PROTOCOLS = ['est', 'cmp', 'acme', 'operator'] as const;
const issuingProtocols = z.array(z.enum(ISSUING_PROTOCOLS)).min(1);
const profileNames = z.array(z.string().min(1)).min(1);

const estLabel = z.strictObject({
  name: z.union([z.literal(''), name('an EST label')]),
  profile: z.string().optional(),
  caName: name('a CA name').optional(),
  requireApproval: z.boolean().optional(),
  allowCertAuth: z.boolean().optional(),
  serverKeygen: z.boolean().optional(),
  archiveServerKeys: z.boolean().optional(),
  /** Issuing CAs whose certificates authenticate TLS clients here (default: every issuing CA of this certflow). */
  clientCertCas: z.array(name('a CA name')).optional(),
  /** Profiles whose certificates authenticate simpleenroll/serverkeygen here without HTTP Basic (default: the label's profile). */
  clientCertProfiles: profileNames.optional(),
  /** Protocols those certificates may have been issued over (default: est, cmp, operator; ACME only when listed). */
  clientCertProtocols: issuingProtocols.optional(),
  /** EST labels whose certificates simplereenroll renews here (default: this label only). */
  reenrollLabels: z.array(z.union([z.literal(''), name('an EST label')])).optional(),
});

const est = z.strictObject({ labels: z.array(estLabel).optional() });

const acmeAlias = z.strictObject({
  name: z.union([z.literal(''), name('an ACME alias')]),
  profile: z.string().optional(),
  profiles: z.record(z.string(), z.string()).optional(),
  caName: name('a CA name').optional(),
  challengeTypes: z
    .array(z.enum(['http-01', 'dns-01', 'tls-alpn-01']))
    .min(1)
    .optional(),
  wildcard: z.boolean().optional(),
  ipIdentifiers: z.boolean().optional(),
  eabRequired: z.boolean().optional(),
  termsOfService: httpsUrl.optional(),
  website: httpsUrl.optional(),
  caaIdentities: z.array(z.string().min(1)).optional(),
  preAuthorization: z.boolean().optional(),
});

const acme = z.strictObject({
  orderLifetimeSeconds: seconds.optional(),
  pendingAuthzLifetimeSeconds: seconds.optional(),
  validAuthzLifetimeSeconds: seconds.optional(),
  nonceLifetimeSeconds: seconds.optional(),
  answerWaitSeconds: z.number().nonnegative().max(60).optional(),
  caaRecheckSeconds: z
    .int()
    .nonnegative()
    .max(30 * 86_400)
    .optional(),
  rateLimits: z
    .strictObject({
      newOrdersPerAccountPerHour: count,
      pendingAuthorizationsPerAccount: count,
      certificatesPerDomainPerWeek: count,
      failedValidationsPerAccountPerIdentifierPerHour: count,
      newAccountsPerAddressPerHour: count,
    })
    .partial()
    .optional(),
  aliases: z.array(acmeAlias).optional(),
});

const validation = z.strictObject({
  http01Port: port.optional(),
  tlsAlpn01Port: port.optional(),
  dnsResolver: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port')
    .optional(),
  allowLoopback: z.boolean().optional(),
  retryWindowSeconds: seconds.optional(),
  attemptTimeoutSeconds: z.int().positive().max(300).optional(),
});

const issuance = z.strictObject({
  /** First wait (seconds) before a request stalled by a server fault is signed again; doubles up to the max. */
  faultRetryInitialSeconds: z.int().positive().max(86_400).optional(),
  faultRetryMaxSeconds: z
    .int()
    .positive()
    .max(7 * 86_400)
    .optional(),
});

const positive = z.int().positive();

/** How long a request may make no progress in a state before it counts as stuck (src/db/repos/stuck.ts). */
const enrollmentBounds = z.strictObject({ pendingSeconds: seconds.optional(), signingSeconds: seconds.optional() });
const stuck = z.strictObject({
  acme: z.strictObject({ validatingSeconds: seconds.optional(), processingSeconds: seconds.optional() }).optional(),
  est: enrollmentBounds.optional(),
  cmp: enrollmentBounds.optional(),
  operator: enrollmentBounds.optional(),
});

const admin = z.strictObject({
  /** A console session ends after this long without a request (at least 60 s; CERTFLOW_ADMIN_IDLE_SECONDS wins). */
  idleSeconds: z
    .int()
    .min(60)
    .max(30 * 86_400)
    .optional(),
  maxSessionSeconds: z
    .int()
    .min(60)
    .max(30 * 86_400)
    .optional(),
});

const audit = z.strictObject({
  /** How often the worker signs a checkpoint (default 5 minutes). */
  checkpointMinutes: positive.max(24 * 60).optional(),
  /** The same in seconds (older setting; checkpointMinutes is preferred). */
  checkpointSeconds: positive.max(30 * 86_400).optional(),
});

const failureRule = z
  .strictObject({
    maxFailures: positive.max(100_000),
    windowSeconds: positive.max(7 * 86_400),
    lockSeconds: positive.max(7 * 86_400),
  })
  .partial();

/** Failed authentications (console login, EST Basic, CMP MAC): per client address, per console user name. */
const authFailures = z.strictObject({ perAddress: failureRule.optional(), perConsoleUser: failureRule.optional() });

const cmpAlias = z.strictObject({
  name: z.union([z.literal(''), name('a CMP alias')]),
  profile: z.string().optional(),
  caName: name('a CA name').optional(),
  protection: z
    .array(z.enum(['mac', 'signature']))
    .min(1)
    .optional(),
  implicitConfirm: z.boolean().optional(),
  requireApproval: z.boolean().optional(),
  kurRevokesOld: z.boolean().optional(),
  allowCertificateEnrollment: z.boolean().optional(),
  /** Profiles whose certificates sign ir/cr/p10cr here without a registration (default: the alias's profile). */
  clientCertProfiles: profileNames.optional(),
  /** Protocols those certificates may have been issued over (default: est, cmp, operator; ACME only when listed). */
  clientCertProtocols: issuingProtocols.optional(),
  /** CMP aliases whose certificates kur updates here (default: this alias only). */
  kurAliases: z.array(z.union([z.literal(''), name('a CMP alias')])).optional(),
  /** Certificates of these profiles are updated here too, whatever issued them (default: none). */
  kurProfiles: profileNames.optional(),
  confirmWaitSeconds: positive.max(7 * 86_400).optional(),
});

const cmp = z.strictObject({
  waitSeconds: positive.max(3600).optional(),
  confirmWaitSeconds: positive.max(7 * 86_400).optional(),
  pollIntervalSeconds: positive.max(3600).optional(),
  messageTimeToleranceSeconds: positive.max(86_400).optional(),
  /**
   * Upper bound on PBM / PBMAC1 iteration counts, the work one MAC-protected message buys.
   * At most 100 000: OpenSSL's own limit (OSSL_CRMF_PBM_MAX_ITERATION_COUNT, "if too large
   * allows DoS"); at least RFC 4211's minimum of 100.
   */
  maxIterations: z.int().min(100).max(100_000).optional(),
  aliases: z.array(cmpAlias).optional(),
});

/** Every section of the file. Add new sections here (see the comment at the top). */
export const SECTIONS = {
  ca: ca.optional(),
  profiles: z.array(profileSchema).optional(),
  keyProfiles: z.array(keyProfileSchema).optional(),
  crlProfiles: z.array(crlProfileSchema).optional(),
  defaultProfile: z.string().optional(),
  tlsNames: z.array(z.string().min(1)).optional(),
  revocation: revocation.optional(),
  est: est.optional(),
  acme: acme.optional(),
  validation: validation.optional(),
  issuance: issuance.optional(),
  stuck: stuck.optional(),
  admin: admin.optional(),
  audit: audit.optional(),
  authFailures: authFailures.optional(),
  cmp: cmp.optional(),
  notifications: notificationsSchema.optional(),
};

export const configFileSchema = z.strictObject(SECTIONS);

export type ConfigFile = z.infer<typeof configFileSchema>;

/** "est.labels[1].profile" */
export function jsonPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

/**
 * The parsed file, or CaError('config') listing every mistake with its JSON path, e.g.
 * `est.labels[0].allowCertAuth: expected boolean, received string`.
 */
export function parseConfigFile(value: unknown, file: string): ConfigFile {
  const r = configFileSchema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      return i.keys
        .map((k) => `${jsonPath([...i.path, k])}: unknown key (a typo? allowed here: ${allowedKeys(i.path).join(', ')})`)
        .join('\n  ');
    }
    return `${jsonPath(i.path)}: ${i.message.replace(/^Invalid input: /, '')}`;
  });
  throw new CaError('config', `configuration file ${file} is invalid:\n  ${problems.join('\n  ')}`, {
    rule: 'config.schema',
    details: { issues: r.error.issues.map((i) => ({ path: jsonPath(i.path), message: i.message })) },
  });
}

/** The keys the schema allows at `path` (for "unknown key" messages). */
function allowedKeys(path: ReadonlyArray<PropertyKey>): string[] {
  let schema: z.ZodType = configFileSchema;
  for (const p of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) schema = (schema.shape as Record<string, z.ZodType>)[String(p)] ?? schema;
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** A CA name the configuration file refers to, with its JSON path (for messages). */
export interface CaReference {
  path: string;
  name: string;
}

/**
 * Every CA name the file refers to: ACME aliases, EST labels (and the CAs whose client
 * certificates they accept), CMP aliases and profile issuers. CAs are created at run time
 * (`certflow ca create`), so whether they exist is checked against the database when a
 * server, worker or console starts (src/ra/ca-references.ts), not here.
 */
export function caReferencesOf(file: ConfigFile): CaReference[] {
  const refs: CaReference[] = [];
  const add = (path: string, name: string | undefined) => {
    if (name !== undefined) refs.push({ path, name });
  };
  file.acme?.aliases?.forEach((a, i) => add(`acme.aliases[${i}].caName`, a.caName));
  file.est?.labels?.forEach((l, i) => {
    add(`est.labels[${i}].caName`, l.caName);
    l.clientCertCas?.forEach((c, j) => add(`est.labels[${i}].clientCertCas[${j}]`, c));
  });
  file.cmp?.aliases?.forEach((a, i) => add(`cmp.aliases[${i}].caName`, a.caName));
  file.profiles?.forEach((p, i) => add(`profiles[${i}].issuer`, p.issuer));
  return refs;
}
