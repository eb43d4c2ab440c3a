/** ACME activity types and the domain types ACME workflows share (pure types: workflows import them with `import type`). */

export interface AcmeIdentifier {
  type: 'dns' | 'ip';
  value: string;
}

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface ChallengeSpec {
  id: string;
  type: ChallengeType;
  token: string;
}

/** An RFC 8555 problem document as stored with a challenge or order. */
export interface Problem {
  type: string;
  detail: string;
  status?: number;
  subproblems?: Array<{ type: string; detail: string; identifier?: AcmeIdentifier }>;
}

export type AuthzStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';

/** How an authorization is validated: what every workflow that validates one needs. */
export interface ValidationSettings {
  accountUri: string;
  caaIdentities: string[];
  /** Validation retry budget: transient failures are retried this many times in total. */
  maxAttempts: number;
  attemptTimeoutSeconds: number;
  /** How long a valid authorization stays valid. */
  validLifetimeSeconds: number;
}

/** An authorization as a workflow holds it. */
export interface AuthzState {
  id: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  /** 'processing' while one of its challenges is validated. */
  status: AuthzStatus | 'processing';
  /** The challenges a client may answer (empty for a reused, valid authorization). */
  challenges: ChallengeSpec[];
  /** ISO time it became valid (CAA is checked again at finalize when this is old). */
  validatedAt?: string;
  /** Challenge type that validated it (CAA validationmethods). */
  method?: string;
}

// ---- records (the front end inserts them) ----

export interface AuthzRecord {
  id: string;
  accountId: string;
  alias: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AuthzStatus;
  expiresAt: string;
  challenges: ChallengeSpec[];
}

export interface OrderRecord {
  id: string;
  accountId: string;
  alias: string;
  status: OrderStatus;
  identifiers: AcmeIdentifier[];
  authzIds: string[];
  expiresAt: string;
  profile: string;
  acmeProfile?: string;
  replaces?: string;
}

// ---- activities ----

export interface ValidateAuthzInput {
  /** The order whose workflow validates its own authorization (becomes ready with its last one). */
  orderId?: string;
  authzId: string;
  challenge: ChallengeSpec;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  accountUri: string;
  caaIdentities: string[];
  validLifetimeSeconds: number;
}

export interface ValidateAuthzResult {
  /** ISO times. */
  validatedAt: string;
  expiresAt: string;
  orderReady: boolean;
}

/**
 * Failure types of validateAuthz besides the ACME problem types of validation-types.ts:
 * the authorization is no longer pending (deactivated, expired) or the account is gone.
 * Non-retryable; `details[0]` is `{ authzStatus }` for AUTHZ_GONE.
 */
export const AUTHZ_GONE = 'authzGone';
export const ACCOUNT_GONE = 'accountGone';

export interface AcmeActivities {
  /**
   * One validation attempt (a regular activity; retried with backoff by its retry policy):
   * marks the challenge processing, validates it with the account's current key, checks
   * CAA, and records success in one transaction (challenge, authorization, and the order
   * ready when this was its last authorization). Idempotent: an attempt after a recorded
   * success returns it.
   */
  validateAuthz(input: ValidateAuthzInput): Promise<ValidateAuthzResult>;
  /** Records a failed validation: challenge, authorization and (when given) the order invalid. */
  failValidation(p: { orderId?: string; authzId: string; challengeId: string; error: Problem; orderError?: Problem }): Promise<void>;
  /** Deactivates an authorization; returns the open orders that used it (or why it was refused). */
  deactivateAuthz(p: { authzId: string }): Promise<{ deactivated: boolean; refused?: string; orderIds: string[] }>;
  /**
   * Projects the order's state into the read model. A change to invalid is audited
   * (acme.order.invalid) with `actor` as who caused it: an operator or console user who
   * canceled it, the account, or the system (expiry, refused CSR, server fault).
   */
  projectOrder(p: { id: string; status: OrderStatus; error?: Problem; serial?: string; actor?: string }): Promise<void>;
  projectAuthz(p: { id: string; status: AuthzStatus }): Promise<void>;
  /** The serial of the certificate issued for the order, if one was (after a signing fault). */
  issuedSerial(p: { orderId: string }): Promise<string | null>;
  /**
   * Which of these authorizations the read model has valid, with when and how: a validation
   * that committed in a local activity whose workflow task was then lost with its Update.
   */
  validAuthzs(p: { authzIds: string[] }): Promise<Array<{ id: string; validatedAt: string; method?: string }>>;
}
