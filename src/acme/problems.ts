/**
 * ACME problem documents (RFC 8555 6.7, RFC 7807): the one place where ACME errors get
 * their type, HTTP status and extra headers, and where CaError kinds are mapped to them.
 * Handlers throw AcmeProblem (or CaError); the router renders the document.
 */
import { ERROR_CONTRACT, publicMessage, toCaError, type ErrorKind } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const URN_PREFIX = 'urn:ietf:params:acme:error:';

/**
 * Every problem type of RFC 8555 6.7 with its default status, plus alreadyReplaced (RFC 9773
 * ARI: the certificate named in "replaces" was replaced already) and invalidProfile
 * (draft-aaron-acme-profiles: the order names a profile the directory does not offer).
 */
export const PROBLEM_STATUS = {
  accountDoesNotExist: 400,
  alreadyReplaced: 409,
  alreadyRevoked: 400,
  badCSR: 400,
  badNonce: 400,
  badPublicKey: 400,
  badRevocationReason: 400,
  badSignatureAlgorithm: 400,
  caa: 403,
  compound: 400,
  connection: 400,
  dns: 400,
  externalAccountRequired: 400,
  incorrectResponse: 403,
  invalidContact: 400,
  invalidProfile: 400,
  malformed: 400,
  orderNotReady: 403,
  rateLimited: 429,
  rejectedIdentifier: 400,
  serverInternal: 500,
  tls: 400,
  unauthorized: 403,
  unsupportedContact: 400,
  unsupportedIdentifier: 400,
  userActionRequired: 403,
} as const satisfies Record<string, number>;

export type AcmeProblemType = keyof typeof PROBLEM_STATUS;

export interface AcmeIdentifier {
  type: string;
  value: string;
}

/** RFC 8555 6.7.1: one of several errors of a request, for the identifier it concerns. */
export interface Subproblem {
  type: AcmeProblemType;
  detail: string;
  identifier?: AcmeIdentifier;
}

/** The JSON document as sent (and as stored in a challenge's or an order's `error`). */
export interface ProblemDocument {
  type: string;
  detail: string;
  status: number;
  instance?: string;
  algorithms?: string[];
  subproblems?: Array<{ type: string; detail: string; identifier?: AcmeIdentifier }>;
}

export interface ProblemOptions {
  /** HTTP status other than the type's default (e.g. malformed 404, 405, 409, 413, 415). */
  status?: number;
  subproblems?: Subproblem[];
  /** Response headers that belong to the problem (Retry-After, Link, Location). */
  headers?: Record<string, string>;
  /** URL a human should visit (userActionRequired). */
  instance?: string;
  /** badSignatureAlgorithm: the algorithms the server accepts. */
  algorithms?: string[];
  cause?: unknown;
}

export class AcmeProblem extends Error {
  readonly type: AcmeProblemType;
  readonly status: number;
  readonly detail: string;
  readonly subproblems?: Subproblem[];
  readonly headers?: Record<string, string>;
  readonly instance?: string;
  readonly algorithms?: string[];

  constructor(type: AcmeProblemType, detail: string, opts: ProblemOptions = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AcmeProblem';
    this.type = type;
    this.status = opts.status ?? PROBLEM_STATUS[type];
    this.detail = detail;
    if (opts.subproblems?.length) this.subproblems = opts.subproblems;
    if (opts.headers) this.headers = opts.headers;
    if (opts.instance) this.instance = opts.instance;
    if (opts.algorithms) this.algorithms = opts.algorithms;
  }

  /** The problem document (RFC 7807 members plus ACME's `subproblems` and `algorithms`). */
  toJSON(): ProblemDocument {
    const doc: ProblemDocument = { type: problemUrn(this.type), detail: this.detail, status: this.status };
    if (this.instance) doc.instance = this.instance;
    if (this.algorithms) doc.algorithms = this.algorithms;
    if (this.subproblems) {
      doc.subproblems = this.subproblems.map((s) => ({
        type: problemUrn(s.type),
        detail: s.detail,
        ...(s.identifier ? { identifier: { type: s.identifier.type, value: s.identifier.value } } : {}),
      }));
    }
    return doc;
  }
}

function problemUrn(type: AcmeProblemType): string {
  return `${URN_PREFIX}${type}`;
}

/** The short type ("badNonce") of a problem URN, or undefined for a foreign type. */
export function problemTypeOf(urn: string): AcmeProblemType | undefined {
  if (!urn.startsWith(URN_PREFIX)) return undefined;
  const short = urn.slice(URN_PREFIX.length);
  return Object.hasOwn(PROBLEM_STATUS, short) ? (short as AcmeProblemType) : undefined;
}

