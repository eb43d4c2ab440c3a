import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CaError } from '../core/errors.ts';
import { isKeyAlg, type KeyAlg } from '../keys/types.ts';
import type { CertProfile } from './profiles.ts';
import { buildProfileSet, entriesOf, type CrlProfile, type KeyProfile, type ProfileEntries } from './profile-set.ts';
import { caReferencesOf, parseConfigFile, type CaReference, type ConfigFile, type ISSUING_PROTOCOLS } from './schema.ts';
import { notificationsConfig, type NotificationsConfig } from './notifications.ts';

export type { NotificationsConfig, NoticeType } from './notifications.ts';
import { signingTaskQueue } from '../../workflows/api.ts';
import { processEnv, type Env } from './env.ts';

/** A protocol a certificate was issued over (certificates.protocol). */
export type IssuingProtocol = (typeof ISSUING_PROTOCOLS)[number];

/** Protocols whose certificates authenticate where nothing else is configured: never ACME's. */
const CLIENT_CERT_PROTOCOLS: IssuingProtocol[] = ['est', 'cmp', 'operator'];

export type { CertProfile } from './profiles.ts';

export interface CaConfig {
  /** Name of the root CA (used in /ca/<name>.crt, key ids, the CLI). */
  rootName: string;
  rootSubject: string;
  rootValidityDays: number;
  /** Name of the default issuing CA. */
  issuingName: string;
  issuingSubject: string;
  issuingValidityDays: number;
  keyAlg: KeyAlg;
  /** PEM files of outside trust anchors (absolute paths). */
  trustAnchors: string[];
  /** Lead time of the CA expiry watch, in days. */
  expiryWarningDays: number;
}

export interface Config {
  /** State directory ($CERTFLOW_HOME, default ./.certflow). */
  home: string;
  bind: string;
  httpsPort: number;
  httpPort: number;
  /** Base URL of the HTTP listener as clients reach it (CDP, AIA URLs in certificates). */
  publicHttpUrl: string;
  /** Base URL of the HTTPS listener as clients reach it (ACME directory, EST). */
  publicHttpsUrl: string;
  /** Names in the HTTPS listener's certificate besides localhost, 127.0.0.1 and ::1. */
  tlsNames: string[];
  /**
   * How often servers look at their own certificates (CERTFLOW_TLS_CHECK_SECONDS, default
   * 600): renew what is due, pick up what another server renewed, act on `certflow tls renew`.
   */
  tlsCheckSeconds: number;
  /** External Postgres (the runtime login: servers, workers, console, CLI); undefined = dev mode's embedded server. */
  databaseUrl?: string;
  /**
   * The same database as the owner login, which applies the migrations and owns the tables
   * (CERTFLOW_DATABASE_OWNER_URL). Undefined: the embedded server's own owner, or (with an
   * external DATABASE_URL) none — one login does both, see docs/operations.md "Database roles".
   */
  databaseOwnerUrl?: string;
  embeddedPostgresPort: number;
  temporal: {
    address: string;
    /** true when TEMPORAL_ADDRESS points to a cluster (dev mode then starts no dev server). */
    external: boolean;
    namespace: string;
    uiPort: number;
    taskQueue: string;
    signingTaskQueue: string;
    /** mTLS to the frontend (`certflow cluster`); undefined: plain gRPC (dev mode). */
    tls?: TemporalTlsFiles;
  };
  /** CERTFLOW_CMP_SECRETS_KEY: the key that encrypts CMP secrets and ACME EAB and nonce keys (else keys/cmp-secrets.key). */
  secretsKey?: string;
  keys: {
    backend: 'software' | 'pkcs11';
    passphrase?: string;
    pkcs11: { module?: string; tokenLabel?: string; pin?: string };
  };
  ca: CaConfig;
  /**
   * The effective certificate profiles: built-ins, the configuration file (the seed) and the
   * managed versions in the database (src/ra/profiles.ts keeps these maps current in
   * every process, without a restart).
   */
  profiles: Map<string, CertProfile>;
  keyProfiles: Map<string, KeyProfile>;
  crlProfiles: Map<string, CrlProfile>;
  /** The configuration file's profile entries, which managed versions override. */
  profileSeed: ProfileEntries;
  /** Profile used when a request names none. */
  defaultProfile: string;
  revocation: RevocationConfig;
  est: {
    labels: Map<string, EstLabel>;
    /** How long an enrollment request waits for its certificate before the answer is 202 + Retry-After. */
    waitSeconds: number;
  };
  acme: AcmeConfig;
  validation: ValidationConfig;
  issuance: IssuanceConfig;
  stuck: StuckBounds;
  admin: AdminConfig;
  audit: AuditConfig;
  /** Failed authentications allowed per client address (every front end) and per console user name. */
  authFailures: AuthFailureLimits;
  cmp: CmpConfig;
  notifications: NotificationsConfig;
  /** The CA names the configuration file refers to (checked against the CAs at start: src/ra/ca-references.ts). */
  caReferences: CaReference[];
  logLevel: string;
  /** The configuration file read ($CERTFLOW_CONFIG or $CERTFLOW_HOME/config.json; it may not exist). */
  configFile: string;
  /** CERTFLOW_CONFIG names the file (a restore then says where the restored one went). */
  configFileFromEnv: boolean;
  /** CERTFLOW_TRUST_PROXY=1: behind a reverse proxy, X-Forwarded-For/-Proto/-Host are trusted (client address, URLs). */
  trustProxy: boolean;
  /** CERTFLOW_BACKUP_PASSPHRASE: the backup passphrase when the command line gives none. */
  backupPassphrase?: string;
  /** Where `certflow cluster` builds and finds the Temporal server ($CERTFLOW_TEMPORAL_SERVER_DIR). */
  temporalServerDir: string;
  /** Tests: the worker writes every certificate, CRL and OCSP response it signs here ($CERTFLOW_ARTIFACTS_DIR). */
  artifactsDir?: string;
}

