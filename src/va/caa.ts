/**
 * CAA (RFC 8659) with the ACME parameters of RFC 8657: may this CA issue for a domain?
 *
 * The relevant RRset is the first non-empty CAA RRset found climbing from the domain
 * (for a wildcard, its base domain) towards the root, root excluded. In it:
 * - an unknown tag with the critical flag (128) forbids issuance (RFC 8659 section 4.1);
 * - a wildcard is governed by the issuewild properties when there are any, else by the
 *   issue properties; a non-wildcard by issue only (RFC 8659 section 4.3);
 * - no such property at all: any CA may issue; otherwise one of them must name one of the
 *   CA's caaIdentities, and its accounturi (when present) must be the ACME account's URL and
 *   its validationmethods (when present) must include the method used (RFC 8657).
 * DNS failures (SERVFAIL, timeout) are retryable 'dns' errors: RFC 8659 section 3 forbids
 * treating a failed look-up as "no CAA records". IP identifiers have no CAA.
 */
import type { DnsClient, CaaRecord } from './dns.ts';
import { normalizeName } from './dns.ts';
import { Deadline } from './context.ts';
import { quote, ValidationError } from './errors.ts';
import { isDnsName } from './identifier.ts';

/** Property tags certflow understands (or knowingly ignores): a critical one of these is fine. */
const KNOWN_TAGS = new Set(['issue', 'issuewild', 'iodef', 'issuemail', 'issuevmc', 'contactemail', 'contactphone']);
const CRITICAL = 128;

export interface CaaRequest {
  /** The DNS name; a leading "*." makes it a wildcard as well as `wildcard`. */
  domain: string;
  wildcard: boolean;
  /** The ACME challenge type that validated it ("http-01", "dns-01", "tls-alpn-01"). */
  method: string;
  accountUri: string;
  /** Issuer domain names of this CA (lower-case comparison). */
  caaIdentities: string[];
}

export interface RelevantCaa {
  /** The name the RRset was found at. */
  name: string;
  records: CaaRecord[];
}

export type CaaDecision =
  { allowed: true; relevant?: RelevantCaa; reason: string } | { allowed: false; relevant: RelevantCaa; reason: string };

/** An issue/issuewild value (RFC 8659 section 4.2): issuer-domain-name and parameters. */
export interface IssueValue {
  /** Lower-case; '' when the value names no issuer (";": nobody may issue). */
  issuer: string;
  /** Parameter tags lower-cased; values as written. */
  params: Map<string, string>;
}

/** Checks one domain; throws ValidationError 'caa' (final) when CAA forbids issuance. */
export async function checkCaa(dns: DnsClient, req: CaaRequest, deadline: Deadline): Promise<CaaDecision> {
  const wildcard = req.wildcard || req.domain.startsWith('*.');
  const domain = normalizeName(req.domain).replace(/^\*\./, '');
  if (!isDnsName(domain)) throw ValidationError.final('malformed', `CAA: ${quote(req.domain)} is not a DNS name`);
  const relevant = await findRelevantCaa(dns, domain, deadline);
  const decision = relevant ? evaluateCaa(relevant, { ...req, wildcard }) : ({ allowed: true, reason: 'no CAA records' } as const);
  if (!decision.allowed)
    throw ValidationError.final('caa', `CAA records for ${wildcard ? '*.' : ''}${domain} forbid issuance: ${decision.reason}`);
  return decision;
}

/** Climbs from `domain` to its top-level domain; the first non-empty CAA RRset, or undefined. */
export async function findRelevantCaa(dns: DnsClient, domain: string, deadline: Deadline): Promise<RelevantCaa | undefined> {
  const labels = domain.split('.');
  for (let i = 0; i < labels.length; i++) {
    const name = labels.slice(i).join('.');
    const records = await dns.resolveCaa(name, { timeoutMs: deadline.remainingMs() });
    if (records.length) return { name, records };
  }
  return undefined;
}

/** Applies the relevant RRset to the request (see the file comment); pure, for tests. */
export function evaluateCaa(relevant: RelevantCaa, req: CaaRequest): CaaDecision {
  const where = `at ${relevant.name}`;
  // Tags are case-insensitive (RFC 8659 section 4.1).
  const records = relevant.records.map((r) => ({ ...r, tag: r.tag.toLowerCase() }));
  const critical = records.find((r) => r.flags & CRITICAL && !KNOWN_TAGS.has(r.tag));
  if (critical) return { allowed: false, relevant, reason: `unknown critical property ${quote(critical.tag)} ${where}` };
  const issuewild = records.filter((r) => r.tag === 'issuewild');
  const tag = req.wildcard && issuewild.length ? 'issuewild' : 'issue';
  const props = records.filter((r) => r.tag === tag);
  if (!props.length) return { allowed: true, relevant, reason: `no ${tag} property ${where}` };
  const identities = new Set(req.caaIdentities.map((i) => normalizeName(i)));
  const refusals: string[] = [];
  for (const p of props) {
    const why = issueRefusal(p.value, identities, req);
    if (why === undefined) return { allowed: true, relevant, reason: `${tag} ${quote(p.value)} ${where}` };
    refusals.push(`${tag} ${quote(p.value)} (${why})`);
  }
  return { allowed: false, relevant, reason: `${refusals.join(', ')} ${where}` };
}

/** Why one issue/issuewild property does not authorize this request; undefined when it does. */
function issueRefusal(value: string, identities: Set<string>, req: CaaRequest): string | undefined {
  const parsed = parseIssueValue(value);
  if (!parsed) return 'malformed value';
  if (!parsed.issuer) return 'no CA may issue';
  if (!identities.has(parsed.issuer)) return `issuer is not ${[...identities].join(' or ') || 'this CA (no caaIdentities configured)'}`;
  const account = parsed.params.get('accounturi');
  if (account !== undefined && account !== req.accountUri) return `accounturi is not ${req.accountUri}`;
  const methods = parsed.params.get('validationmethods');
  if (
    methods !== undefined &&
    !methods
      .split(',')
      .map((m) => m.trim().toLowerCase())
      .includes(req.method.toLowerCase())
  ) {
    return `validationmethods does not include ${req.method}`;
  }
  return undefined;
}

const ISSUER = /^[a-z0-9](?:-*[a-z0-9])*(?:\.[a-z0-9](?:-*[a-z0-9])*)*$/i;
const PARAM = /^([a-z0-9](?:-*[a-z0-9])*)[ \t]*=[ \t]*([\x21-\x3a\x3c-\x7e]*)$/i;

/**
 * Parses an issue/issuewild value (RFC 8659 section 4.2):
 *   [issuer-domain-name] [";" [tag "=" value *(";" tag "=" value)]]
 * Undefined on a syntax error: such a property authorizes nobody.
 */
export function parseIssueValue(value: string): IssueValue | undefined {
  const [head, ...rest] = value.split(';');
  const issuer = head.trim();
  if (issuer && !ISSUER.test(issuer)) return undefined;
  const params = new Map<string, string>();
  const parts = rest.map((p) => p.trim());
  // "ca.test;" (a trailing empty parameter list) is allowed, empty parameters in between are not.
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  for (const part of parts) {
    const m = PARAM.exec(part);
    if (!m) return undefined;
    params.set(m[1].toLowerCase(), m[2]);
  }
  return { issuer: normalizeName(issuer), params };
}
