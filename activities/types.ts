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

export interface RequestProjection {
  id: string;
  protocol: Protocol;
  workflowId: string;
  profile: string;
  state: 'pending' | 'signing' | 'issued' | 'failed';
  csr: string;
  requester?: string;
  serial?: string;
  error?: string;
}

export interface StorageActivities {
  /** Projects an issuance request's state into Postgres (read model). */
  projectRequest(p: RequestProjection): Promise<void>;
}