/**
 * The files of a TLS connection to Temporal: TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT,
 * TEMPORAL_TLS_KEY and TEMPORAL_TLS_SERVER_NAME (the names the Temporal UI server's image
 * reads too), or those of $CERTFLOW_HOME/temporal-tls/ when `certflow cluster` made them there.
 */
export interface TemporalTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  serverName: string;
}

/** Enrollment requests stalled by a server fault are signed again after these waits. */
export interface IssuanceConfig {
  faultRetryInitialSeconds: number;
  faultRetryMaxSeconds: number;
}

/**
 * How long a request may make no progress in a state before it counts as stuck; the one
 * definition of "stuck" (src/db/repos/stuck.ts) reads them. A request stalled by a server
 * fault is stuck at once; one that waits for a person or its client is never stuck.
 */
export interface StuckBounds {
  /** validating: a challenge validated past the retry window; processing: signing. */
  acme: { validatingSeconds: number; processingSeconds: number };
  est: EnrollmentBounds;
  cmp: EnrollmentBounds;
  operator: EnrollmentBounds;
}

/** pending: not yet taken up by a worker; signing: waiting for the signing activity. */
export interface EnrollmentBounds {
  pendingSeconds: number;
  signingSeconds: number;
}

/** The operator console's listener (a process of its own: `certflow admin`) and sessions. */
export interface AdminConfig {
  port: number;
  bind: string;
  /** A session ends after this long without a request. */
  idleSeconds: number;
  /** A session ends after this long, active or not. */
  maxSessionSeconds: number;
  /** Base URL of the Temporal Web UI, for links to workflows; undefined = none. */
  temporalUiUrl?: string;
  /**
   * The Temporal UI server the console serves at /temporal/ to logged-in users
   * (CERTFLOW_TEMPORAL_UI_PROXY, e.g. http://127.0.0.1:8233; `certflow cluster` sets it).
   * Links then point there. Undefined: no /temporal/ route.
   */
  temporalUiProxy?: string;
}

/** A limit of failed authentications for one key (address or user name). */
export interface FailureRule {
  /** Failed attempts, and attempts being checked right now, allowed per window. */
  maxFailures: number;
  windowSeconds: number;
  /** How long the key is refused once its failures reach maxFailures. */
  lockSeconds: number;
}

export interface AuthFailureLimits {
  /** Per client address (IPv6: per /64), counted separately by each front end: console login, EST Basic, CMP MAC. */
  perAddress: FailureRule;
  /** Per user name of the console login. */
  perConsoleUser: FailureRule;
}

export interface AuditConfig {
  /** How often the worker signs a checkpoint of the audit chain's head (audit.checkpointMinutes, default 5). */
  checkpointSeconds: number;
}

/** Message protection a CMP alias accepts: shared-secret MAC (PBM, PBMAC1) and/or signatures. */
export type CmpProtection = 'mac' | 'signature';

/**
 * A CMP alias: /.well-known/cmp ('' alias) or /.well-known/cmp/p/<name> (RFC 9811 3.3):
 * the issuing CA and profile it stands for, and how clients may use it.
 */
