/**
 * The one error type of certflow. Every layer throws CaError with a kind; each front end
 * (CLI, HTTP, ACME, EST, CMP) maps kinds to its own error format in one place.
 */
export type ErrorKind =
  | 'badCSR' // the request cannot be parsed or its signature does not verify
  | 'badKey' // the request's public key is not allowed (type, size, curve)
  | 'policy' // the request breaks a profile rule (SANs, subject, ...)
  | 'malformed' // input is syntactically wrong (not a CSR-specific problem)
  | 'notFound' // an object (profile, CA, certificate, order) does not exist
  | 'conflict' // the object exists already / illegal state transition
  | 'unauthorized' // credentials missing or wrong
  | 'forbidden' // authenticated but not allowed
  | 'unavailable' // a dependency (Postgres, Temporal, HSM) does not answer; retry later
  | 'config' // configuration is invalid
  | 'internal'; // a bug: logged with its stack

export class CaError extends Error {
  readonly kind: ErrorKind;
  /** Machine-readable name of the rule that was broken (e.g. "san.ip", "key.rsa.minBits"). */
  readonly rule?: string;
  /** Extra structured information for logs and protocol errors. */
  readonly details?: Record<string, unknown>;

  constructor(
    kind: ErrorKind,
    message: string,
    opts: { rule?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CaError';
    this.kind = kind;
    this.rule = opts.rule;
    this.details = opts.details;
  }

  static is(e: unknown, kind?: ErrorKind): e is CaError {
    return e instanceof CaError && (kind === undefined || e.kind === kind);
  }
}

/** Kinds that describe a mistake of the requester: retrying the same request cannot help. */
export const CLIENT_ERROR_KINDS: ReadonlySet<ErrorKind> = new Set([
  'badCSR',
  'badKey',
  'policy',
  'malformed',
  'notFound',
  'conflict',
  'unauthorized',
  'forbidden',
  'config',
]);

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The HTTP status that fits each kind, for front ends whose protocol has no own mapping. */
export const HTTP_STATUS_BY_KIND: Record<ErrorKind, number> = {
  badCSR: 400,
  badKey: 400,
  policy: 400,
  malformed: 400,
  notFound: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  config: 500,
  internal: 500,
};
