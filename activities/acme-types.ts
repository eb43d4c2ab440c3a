/** ACME workflow and activity types (pure types: workflows import them with `import type`). */

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

export interface AuthzInput {
  authzId: string;
  accountId: string;
  accountUri: string;
  /** RFC 7638 thumbprint of the account key (the key authorization's suffix). */
  thumbprint: string;
  alias: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  challenges: ChallengeSpec[];
  /** ISO time the pending authorization expires. */
  expiresAt: string;
  validLifetimeSeconds: number;
  caaIdentities: string[];
  /** Validation retry budget: transient failures are retried this many times in total. */
  maxAttempts: number;
  attemptTimeoutSeconds: number;
  /** Orders to tell about the outcome. */
  orderWorkflowIds: string[];
  /** Pre-authorization (new-authz): the authz workflow creates its own records. */
  createRecords: boolean;
}

export interface OrderAuthzRef {
  id: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AuthzStatus;
  /** Challenge type that validated it (for CAA validationmethods). */
  method?: string;
}

export interface OrderInput {
  orderId: string;
  accountId: string;
  accountUri: string;
  alias: string;
  identifiers: AcmeIdentifier[];
  /** All authorizations of the order, reused ones with their status. */
  authzs: OrderAuthzRef[];
  /** The authorizations this order creates (their workflows are started by the order). */
  newAuthzs: AuthzInput[];
  expiresAt: string;
  profile: string;
  acmeProfile?: string;
  caName?: string;
  /** Serial of the certificate this order replaces (ARI). */
  replacesSerial?: string;
  /** The ARI certID as the client sent it. */
  replaces?: string;
  caaIdentities: string[];
}

export interface AuthzChange {
  authzId: string;
  status: AuthzStatus;
  method?: string;
  error?: Problem;
}

// ---- storage (read-model projection) ----

export interface AuthzRecord {
  id: string;
  accountId: string;
  alias: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AuthzStatus;
  expiresAt: string;
  challenges: Array<ChallengeSpec & { status: string }>;
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

export interface AcmeStorageActivities {
  /** Inserts an order with the authorizations it creates (idempotent). */
  createOrderRecords(order: OrderRecord, authzs: AuthzRecord[]): Promise<void>;
  createAuthzRecords(authz: AuthzRecord): Promise<void>;
  projectOrder(p: { id: string; status: OrderStatus; error?: Problem; serial?: string }): Promise<void>;
  projectAuthz(p: { id: string; status: AuthzStatus; expiresAt?: string }): Promise<void>;
  projectChallenge(p: { id: string; status: 'pending' | 'processing' | 'valid' | 'invalid'; error?: Problem; validatedAt?: string }): Promise<void>;
}
