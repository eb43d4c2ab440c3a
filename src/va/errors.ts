/**
 * The one error type of the validation authority. Its `problemType` is the ACME problem
 * type name (RFC 8555 section 6.7) the order/authorization workflows report to the client,
 * and `retryable` tells the activity whether Temporal may try again: a definite wrong answer
 * (wrong body, wrong TXT value, CAA refusal) is final, a transient failure (timeout,
 * refused connection, SERVFAIL) is retried within the configured retry window.
 */
export type ProblemType =
  | 'incorrectResponse' // a response came back, but not the one the challenge requires
  | 'unauthorized' // the challenge response is absent (HTTP 4xx, no TXT record)
  | 'dns' // a DNS query failed or has no usable answer
  | 'connection' // the VA could not connect or the exchange broke off
  | 'tls' // TLS handshake problem (tls-alpn-01, https redirects)
  | 'caa' // CAA records forbid issuance
  | 'rejectedIdentifier' // the identifier points to an address the VA must not contact
  | 'malformed'; // the request itself cannot be validated (e.g. dns-01 for an IP address)

export class ValidationError extends Error {
  readonly problemType: ProblemType;
  readonly retryable: boolean;
  /** Human-readable: what was fetched/queried and what came back. Same as `message`. */
  readonly detail: string;

  constructor(problemType: ProblemType, detail: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ValidationError';
    this.problemType = problemType;
    this.retryable = opts.retryable ?? false;
    this.detail = detail;
  }

  /** A definite answer: retrying cannot change it. */
  static final(problemType: ProblemType, detail: string, cause?: unknown): ValidationError {
    return new ValidationError(problemType, detail, { retryable: false, cause });
  }

  /** A transient failure: a later attempt may succeed. */
  static transient(problemType: ProblemType, detail: string, cause?: unknown): ValidationError {
    return new ValidationError(problemType, detail, { retryable: true, cause });
  }
}

/** JSON-quoted, shortened text for error messages: responses are attacker-controlled and may be long. */
export function quote(text: string, max = 100): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
