/**
 * Validation activity signatures as the workflows see them. Pure types: workflow code
 * imports this file only with `import type`.
 *
 * Failures are ApplicationFailures whose `type` is the ACME problem type name
 * ('incorrectResponse', 'unauthorized', 'dns', 'connection', 'tls', 'caa',
 * 'rejectedIdentifier', 'malformed'; the workflow prefixes urn:ietf:params:acme:error:),
 * whose message is the human-readable detail, and which are non-retryable when the answer is
 * definite (wrong response, CAA refusal) and retryable when it is transient (timeout,
 * refused connection, SERVFAIL). One attempt takes at most attemptTimeoutSeconds.
 */

export type ValidationChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface ValidateChallengeInput {
  type: ValidationChallengeType;
  identifier: { type: 'dns' | 'ip'; value: string };
  /** The authorization is for *.<identifier.value> (dns-01 only). */
  wildcard: boolean;
  token: string;
  /** token || '.' || base64url(account key thumbprint) */
  keyAuthorization: string;
}

export interface ValidateChallengeResult {
  /**
   * What the VA did, per request: http-01 {url, hostname, port, addressesResolved,
   * addressUsed} per hop; dns-01 {hostname, txtName, cnames}; tls-alpn-01 {hostname, port,
   * serverName, addressesResolved, addressUsed}.
   */
  validationRecord: Array<Record<string, unknown>>;
}

export interface CheckCaaInput {
  /** IP identifiers are skipped (no CAA for IP addresses). */
  identifiers: Array<{ type: 'dns' | 'ip'; value: string; wildcard: boolean; method: string }>;
  /** The ACME account URL (RFC 8657 accounturi). */
  accountUri: string;
  /** Issuer domain names that stand for this CA in CAA issue/issuewild properties. */
  caaIdentities: string[];
}

export interface ValidationActivities {
  validateChallenge(input: ValidateChallengeInput): Promise<ValidateChallengeResult>;
  /** Resolves when CAA allows issuance for every identifier; fails with type 'caa' when not. */
  checkCaa(input: CheckCaaInput): Promise<void>;
}