export interface CmpAlias {
  name: string;
  profile: string;
  /** Issuing CA; undefined = the profile's issuer or the default issuing CA. */
  caName?: string;
  /** Request protection accepted (responses are protected the same way). */
  protection: CmpProtection[];
  /** Grant implicit confirmation when the client asks for it (RFC 9483 4.1.1). */
  implicitConfirm: boolean;
  /** Certificate requests wait for `certflow approvals approve`; the client polls meanwhile. */
  requireApproval: boolean;
  /** kur: revoke the old certificate (superseded) once the new one is confirmed. */
  kurRevokesOld: boolean;
  /**
   * ir/cr/p10cr signed with a certificate of this CA that is not registered as a client are
   * accepted (for the certificate's own names only; default false).
   */
  allowCertificateEnrollment: boolean;
  /** Profiles whose (unregistered) certificates may sign ir/cr/p10cr here; default: the alias's profile. */
  clientCertProfiles: string[];
  /** Protocols those certificates may have been issued over; default est, cmp, operator (never ACME unless listed). */
  clientCertProtocols: IssuingProtocol[];
  /** CMP aliases whose certificates kur updates here; default: this alias. */
  kurAliases: string[];
  /** Certificates of these profiles are updated here too, whatever issued them; default none. */
  kurProfiles: string[];
  /** Overrides cmp.confirmWaitSeconds for this alias. */
  confirmWaitSeconds?: number;
}

export interface CmpConfig {
  aliases: Map<string, CmpAlias>;
  /** How long a request waits for its certificate before the answer is "waiting" (polling). */
  waitSeconds: number;
  /** How long an issued certificate waits for certConf before it is revoked. */
  confirmWaitSeconds: number;
  /** checkAfter of pollRep / the waiting answer. */
  pollIntervalSeconds: number;
  /** messageTime may differ from the server's clock by at most this much. */
  messageTimeToleranceSeconds: number;
  /**
   * Upper bound on PBM / PBKDF2 iteration counts: the work one MAC-protected message buys
   * (default 10 000; OpenSSL's client sends 500, its own limit is 100 000).
   */
  maxIterations: number;
}

/** One ACME directory: /acme/directory ('' alias) or /acme/<alias>/directory. */
export interface AcmeAlias {
  name: string;
  /** Certificate profile of orders that name no ACME profile. */
  profile: string;
  /** ACME profiles (draft-aaron-acme-profiles) offered: name -> certificate profile. */
  profiles: Record<string, string>;
  caName?: string;
  challengeTypes: Array<'http-01' | 'dns-01' | 'tls-alpn-01'>;
  wildcard: boolean;
  ipIdentifiers: boolean;
  eabRequired: boolean;
  termsOfService?: string;
  website?: string;
  caaIdentities: string[];
  preAuthorization: boolean;
}

export interface AcmeConfig {
  aliases: Map<string, AcmeAlias>;
  orderLifetimeSeconds: number;
  pendingAuthzLifetimeSeconds: number;
  validAuthzLifetimeSeconds: number;
  nonceLifetimeSeconds: number;
  /**
   * How long a challenge answer or a finalize waits for its outcome before the answer is
   * "processing" with Retry-After (0: never wait).
   */
  answerWaitSeconds: number;
  /** CAA is checked again at finalize for authorizations validated longer ago than this (RFC 8659 3). */
  caaRecheckSeconds: number;
  /** CERTFLOW_ACME_BASE_URL: ACME URLs from the request's Host header ('host') or from publicHttpsUrl ('public'). */
  baseUrlFrom: 'host' | 'public';
  rateLimits: {
    /** New orders and pre-authorizations (newAuthz) per account. */
    newOrdersPerAccountPerHour: number;
    /** Pending authorizations per account: new orders and pre-authorizations are refused at the limit. */
    pendingAuthorizationsPerAccount: number;
    /** Issued certificates (revoked ones too) per registered domain (Public Suffix List) or IP address. */
    certificatesPerDomainPerWeek: number;
    /** Failed validations per account and identifier: new orders, pre-authorizations and challenge answers for it are refused meanwhile. */
    failedValidationsPerAccountPerIdentifierPerHour: number;
    newAccountsPerAddressPerHour: number;
  };
}

/** Challenge validation (ACME) and CAA checks. */
export interface ValidationConfig {
  http01Port: number;
  tlsAlpn01Port: number;
  /** host:port of the DNS resolver; undefined = the system's. */
  dnsResolver?: string;
  allowLoopback: boolean;
  /** Transient failures (timeouts, refused connections) are retried for this long. */
  retryWindowSeconds: number;
  /** Timeout of one validation attempt. */
  attemptTimeoutSeconds: number;
}

/**
 * An EST label (/.well-known/est/<label>/...; '' is /.well-known/est/ itself): which
 * issuing CA and certificate profile it stands for, and how clients may use it.
 */
