/**
 * Activity signatures as the workflows see them. Pure types: workflow code imports this
 * file only with `import type`, so no Node module reaches the workflow bundle.
 * Binary values cross the Temporal boundary as base64 strings (JSON payloads).
 */

export type Protocol = 'acme' | 'est' | 'cmp' | 'operator';

export interface IssueInput {
  /** Order / enrollment / operator request id: at most one certificate per id, ever. */
  requestId: string;
  protocol: Protocol;
  /** DER PKCS#10, base64. */
  csr: string;
  profile: string;
  /** Issuing CA name; undefined = the profile's issuer or the default issuing CA. */
  caName?: string;
  requester?: string;
  /** Serial (hex) of the certificate this one renews. */
  replaces?: string;
  /** What `csr` holds: a PKCS#10 request (default) or a CRMF CertReqMsg (CMP ir/cr/kur). */
  requestFormat?: 'pkcs10' | 'crmf';
  /**
   * An ACME order: its authorizations must still be valid when the TBS is stored (same
   * transaction, which also marks the order processing), and the order becomes valid in
   * the transaction that stores the certificate.
   */
  acme?: { orderId: string; authzIds: string[] };
  /**
   * An enrollment or CMP transaction signing in its first workflow task (issue 18): the
   * activity writes the request's projections itself instead of two local activities of
   * their own, `signing` when it stores the TBS and `final` in the transaction that stores
   * the certificate. The projection's other fields are the input's.
   */
  project?: IssueProjection;
}

/** What a projection needs beyond IssueInput's fields (see IssueInput.project). */
export interface IssueProjection {
  workflowId: string;
  label?: string;
  kind?: string;
  requestHash?: string;
  /** The state the request is in once its certificate is stored. */
  final: 'issued' | 'confirmed';
}

export interface IssuedCertificate {
  serial: string;
  caName: string;
  /**
   * The generation of the CA that signed it (its chain and root). Absent from results
   * recorded before it was added: readers fall back to the CA's active generation.
   */
  caGeneration?: number;
  /** Leaf certificate, PEM. */
  certPem: string;
  /** Issuing CA chain up to (not including) the root, PEM. */
  chainPem: string;
  notBefore: string;
  notAfter: string;
}

export interface SigningActivities {
  /**
   * Issues the certificate for a request. Idempotent: a retry returns the certificate
   * already issued for `requestId`, or re-signs the TBS persisted before a crash.
   * Policy violations fail with a non-retryable ApplicationFailure whose type is the
   * CaError kind (badCSR, badKey, policy, notFound).
   */
  issueCertificate(input: IssueInput): Promise<IssuedCertificate>;
}

export type RequestState =
  'pending' | 'awaiting-approval' | 'signing' | 'stalled' | 'issued' | 'failed' | 'rejected' | 'abandoned' | 'confirmed' | 'revoked';

export interface RequestProjection {
  id: string;
  protocol: Protocol;
  workflowId: string;
  profile: string;
  state: RequestState;
  csr: string;
  requester?: string;
  serial?: string;
  error?: string;
  label?: string;
  kind?: string;
  requestHash?: string;
  replaces?: string;
  decidedBy?: string;
  /** ISO time of the operator's decision. */
  decidedAt?: string;
}

export interface StorageActivities {
  /** Projects an issuance request's state into Postgres (read model). */
  projectRequest(p: RequestProjection): Promise<void>;
}

export type StatusAction = 'revoke' | 'hold' | 'release';

export interface StatusChangeInput {
  serial: string;
  action: StatusAction;
  /** RFC 5280 reason name for 'revoke' (default unspecified). */
  reason?: string;
  requester?: string;
  /** Front end that asked (search attribute CertflowProtocol); default operator. */
  protocol?: Protocol;
}

export interface StatusChangeResult {
  serial: string;
  status: 'valid' | 'revoked' | 'hold';
  reason: string | null;
  revokedAt: string | null;
  caName: string;
  crlNumber: string;
}

