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
}

export interface IssuedCertificate {
  serial: string;
  caName: string;
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