export interface EstLabel {
  name: string;
  profile: string;
  /** Issuing CA; undefined = the profile's issuer or the default issuing CA. */
  caName?: string;
  /** Enrollments wait for `certflow approvals approve` (202 + Retry-After meanwhile). */
  requireApproval: boolean;
  /**
   * simpleenroll and serverkeygen accept a TLS client certificate of this CA without HTTP
   * Basic (for the certificate's own subject and SANs only); simplereenroll accepts the
   * certificate alone (else a registered client must co-authenticate).
   */
  allowCertAuth: boolean;
  /** Profiles whose certificates authenticate simpleenroll/serverkeygen here; default: the label's profile. */
  clientCertProfiles: string[];
  /** Protocols those certificates may have been issued over; default est, cmp, operator (never ACME unless listed). */
  clientCertProtocols: IssuingProtocol[];
  /** EST labels whose certificates simplereenroll renews here; default: this label. */
  reenrollLabels: string[];
  /** /serverkeygen is offered. */
  serverKeygen: boolean;
  /**
   * /serverkeygen archives the generated private key, encrypted under the key-archive key
   * of the CA key store, for recovery with `certflow keys recover` (RFC 7030 4.4).
   */
  archiveServerKeys: boolean;
  /**
   * Issuing CAs whose certificates authenticate TLS clients at this label (simpleenroll
   * where allowCertAuth, simplereenroll); undefined = every issuing CA of this certflow.
   */
  clientCertCas?: string[];
}

/** How long CRLs and pre-signed OCSP responses are valid, and when they are renewed. */
export interface RevocationConfig {
  crlValiditySeconds: number;
  /** A new CRL is made when the latest is older than this (and at every revocation). */
  crlRefreshSeconds: number;
  ocspValiditySeconds: number;
  /** OCSP responses are re-signed when they expire within this. */
  ocspRefreshSeconds: number;
}

/** Where the console serves the Temporal UI (cluster mode), and the UI server's own public path. */
export const TEMPORAL_UI_PATH = '/temporal';

const DEFAULT_RETRY_WINDOW_SECONDS = 60;

function int(env: Env, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new CaError('config', `${name}=${v} is not a valid port/number`, { rule: `env.${name}` });
  }
  return n;
}

function readConfigFile(path: string): ConfigFile {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CaError('config', `cannot read configuration file ${path}: ${(e as Error).message}`, { cause: e, rule: 'config.json' });
  }
  return parseConfigFile(value, path);
}

/**
 * Loads the configuration from the environment (see shared CONTRACT) and the optional JSON
 * file at $CERTFLOW_CONFIG or $CERTFLOW_HOME/config.json.
 */