export interface RefreshInput {
  /** Make a new CRL even when the latest is still fresh. */
  force?: boolean;
  /** Only this CA (default: every issuing CA). */
  caName?: string;
  /** Who asked for the run (audit log); scheduled runs: "system". */
  requester?: string;
}

export interface RefreshResult {
  crls: Array<{ caName: string; crlNumber: string; entries: number }>;
  ocspSigned: number;
  /** More OCSP responses are due than one run signs: run again. */
  more: boolean;
}

export interface RevocationActivities {
  /** Revokes / holds / releases, then re-signs the certificate's OCSP responses and its CA's CRL. */
  changeCertificateStatus(input: StatusChangeInput): Promise<StatusChangeResult>;
  /** Renews CRLs that are due (or all with force) and OCSP responses that expire soon. */
  refreshRevocationData(input: RefreshInput): Promise<RefreshResult>;
}

export interface CheckpointInput {
  /** Who asked (`certflow audit checkpoint`); scheduled runs leave it out. */
  requester?: string;
}

export interface CheckpointResult {
  /** The entry signed (0: the log is empty). */
  seq: number;
  hash: string;
  keyId: string;
  /** false when that head was checkpointed already. */
  created: boolean;
  /** Expired certificates recorded (cert.expire) by this run. */
  expired: number;
}

export interface AuditActivities {
  /** Records certificate expiries, then signs the audit chain's head with the audit key. */
  signAuditCheckpoint(input: CheckpointInput): Promise<CheckpointResult>;
}

export interface KeyRecoveryInput {
  serial: string;
  requester: string;
  /** DER SubjectPublicKeyInfo (RSA, base64) of a one-time key of the console: the recovered key is encrypted to it. */
  recipientSpki: string;
}

