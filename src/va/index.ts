/**
 * The validation authority: ACME challenge validation (http-01, dns-01, tls-alpn-01) and
 * CAA checking, for the validation activities. Everything takes a VaContext (config, DNS
 * client, redirect ports): no module state, so tests inject their resolver and ports.
 */
import { checkCaa as checkOneCaa, type CaaDecision } from './caa.ts';
import { Deadline, type VaContext } from './context.ts';
import { validateDns01 } from './dns01.ts';
import { ValidationError } from './errors.ts';
import { validateHttp01 } from './http01.ts';
import type { Identifier } from './identifier.ts';
import { validateTlsAlpn01 } from './tlsalpn01.ts';

export { ValidationError, type ProblemType } from './errors.ts';
export { createVaContext, Deadline, type VaContext, type RedirectPorts } from './context.ts';
export { createDnsClient, type DnsClient, type CaaRecord } from './dns.ts';
export { addressRefusal, assertAddressAllowed } from './ssrf.ts';
export { validateHttp01 } from './http01.ts';
export { validateDns01, dns01TxtValue } from './dns01.ts';
export { validateTlsAlpn01 } from './tlsalpn01.ts';
export { evaluateCaa, findRelevantCaa, parseIssueValue, type CaaRequest, type CaaDecision } from './caa.ts';
export { reverseDnsName, type Identifier } from './identifier.ts';

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface ChallengeInput {
  type: ChallengeType;
  identifier: Identifier;
  wildcard: boolean;
  token: string;
  keyAuthorization: string;
}

export type ValidationRecord = Record<string, unknown>;

/** Validates one challenge; resolves with its validation record, throws ValidationError. */
export async function validateChallenge(ctx: VaContext, input: ChallengeInput): Promise<ValidationRecord[]> {
  checkKeyAuthorization(input);
  // RFC 8555 section 7.1.3: only dns-01 can prove control of a whole subtree.
  if ((input.wildcard || input.identifier.value.startsWith('*.')) && input.type !== 'dns-01') {
    throw ValidationError.final(
      'malformed',
      `${input.type} cannot validate the wildcard *.${input.identifier.value.replace(/^\*\./, '')}: only dns-01 can`,
    );
  }
  switch (input.type) {
    case 'http-01':
      return (await validateHttp01(ctx, input)).map((r) => ({ ...r }));
    case 'dns-01':
      return (await validateDns01(ctx, input)).map((r) => ({ ...r }));
    case 'tls-alpn-01':
      return (await validateTlsAlpn01(ctx, input)).map((r) => ({ ...r }));
    default:
      throw ValidationError.final('malformed', `unknown challenge type ${JSON.stringify((input as { type: unknown }).type)}`);
  }
}

/** RFC 8555 section 8.1: keyAuthorization = token || '.' || base64url(JWK thumbprint). */
function checkKeyAuthorization(input: ChallengeInput): void {
  const [token, thumbprint, ...rest] = input.keyAuthorization.split('.');
  if (token !== input.token || !thumbprint || rest.length || !/^[A-Za-z0-9_-]+$/.test(thumbprint)) {
    throw ValidationError.final(
      'malformed',
      `key authorization ${JSON.stringify(input.keyAuthorization)} is not "${input.token}.<thumbprint>"`,
    );
  }
}

export interface CaaCheckInput {
  identifiers: Array<{ type: 'dns' | 'ip'; value: string; wildcard: boolean; method: string }>;
  accountUri: string;
  caaIdentities: string[];
}

/** Parallel look-ups per call: an order may have many names, a resolver should not get them all at once. */
const CAA_CONCURRENCY = 8;

/**
 * CAA for every DNS identifier (IP identifiers have none), within one attempt timeout.
 * All identifiers are checked so the error names every refusal. The combined error is final
 * when any identifier is definitely refused (retrying cannot change that one), retryable
 * when all failures are transient.
 */
export async function checkCaaAll(ctx: VaContext, input: CaaCheckInput): Promise<CaaDecision[]> {
  const deadline = Deadline.seconds(ctx.config.attemptTimeoutSeconds);
  const names = input.identifiers.filter((i) => i.type === 'dns');
  const results = await mapLimited(names, CAA_CONCURRENCY, (id) =>
    checkOneCaa(
      ctx.dns,
      { domain: id.value, wildcard: id.wildcard, method: id.method, accountUri: input.accountUri, caaIdentities: input.caaIdentities },
      deadline,
    ),
  );
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (!failures.length) return results.map((r) => (r as PromiseFulfilledResult<CaaDecision>).value);
  const unexpected = failures.find((f) => !(f instanceof ValidationError));
  if (unexpected) throw unexpected;
  const errors = failures as ValidationError[];
  if (errors.length === 1) throw errors[0];
  const decisive = errors.find((e) => !e.retryable);
  const type = errors.find((e) => e.problemType === 'caa')?.problemType ?? errors[0].problemType;
  throw new ValidationError(type, errors.map((e) => e.detail).join('; '), { retryable: decisive === undefined });
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i]) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