export function loadConfig(env: Env = processEnv()): Config {
  const home = resolve(env.CERTFLOW_HOME || '.certflow');
  const filePath = env.CERTFLOW_CONFIG || join(home, 'config.json');
  const file: ConfigFile = existsSync(filePath) ? readConfigFile(filePath) : {};

  const httpsPort = int(env, 'CERTFLOW_HTTPS_PORT', 8443);
  const httpPort = int(env, 'CERTFLOW_HTTP_PORT', 8080);
  const keyAlg = env.CERTFLOW_CA_KEY_ALG || 'ec-p256';
  if (!isKeyAlg(keyAlg)) {
    throw new CaError('config', `CERTFLOW_CA_KEY_ALG=${keyAlg} is not one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096`, {
      rule: 'env.CERTFLOW_CA_KEY_ALG',
    });
  }
  const backend = env.CERTFLOW_KEY_BACKEND || 'software';
  if (backend !== 'software' && backend !== 'pkcs11') {
    throw new CaError('config', `CERTFLOW_KEY_BACKEND=${backend} is not "software" or "pkcs11"`, { rule: 'env.CERTFLOW_KEY_BACKEND' });
  }
  const profileSeed = entriesOf(file);
  const { profiles, keyProfiles, crlProfiles } = buildProfileSet(profileSeed);
  const defaultProfile = file.defaultProfile ?? 'tls-server';
  if (!profiles.has(defaultProfile)) {
    throw new CaError('config', `defaultProfile: "${defaultProfile}" is not a configured profile`, { rule: 'defaultProfile' });
  }
  const ca: CaConfig = {
    rootName: 'certflow-root',
    rootSubject: 'CN=certflow Root CA,O=certflow',
    rootValidityDays: 20 * 365,
    issuingName: 'certflow-issuing',
    issuingSubject: 'CN=certflow Issuing CA 1,O=certflow',
    issuingValidityDays: 10 * 365,
    expiryWarningDays: 30,
    ...file.ca,
    trustAnchors: (file.ca?.trustAnchors ?? []).map((f) => resolve(home, f)),
    keyAlg,
  };
  for (const n of [ca.rootName, ca.issuingName]) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(n)) throw new CaError('config', `CA name "${n}" must be letters, digits, ".", "_" or "-"`);
  }
  const tlsNames = [...(file.tlsNames ?? []), ...(env.CERTFLOW_TLS_NAMES ?? '').split(/[\s,]+/).filter(Boolean)];
  return {
    home,
    bind: env.CERTFLOW_BIND || '0.0.0.0',
    httpsPort,
    httpPort,
    publicHttpUrl: (env.CERTFLOW_PUBLIC_HTTP_URL || `http://localhost:${httpPort}`).replace(/\/$/, ''),
    publicHttpsUrl: (env.CERTFLOW_PUBLIC_HTTPS_URL || `https://localhost:${httpsPort}`).replace(/\/$/, ''),
    tlsNames,
    tlsCheckSeconds: Math.max(1, int(env, 'CERTFLOW_TLS_CHECK_SECONDS', 600)),
    databaseUrl: env.DATABASE_URL || undefined,
    databaseOwnerUrl: ownerUrl(env),
    embeddedPostgresPort: int(env, 'CERTFLOW_POSTGRES_PORT', 5433),
    temporal: {
      // TEMPORAL_ADDRESS names an existing cluster; without it dev mode starts its own
      // dev server on 127.0.0.1:CERTFLOW_TEMPORAL_PORT (default 7233).
      address: env.TEMPORAL_ADDRESS || `127.0.0.1:${int(env, 'CERTFLOW_TEMPORAL_PORT', 7233)}`,
      external: Boolean(env.TEMPORAL_ADDRESS),
      namespace: env.TEMPORAL_NAMESPACE || 'default',
      uiPort: int(env, 'CERTFLOW_TEMPORAL_UI_PORT', 8233),
      // Overridable so that tests (and staged roll-outs) can run isolated workers on one
      // cluster; the signing queue derives from it (workflows/api.ts).
      taskQueue: env.CERTFLOW_TASK_QUEUE || 'certflow',
      signingTaskQueue: signingTaskQueue(env.CERTFLOW_TASK_QUEUE || 'certflow'),
      tls: temporalTls(env, home),
    },
    secretsKey: env.CERTFLOW_CMP_SECRETS_KEY || undefined,
    keys: {
      backend,
      passphrase: env.CERTFLOW_KEY_PASSPHRASE || undefined,
      pkcs11: {
        module: env.CERTFLOW_PKCS11_MODULE || undefined,
        tokenLabel: env.CERTFLOW_PKCS11_TOKEN_LABEL || undefined,
        pin: env.CERTFLOW_PKCS11_PIN || undefined,
      },
    },
    ca,
    profiles,
    keyProfiles,
    crlProfiles,
    profileSeed,
    defaultProfile,
    revocation: {
      crlValiditySeconds: 7 * 86_400,
      crlRefreshSeconds: 86_400,
      ocspValiditySeconds: 4 * 86_400,
      ocspRefreshSeconds: 2 * 86_400,
      ...file.revocation,
    },
    est: { labels: estLabels(file, profiles), waitSeconds: int(env, 'CERTFLOW_EST_WAIT_SECONDS', 30) },
    acme: { ...acmeConfig(file, profiles), baseUrlFrom: env.CERTFLOW_ACME_BASE_URL === 'public' ? 'public' : 'host' },
    validation: {
      http01Port: int(env, 'CERTFLOW_HTTP01_PORT', 80),
      tlsAlpn01Port: int(env, 'CERTFLOW_TLSALPN01_PORT', 443),
      dnsResolver: env.CERTFLOW_DNS_RESOLVER || undefined,
      allowLoopback: env.CERTFLOW_VALIDATION_ALLOW_LOOPBACK === '1',
      retryWindowSeconds: DEFAULT_RETRY_WINDOW_SECONDS,
      attemptTimeoutSeconds: 10,
      ...file.validation,
    },
    issuance: { faultRetryInitialSeconds: 30, faultRetryMaxSeconds: 900, ...file.issuance },
    stuck: stuckBounds(file),
    admin: adminConfig(env, file),
    audit: { checkpointSeconds: file.audit?.checkpointSeconds ?? (file.audit?.checkpointMinutes ?? 5) * 60 },
    authFailures: {
      perAddress: { maxFailures: 30, windowSeconds: 900, lockSeconds: 900, ...file.authFailures?.perAddress },
      perConsoleUser: { maxFailures: 5, windowSeconds: 900, lockSeconds: 900, ...file.authFailures?.perConsoleUser },
    },
    cmp: cmpConfig(file, profiles),
    notifications: notificationsConfig(file.notifications, profiles),
    caReferences: caReferencesOf(file),
    logLevel: env.CERTFLOW_LOG_LEVEL || 'info',
    configFile: filePath,
    configFileFromEnv: Boolean(env.CERTFLOW_CONFIG),
    trustProxy: env.CERTFLOW_TRUST_PROXY === '1',
    backupPassphrase: env.CERTFLOW_BACKUP_PASSPHRASE || undefined,
    temporalServerDir: env.CERTFLOW_TEMPORAL_SERVER_DIR || join(home, 'temporal-server'),
    artifactsDir: env.CERTFLOW_ARTIFACTS_DIR || undefined,
  };
}

/** Where `certflow cluster` keeps its Temporal mTLS files (made by src/ca/cluster-tls.ts). */
export const temporalTlsDir = (home: string) => join(home, 'temporal-tls');