/** The recovered PKCS#8, AES-256-GCM encrypted under a fresh key wrapped (RSA-OAEP-SHA256) to the recipient; base64. */
export interface RecoveredKey {
  serial: string;
  requestId: string;
  wrappedKey: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

export interface KeyRecoveryActivities {
  /** Decrypts the archived key of a certificate with the key-archive key and re-encrypts it to the recipient. */
  recoverKeyForRecipient(input: KeyRecoveryInput): Promise<RecoveredKey>;
}

// ---- notifications (activities/notifications.ts) ----

export type NotificationChannel = 'email' | 'webhook';

/** The failure type of a delivery that no retry can cure (the delivery workflow's retry policy stops on it). */
export const PERMANENT_FAILURE = 'NotificationRefused';

/** How a delivery's attempts are spaced (from the configuration; the workflow cannot read it). */
export interface DeliveryRetry {
  maxAttempts: number;
  initialSeconds: number;
  maxSeconds: number;
}

export interface SweepResult {
  /** Notices recorded by this sweep. */
  created: string[];
  /** Deliveries not made yet (this sweep's and any an earlier sweep left). */
  pending: string[];
  retry: DeliveryRetry;
}

export interface DeliveryOutcome {
  deliveryId: string;
  channel: NotificationChannel;
  target: string;
  status: 'delivered' | 'dead';
  /** What the receiver said, or why it failed. */
  detail: string;
}

/** One test notice through every target of a channel. */
export interface TestNoticeInput {
  channel: NotificationChannel;
  requester: string;
}

export interface NotificationActivities {
  collectNotices(): Promise<SweepResult>;
  deliverNotice(deliveryId: string): Promise<DeliveryOutcome>;
  deadLetter(deliveryId: string, error: string): Promise<DeliveryOutcome>;
  createTestNotice(input: TestNoticeInput): Promise<{ noticeId: string; deliveries: string[]; retry: DeliveryRetry }>;
}

// ---- CA lifecycle (issue 19) ------------------------------------------------------------

/** Name constraints of a new CA: typed strings ("dns:example.com", "ip:10.0.0.0/8", "email:…", "uri:…"). */
export interface NameConstraintsInput {
  permitted: string[];
  excluded: string[];
}

export interface CaCreateInput {
  name: string;
  /** The certflow CA that signs the new CA's certificate. */
  parent?: string;
  /** A self-signed root. */
  root?: boolean;
  /** Signed outside certflow: a PKCS#10 request is made, `ca import-cert` brings the certificate. */
  external?: boolean;
  /** DN text; default CN=<name>. */
  subject?: string;
  keyAlg?: string;
  validityDays?: number;
  pathLen?: number;
  nameConstraints?: NameConstraintsInput;
  /** Name of a managed CRL profile for the new CA. */
  crlProfile?: string;
  requester: string;
}

/** What a CA operation did, for the CLI, the API and the console. */
export interface CaOperationResult {
  name: string;
  generation: number;
  status: 'pending' | 'active' | 'revoked';
  subject: string;
  parent: string | null;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  /** The new generation's certificate (PEM). */
  certPem?: string;
  /** An external CA's request (PEM), to be signed outside certflow. */
  csrPem?: string;
  /** When the generation takes over issuance (rollover). */
  activateAt?: string;
  /** Root rollover link certificates (PEM). */
  newWithOldPem?: string;
  oldWithNewPem?: string;
  /** One line for humans. */
  message: string;
}

export interface CaImportInput {
  name: string;
  /** The CA certificate (PEM). */
  certPem: string;
  /** Certificates between it and a trust anchor (PEM), when the anchor did not sign it directly. */
  chainPem?: string;
  /**
   * Import of an existing CA: where its key is. Absent: the certificate of a pending CA
   * (`ca create --external` / an external rollover) whose key certflow made.
   */
  key?: { keyId: string } | { pkcs11Uri: string };
  requester: string;
}

export interface CaRolloverInput {
  name: string;
  /** ISO time at which issuance moves to the new key (default: at once). */
  activateAt?: string;
  keyAlg?: string;
  validityDays?: number;
  /** DN text of the new certificate; default: the current one's. */
  subject?: string;
  requester: string;
}

export interface CaRevokeInput {
  name: string;
  /** RFC 5280 reason; default cACompromise. */
  reason?: string;
  requester: string;
}

export interface CaKeyStep {
  name: string;
  generation: number;
  requester: string;
}

export interface CaFailureInput {
  operation: string;
  name: string;
  requester: string;
  error: string;
}

export interface CaExpiryWatchResult {
  /** CAs whose remaining validity is below what they must cover. */
  warnings: number;
  /** Entries written to the audit log by this run (one per CA generation and level, ever). */
  recorded: number;
}

export interface CaActivities {
  /** Validates a creation, reserves the name and makes (or finds) the new CA's key. */
  caPrepareCreate(input: CaCreateInput): Promise<CaKeyStep>;
  /** Makes (or finds) the key of a rollover's new generation. */
  caPrepareRollover(input: CaRolloverInput): Promise<CaKeyStep>;
  /** Has the parent (or the key itself, for a root) certify a generation; the TBS is stored first, so one certificate ever. */
  caCertify(input: CaKeyStep & { create?: CaCreateInput; rollover?: CaRolloverInput }): Promise<CaOperationResult>;
  /** The PKCS#10 request of an externally signed generation, signed by its key. */
  caMakeCsr(input: CaKeyStep & { subject?: string }): Promise<CaOperationResult>;
  /** Checks and stores a CA certificate: for a pending CA, or an existing CA with its key. */
  caImport(input: CaImportInput): Promise<CaOperationResult>;
  /** After a rollover's activation time: audit it and publish the new generation's first CRL. */
  caActivated(input: CaKeyStep): Promise<CaOperationResult>;
  /** Marks a CA and its certificates revoked (one transaction); then nothing signs for it. */
  caRevoke(input: CaRevokeInput): Promise<CaOperationResult>;
  /** The revoked CA's last CRL and OCSP responses, and its parent's CRL listing it. */
  caPublishRevocation(input: CaRevokeInput): Promise<CaOperationResult>;
  /** Records a CA operation that failed for good. */
  caRecordFailure(input: CaFailureInput): Promise<void>;
}

export interface CaWatchActivities {
  /** Records CAs about to expire (remaining validity below the longest profile they serve) in the audit log. */
  caExpiryWatch(): Promise<CaExpiryWatchResult>;
}
