/**
 * The one error type of certflow, and the one contract of what each kind means from the
 * activity to the workflow to every protocol. Every layer throws CaError with a kind; each
 * front end (CLI, HTTP, ACME, EST, CMP) renders kinds in its own error format from the
 * table ERROR_CONTRACT below, so a kind means the same thing everywhere.
 *
 * Pure TypeScript without imports: workflow code imports it too.
 */
export type ErrorKind =
  | 'badCSR' // the request cannot be parsed or its signature does not verify
  | 'badKey' // the request's public key is not allowed (type, size, curve)
  | 'policy' // the request breaks a profile rule (SANs, subject, ...)
  | 'malformed' // input is syntactically wrong (not a CSR-specific problem)
  | 'notFound' // an object the request names (profile, CA, certificate, order) does not exist
  | 'conflict' // the object exists already / illegal state transition
  | 'unauthorized' // credentials missing or wrong
  | 'forbidden' // authenticated but not allowed
  | 'unavailable' // a dependency (Postgres, Temporal, HSM, a worker) does not answer; retry later
  | 'config' // the server's configuration or key material is wrong (unknown CA, missing CA key): an operator fixes it
  | 'internal'; // a bug: logged with its stack

export class CaError extends Error {
  readonly kind: ErrorKind;
  /** Machine-readable name of the rule that was broken (e.g. "san.ip", "key.rsa.minBits"). */
  readonly rule?: string;
  /** Extra structured information for logs and protocol errors. */
  readonly details?: Record<string, unknown>;