/** The files of a cluster's Temporal mTLS, in one directory. */
export function clusterTlsFiles(dir: string) {
  return {
    dir,
    /** The cluster CA's certificate: the trust anchor of both sides. */
    ca: join(dir, 'ca.pem'),
    /** The Temporal server's certificate (frontend and internode; serverAuth + clientAuth) and key. */
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    /** certflow's processes' and the UI server's client certificate (clientAuth) and key. */
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
  };
}
export type ClusterTlsFiles = ReturnType<typeof clusterTlsFiles>;

/** How a client connects with a cluster's files. */
export function clusterClientTls(f: ClusterTlsFiles, serverName = TEMPORAL_TLS_SERVER_NAME): TemporalTlsFiles {
  return { caFile: f.ca, certFile: f.clientCert, keyFile: f.clientKey, serverName };
}

/** The name clients check the Temporal server's certificate for (always among the SANs the cluster CA gives it). */
export const TEMPORAL_TLS_SERVER_NAME = 'localhost';

function temporalTls(env: Env, home: string): TemporalTlsFiles | undefined {
  const serverName = env.TEMPORAL_TLS_SERVER_NAME || TEMPORAL_TLS_SERVER_NAME;
  if (env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY || env.TEMPORAL_TLS_CA) {
    const missing = ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'].filter((n) => !env[n]);
    if (missing.length) {
      throw new CaError('config', `TLS to Temporal needs ${missing.join(' and ')} too`, { rule: 'env.TEMPORAL_TLS' });
    }
    return { caFile: env.TEMPORAL_TLS_CA!, certFile: env.TEMPORAL_TLS_CERT!, keyFile: env.TEMPORAL_TLS_KEY!, serverName };
  }
  // The CLI on a cluster's machine finds the cluster's client certificate by itself — unless
  // a dev stack (`certflow start`, run/server.pid) runs on this home: its dev server is plain.
  const f = clusterTlsFiles(temporalTlsDir(home));
  if (!env.TEMPORAL_ADDRESS && existsSync(f.clientCert) && !existsSync(join(home, 'run', 'server.pid')))
    return clusterClientTls(f, serverName);
  return undefined;
}

/** CERTFLOW_DATABASE_OWNER_URL: only together with DATABASE_URL, and for the same database. */
function ownerUrl(env: Env): string | undefined {
  const owner = env.CERTFLOW_DATABASE_OWNER_URL || undefined;
  if (!owner) return undefined;
  const rule = { rule: 'env.CERTFLOW_DATABASE_OWNER_URL' };
  if (!env.DATABASE_URL)
    throw new CaError('config', 'CERTFLOW_DATABASE_OWNER_URL is set, but DATABASE_URL (the runtime login) is not', rule);
  const where = (url: string, name: string) => {
    try {
      const u = new URL(url);
      return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
    } catch {
      throw new CaError('config', `${name} is not a valid URL`, rule);
    }
  };
  if (where(owner, 'CERTFLOW_DATABASE_OWNER_URL') !== where(env.DATABASE_URL, 'DATABASE_URL')) {
    throw new CaError(
      'config',
      'CERTFLOW_DATABASE_OWNER_URL must name the same server and database as DATABASE_URL (only the login differs)',
      rule,
    );
  }
  return owner;
}

function stuckBounds(file: ConfigFile): StuckBounds {
  const enrollment = (b: Partial<EnrollmentBounds> | undefined): EnrollmentBounds => ({ pendingSeconds: 120, signingSeconds: 120, ...b });
  // A validation is retried for the retry window; its last attempt may take a minute more.
  const retryWindowSeconds = file.validation?.retryWindowSeconds ?? DEFAULT_RETRY_WINDOW_SECONDS;
  return {
    acme: { validatingSeconds: retryWindowSeconds + 60, processingSeconds: 120, ...file.stuck?.acme },
    est: enrollment(file.stuck?.est),
    cmp: enrollment(file.stuck?.cmp),
    operator: enrollment(file.stuck?.operator),
  };
}