export function problem(type: AcmeProblemType, detail: string, opts?: ProblemOptions): AcmeProblem {
  return new AcmeProblem(type, detail, opts);
}

export function subproblem(type: AcmeProblemType, detail: string, identifier?: AcmeIdentifier): Subproblem {
  return identifier ? { type, detail, identifier } : { type, detail };
}

/**
 * Several errors at once (RFC 8555 6.7.1). With one subproblem the client is better served
 * by that problem itself (with its identifier in the detail).
 */
export function compound(detail: string, subproblems: Subproblem[]): AcmeProblem {
  if (subproblems.length === 1) {
    const only = subproblems[0]!;
    const about = only.identifier ? `${only.identifier.type} identifier "${only.identifier.value}": ` : '';
    return new AcmeProblem(only.type, `${about}${only.detail}`, { subproblems });
  }
  return new AcmeProblem('compound', detail, { subproblems });
}

/** userActionRequired for terms of service that changed (RFC 8555 7.3.3). */
export function termsChanged(termsUrl: string): AcmeProblem {
  return new AcmeProblem(
    'userActionRequired',
    `the terms of service have changed: review ${termsUrl} and agree to them by updating the account with "termsOfServiceAgreed": true`,
    {
      instance: termsUrl,
      headers: { Link: `<${termsUrl}>;rel="terms-of-service"` },
    },
  );
}

export function badSignatureAlgorithm(detail: string, algorithms: readonly string[]): AcmeProblem {
  return new AcmeProblem('badSignatureAlgorithm', detail, { algorithms: [...algorithms] });
}

// ---- CaError -> problem ----------------------------------------------------------------

/**
 * The one mapping of CaError kinds to ACME problems: the error contract's ACME column
 * (src/core/errors.ts), checked here against RFC 8555's problem types.
 */
const KIND_TO_PROBLEM = Object.fromEntries(
  Object.entries(ERROR_CONTRACT).map(([kind, c]) => {
    if (!Object.hasOwn(PROBLEM_STATUS, c.acme.type))
      throw new Error(`error contract: ${kind} maps to unknown ACME problem type ${c.acme.type}`);
    return [kind, { type: c.acme.type as AcmeProblemType, status: c.acme.status }];
  }),
) as Record<ErrorKind, { type: AcmeProblemType; status: number }>;

/**
 * Refusals of the registration authority (src/ra: CaError rules) that have an ACME problem
 * type of their own, sent with that type's status (and Retry-After from
 * details.retryAfterSeconds).
 */
const RULE_TO_PROBLEM: Record<string, AcmeProblemType> = {
  'acme.rateLimited': 'rateLimited',
  'acme.alreadyReplaced': 'alreadyReplaced',
  'acme.orderNotReady': 'orderNotReady',
};

/**
 * Any error thrown while serving an ACME request, as a problem. Errors of dependencies (a
 * database or Temporal that does not answer) are 503 serverInternal with Retry-After; `log`
 * receives server faults (bugs with their stack) so that the response stays free of internals.
 */
export function problemFromError(e: unknown, log: Pick<Logger, 'error' | 'warn'>, context: Record<string, unknown> = {}): AcmeProblem {
  if (e instanceof AcmeProblem) {
    // 503: a dependency is late (a worker, Temporal); the client retries. Other 5xx are faults.
    if (e.status === 503) log.warn({ ...context, detail: e.detail }, 'ACME request could not be served now');
    else if (e.status >= 500) log.error({ ...context, err: e.cause ?? e }, 'ACME request failed');
    return e;
  }
  const err = toCaError(e);
  const ruleType = err.rule ? RULE_TO_PROBLEM[err.rule] : undefined;
  if (ruleType) {
    const retry = err.details?.retryAfterSeconds;
    return new AcmeProblem(ruleType, err.message, {
      ...(typeof retry === 'number' ? { headers: { 'Retry-After': String(retry) } } : {}),
      cause: err,
    });
  }
  const { type, status } = KIND_TO_PROBLEM[err.kind];
  const httpStatus = typeof err.details?.httpStatus === 'number' ? err.details.httpStatus : status;
  const retryAfter = ERROR_CONTRACT[err.kind].retryAfterSeconds;
  if (err.kind === 'internal') log.error({ ...context, err: err.cause ?? err }, 'ACME request failed');
  else if (httpStatus >= 500) log.warn({ ...context, kind: err.kind, detail: err.message }, 'ACME request could not be served now');
  return new AcmeProblem(type, publicMessage(err), {
    status: httpStatus,
    ...(retryAfter && httpStatus >= 500 ? { headers: { 'Retry-After': String(retryAfter) } } : {}),
    cause: err,
  });
}