  constructor(kind: ErrorKind, message: string, opts: { rule?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
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

/**
 * The RFC 9810 PKIFailureInfo names the contract uses (bit numbers: FAILURE_BITS of
 * src/pki/cmp; src/cmp/errors.ts checks that each is one).
 */
export type CmpFailure = 'badCertTemplate' | 'badDataFormat' | 'badRequest' | 'notAuthorized' | 'systemUnavail' | 'systemFailure';

export interface KindContract {
  /**
   * requester: the request itself is wrong; the answer ends it (a workflow ends with it,
   * an activity fails non-retryably). server: the CA cannot serve it now; the request is
   * kept (a workflow stays open, visible with CertflowLastError) and retried, the client
   * gets a retryable answer.
   */
  fault: 'requester' | 'server';
  /** Seconds a client should wait before it asks again (server faults only). */
  retryAfterSeconds?: number;
  /** HTTP status of plain HTTP endpoints and of EST (RFC 7030 4.2.3). */
  http: number;
  /** ACME problem type (RFC 8555 6.7) and status. */
  acme: { type: string; status: number };
  /** CMP PKIFailureInfo bit (RFC 9810 5.2.3). */
  cmp: CmpFailure;
}

/**
 * The contract. Server faults answer 503 + Retry-After in every protocol (CMP: systemUnavail
 * or systemFailure), except `internal` (a bug), which is a 500: no protocol gets a 5xx for a
 * request mistake, and none gets a 4xx for a fault of the CA.
 */
export const ERROR_CONTRACT: Readonly<Record<ErrorKind, KindContract>> = {
  badCSR: { fault: 'requester', http: 400, acme: { type: 'badCSR', status: 400 }, cmp: 'badCertTemplate' },
  badKey: { fault: 'requester', http: 400, acme: { type: 'badCSR', status: 400 }, cmp: 'badCertTemplate' },
  policy: { fault: 'requester', http: 400, acme: { type: 'badCSR', status: 400 }, cmp: 'badCertTemplate' },
  malformed: { fault: 'requester', http: 400, acme: { type: 'malformed', status: 400 }, cmp: 'badDataFormat' },
  notFound: { fault: 'requester', http: 404, acme: { type: 'malformed', status: 404 }, cmp: 'badRequest' },
  // RFC 8555 has no "conflict" type; Boulder answers malformed with 409 as well.
  conflict: { fault: 'requester', http: 409, acme: { type: 'malformed', status: 409 }, cmp: 'badRequest' },
  unauthorized: { fault: 'requester', http: 401, acme: { type: 'unauthorized', status: 403 }, cmp: 'notAuthorized' },
  forbidden: { fault: 'requester', http: 403, acme: { type: 'unauthorized', status: 403 }, cmp: 'notAuthorized' },
  unavailable: { fault: 'server', retryAfterSeconds: 10, http: 503, acme: { type: 'serverInternal', status: 503 }, cmp: 'systemUnavail' },
  config: { fault: 'server', retryAfterSeconds: 60, http: 503, acme: { type: 'serverInternal', status: 503 }, cmp: 'systemFailure' },
  internal: { fault: 'server', http: 500, acme: { type: 'serverInternal', status: 500 }, cmp: 'systemFailure' },
};

/** Kinds that end a request: a mistake of the requester that retrying cannot fix. */
export const REQUEST_ENDING_KINDS: readonly ErrorKind[] = (Object.keys(ERROR_CONTRACT) as ErrorKind[]).filter(
  (k) => ERROR_CONTRACT[k].fault === 'requester',
);

/** Kinds of server faults: the request is kept and retried. */
export const SERVER_FAULT_KINDS: readonly ErrorKind[] = (Object.keys(ERROR_CONTRACT) as ErrorKind[]).filter(
  (k) => ERROR_CONTRACT[k].fault === 'server',
);

export function isErrorKind(s: unknown): s is ErrorKind {
  return typeof s === 'string' && Object.hasOwn(ERROR_CONTRACT, s);
}

export function isRequestEnding(kind: string | undefined): boolean {
  return isErrorKind(kind) && ERROR_CONTRACT[kind].fault === 'requester';
}

/** The HTTP status that fits each kind, for front ends whose protocol has no own mapping. */
export const HTTP_STATUS_BY_KIND: Record<ErrorKind, number> = Object.fromEntries(
  (Object.keys(ERROR_CONTRACT) as ErrorKind[]).map((k) => [k, ERROR_CONTRACT[k].http]),
) as Record<ErrorKind, number>;

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A server fault from the point of view of a request: a requester kind thrown by a layer
 * the request does not control (a key store that lost a key says notFound) becomes
 * `config`; server faults stay what they are.
 */
export function asServerFault(e: unknown, what: string): CaError {
  const err = toCaError(e);
  if (err.kind === 'unavailable' || err.kind === 'config' || err.kind === 'internal') return err;
  return new CaError('config', `${what}: ${err.message}`, { rule: err.rule, details: err.details, cause: e });
}

// ---- errors of dependencies -------------------------------------------------------------

/** Socket error codes of a dependency that is down, restarting or unreachable. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/**
 * SQLSTATE classes and codes that mean "the database cannot serve now": connection
 * exceptions (08), insufficient resources (53), operator intervention (57: shutdown,
 * statement timeout, cannot connect now), serialization failures and deadlocks (40001, 40P01).
 */
const SQLSTATE_UNAVAILABLE = /^(08|53|57)|^40001$|^40P01$/;
/** Messages of node-postgres for connections that died or never came up. */
const PG_CONNECTION_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Client was closed|connect ECONNREFUSED|Connection terminated due to connection timeout/i;
/** gRPC status codes (Temporal) that mean the service cannot answer now: CANCELLED, UNKNOWN (transport), DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const GRPC_UNAVAILABLE = new Set([1, 4, 8, 14]);

function field(e: unknown, name: string): unknown {
  return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
}

/**
 * What a dependency's error means for a request: 'unavailable' for a database, Temporal or
 * network that is down or too slow, undefined when the error is not one of those.
 * Duck-typed (node-postgres errors, Node socket errors, gRPC/Temporal service errors), so
 * that this module imports nothing.
 */
export function dependencyFault(e: unknown, depth = 0): CaError | undefined {
  if (depth > 6 || e === null || e === undefined) return undefined;
  if (e instanceof CaError) return e.kind === 'unavailable' ? e : undefined;
  if (e instanceof AggregateError) {
    for (const inner of e.errors) {
      const f = dependencyFault(inner, depth + 1);
      if (f) return f;
    }
  }
  const code = field(e, 'code');
  const message = errorMessage(e);
  const name = field(e, 'name');
  let what: string | undefined;
  let dependency = 'a backend service';
  if (typeof code === 'string' && SOCKET_CODES.has(code)) what = `connection failed (${code})`;
  else if (
    typeof code === 'string' &&
    /^[0-9A-Z]{5}$/.test(code) &&
    field(e, 'severity') !== undefined &&
    SQLSTATE_UNAVAILABLE.test(code)
  ) {
    what = `the database cannot serve now (SQLSTATE ${code}: ${message})`;
    dependency = 'the database';
  } else if (PG_CONNECTION_MESSAGES.test(message)) {
    what = `the database connection failed (${message})`;
    dependency = 'the database';
  } else if (
    typeof code === 'number' &&
    GRPC_UNAVAILABLE.has(code) &&
    (name === 'ServiceError' || typeof field(e, 'details') === 'string' || field(e, 'metadata') !== undefined)
  ) {
    what = `Temporal did not answer (${message})`;
    dependency = 'Temporal';
  }
  if (what) return new CaError('unavailable', what, { cause: e, details: { dependency } });
  return dependencyFault(field(e, 'cause'), depth + 1);
}

/**
 * What a client may be told about an error: requester mistakes as they are (they say what
 * to fix), server faults without internals (addresses, key ids, stack traces), which go to
 * the log instead.
 */
export function publicMessage(err: CaError): string {
  if (err.kind === 'internal') return 'internal error';
  const dependency = err.details?.dependency;
  if (typeof dependency === 'string') return `${dependency} of the CA is not available right now; try again later`;
  if (err.kind === 'config')
    return 'the CA cannot serve this request because of a problem in its configuration or key store; try again later';
  return err.message;
}

/**
 * Any error as a CaError of the contract: CaErrors as they are, failures of a dependency
 * (database, Temporal, network) as 'unavailable', everything else as 'internal' (a bug).
 */
export function toCaError(e: unknown): CaError {
  if (e instanceof CaError) return e;
  return dependencyFault(e) ?? new CaError('internal', 'internal error', { cause: e });
}