function adminConfig(env: Env, file: ConfigFile): AdminConfig {
  const external = Boolean(env.TEMPORAL_ADDRESS);
  const uiPort = int(env, 'CERTFLOW_TEMPORAL_UI_PORT', 8233);
  const idleSeconds = int(env, 'CERTFLOW_ADMIN_IDLE_SECONDS', file.admin?.idleSeconds ?? 900);
  if (idleSeconds < 60)
    throw new CaError('config', `CERTFLOW_ADMIN_IDLE_SECONDS=${idleSeconds} is below 60`, { rule: 'env.CERTFLOW_ADMIN_IDLE_SECONDS' });
  const temporalUiProxy = env.CERTFLOW_TEMPORAL_UI_PROXY?.replace(/\/$/, '') || undefined;
  if (temporalUiProxy && !/^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(temporalUiProxy)) {
    // The UI server trusts whoever reaches it: it must listen on loopback only.
    throw new CaError('config', `CERTFLOW_TEMPORAL_UI_PROXY=${temporalUiProxy} must be http://<loopback address>:<port>`, {
      rule: 'env.CERTFLOW_TEMPORAL_UI_PROXY',
    });
  }
  const defaultUi = temporalUiProxy ? TEMPORAL_UI_PATH : external ? '' : `http://127.0.0.1:${uiPort}`;
  return {
    port: int(env, 'CERTFLOW_ADMIN_PORT', 8444),
    bind: env.CERTFLOW_ADMIN_BIND || '127.0.0.1',
    idleSeconds,
    maxSessionSeconds: file.admin?.maxSessionSeconds ?? 12 * 3600,
    temporalUiUrl: (env.CERTFLOW_TEMPORAL_UI_URL || defaultUi).replace(/\/$/, '') || undefined,
    temporalUiProxy,
  };
}

/** The default alias's settings; list-valued defaults that depend on the alias are filled in by cmpConfig. */
const DEFAULT_CMP_ALIAS: Omit<CmpAlias, 'clientCertProfiles' | 'kurAliases'> = {
  name: '',
  profile: 'device',
  protection: ['mac', 'signature'],
  implicitConfirm: true,
  requireApproval: false,
  kurRevokesOld: true,
  allowCertificateEnrollment: false,
  clientCertProtocols: CLIENT_CERT_PROTOCOLS,
  kurProfiles: [],
};

/** A configuration mistake in a cross-reference, with the JSON path of the entry. */
function badReference(path: string, message: string, rule: string): never {
  throw new CaError('config', `${path}: ${message}`, { rule });
}

/** Every profile named in `names` is configured. */
function checkProfiles(profiles: Map<string, CertProfile>, names: string[], path: string, rule: string): void {
  for (const p of names) if (!profiles.has(p)) badReference(path, `unknown profile "${p}"`, rule);
}

function cmpConfig(file: ConfigFile, profiles: Map<string, CertProfile>): CmpConfig {
  const { aliases: entries, ...rest } = file.cmp ?? {};
  const aliases = new Map<string, CmpAlias>([['', { ...DEFAULT_CMP_ALIAS, clientCertProfiles: ['device'], kurAliases: [''] }]]);
  for (const [i, entry] of (entries ?? []).entries()) {
    const path = `cmp.aliases[${i}]`;
    if (entry.name !== '' && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(entry.name)) {
      throw new CaError('config', `CMP alias "${entry.name}" must be letters, digits, ".", "_" or "-"`, { rule: 'cmp.alias' });
    }
    const merged = { ...DEFAULT_CMP_ALIAS, ...entry };
    const alias: CmpAlias = {
      ...merged,
      clientCertProfiles: merged.clientCertProfiles ?? [merged.profile],
      kurAliases: merged.kurAliases ?? [merged.name],
    };
    if (!profiles.has(alias.profile)) {
      throw new CaError('config', `CMP alias "${alias.name}" names unknown profile "${alias.profile}"`, { rule: 'cmp.alias.profile' });
    }
    if (!Array.isArray(alias.protection) || !alias.protection.length || alias.protection.some((p) => p !== 'mac' && p !== 'signature')) {
      throw new CaError('config', `CMP alias "${alias.name}": protection must be a non-empty list of "mac" and "signature"`, {
        rule: 'cmp.alias.protection',
      });
    }
    checkProfiles(profiles, alias.clientCertProfiles, `${path}.clientCertProfiles`, 'cmp.alias.clientCertProfiles');
    checkProfiles(profiles, alias.kurProfiles, `${path}.kurProfiles`, 'cmp.alias.kurProfiles');
    aliases.set(alias.name, alias);
  }
  for (const [i, entry] of (entries ?? []).entries()) {
    for (const a of entry.kurAliases ?? []) {
      if (!aliases.has(a)) badReference(`cmp.aliases[${i}].kurAliases`, `unknown CMP alias "${a}"`, 'cmp.alias.kurAliases');
    }
  }
  const cmp: CmpConfig = {
    aliases,
    waitSeconds: 30,
    confirmWaitSeconds: 300,
    pollIntervalSeconds: 10,
    messageTimeToleranceSeconds: 600,
    maxIterations: 10_000,
    ...rest,
  };
  for (const k of ['waitSeconds', 'confirmWaitSeconds', 'pollIntervalSeconds', 'messageTimeToleranceSeconds', 'maxIterations'] as const) {
    if (!Number.isInteger(cmp[k]) || cmp[k] < 1) throw new CaError('config', `cmp.${k} must be a positive integer`, { rule: `cmp.${k}` });
  }
  return cmp;
}

/** The default label's settings; list-valued defaults that depend on the label are filled in by estLabels. */
const DEFAULT_EST_LABEL: Omit<EstLabel, 'clientCertProfiles' | 'reenrollLabels'> = {
  name: '',
  profile: 'device',
  requireApproval: false,
  allowCertAuth: true,
  serverKeygen: true,
  archiveServerKeys: false,
  clientCertProtocols: CLIENT_CERT_PROTOCOLS,
};

function estLabels(file: ConfigFile, profiles: Map<string, CertProfile>): Map<string, EstLabel> {
  const labels = new Map<string, EstLabel>([['', { ...DEFAULT_EST_LABEL, clientCertProfiles: ['device'], reenrollLabels: [''] }]]);
  const entries = file.est?.labels ?? [];
  for (const [i, entry] of entries.entries()) {
    const merged = { ...DEFAULT_EST_LABEL, ...entry };
    const label: EstLabel = {
      ...merged,
      clientCertProfiles: merged.clientCertProfiles ?? [merged.profile],
      reenrollLabels: merged.reenrollLabels ?? [merged.name],
    };
    if (!profiles.has(label.profile)) {
      throw new CaError('config', `est.labels[${i}].profile: EST label "${label.name}" names unknown profile "${label.profile}"`, {
        rule: 'est.label.profile',
      });
    }
    checkProfiles(profiles, label.clientCertProfiles, `est.labels[${i}].clientCertProfiles`, 'est.label.clientCertProfiles');
    labels.set(label.name, label);
  }
  for (const [i, entry] of entries.entries()) {
    for (const l of entry.reenrollLabels ?? []) {
      if (!labels.has(l)) badReference(`est.labels[${i}].reenrollLabels`, `unknown EST label "${l}"`, 'est.label.reenrollLabels');
    }
  }
  return labels;
}

const DEFAULT_ACME_ALIAS: AcmeAlias = {
  name: '',
  profile: 'tls-server',
  profiles: { 'tls-server': 'tls-server' },
  challengeTypes: ['http-01', 'dns-01', 'tls-alpn-01'],
  wildcard: true,
  ipIdentifiers: true,
  eabRequired: false,
  caaIdentities: [],
  preAuthorization: true,
};

function acmeConfig(file: ConfigFile, profiles: Map<string, CertProfile>): Omit<AcmeConfig, 'baseUrlFrom'> {
  const { aliases: aliasEntries, rateLimits, ...rest } = file.acme ?? {};
  const aliases = new Map<string, AcmeAlias>([['', DEFAULT_ACME_ALIAS]]);
  for (const [i, entry] of (aliasEntries ?? []).entries()) {
    const alias: AcmeAlias = { ...DEFAULT_ACME_ALIAS, ...(aliases.get(entry.name) ?? {}), ...entry };
    for (const p of [alias.profile, ...Object.values(alias.profiles)]) {
      if (!profiles.has(p)) {
        throw new CaError('config', `acme.aliases[${i}]: ACME alias "${alias.name}" names unknown profile "${p}"`, {
          rule: 'acme.alias.profile',
        });
      }
    }
    aliases.set(alias.name, alias);
  }
  return {
    aliases,
    orderLifetimeSeconds: 3600,
    pendingAuthzLifetimeSeconds: 7 * 86_400,
    validAuthzLifetimeSeconds: 30 * 86_400,
    nonceLifetimeSeconds: 3600,
    answerWaitSeconds: 2,
    caaRecheckSeconds: 8 * 3600,
    ...rest,
    rateLimits: {
      newOrdersPerAccountPerHour: 300,
      pendingAuthorizationsPerAccount: 300,
      certificatesPerDomainPerWeek: 50,
      failedValidationsPerAccountPerIdentifierPerHour: 5,
      newAccountsPerAddressPerHour: 100,
      ...rateLimits,
    },
  };
}

export function getProfile(config: Config, name: string | undefined): CertProfile {
  const n = name ?? config.defaultProfile;
  const p = config.profiles.get(n);
  if (!p) {
    throw new CaError('notFound', `unknown certificate profile "${n}" (configured: ${[...config.profiles.keys()].join(', ')})`, {
      rule: 'profile.unknown',
    });
  }
  return p;
}

export const paths = (config: Pick<Config, 'home'>) => ({
  caDir: join(config.home, 'ca'),
  rootPem: join(config.home, 'ca', 'root.pem'),
  chainPem: join(config.home, 'ca', 'chain.pem'),
  keysDir: join(config.home, 'keys'),
  tlsDir: join(config.home, 'tls'),
  runDir: join(config.home, 'run'),
  logDir: join(config.home, 'logs'),
  pgData: join(config.home, 'postgres'),
  temporalDb: join(config.home, 'temporal.sqlite'),
  venv: join(config.home, 'venv'),
});
