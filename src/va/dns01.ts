/**
 * dns-01 (RFC 8555 section 8.4): a TXT record at _acme-challenge.<domain> must hold
 * base64url(SHA-256(key authorization)). For a wildcard the domain is the base domain
 * (RFC 8555 section 7.1.3: the authorization's identifier has no "*."). IP identifiers
 * cannot use dns-01 (RFC 8738 section 7).
 */
import { createHash } from 'node:crypto';
import { Deadline, type VaContext } from './context.ts';
import { quote, ValidationError } from './errors.ts';
import { normalizeIdentifier, type Identifier } from './identifier.ts';

export interface Dns01Input {
  identifier: Identifier;
  keyAuthorization: string;
}

export interface Dns01Record {
  hostname: string;
  /** The name queried. */
  txtName: string;
  /** CNAME targets followed from txtName ([] when none). */
  cnames: string[];
}

/** The TXT value dns-01 expects for a key authorization. */
export function dns01TxtValue(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization, 'utf8').digest('base64url');
}

export async function validateDns01(ctx: VaContext, input: Dns01Input): Promise<Dns01Record[]> {
  if (input.identifier.type !== 'dns') {
    throw ValidationError.final('malformed', `dns-01 cannot validate the IP address ${input.identifier.value} (RFC 8738 section 7)`);
  }
  const domain = normalizeIdentifier(input.identifier).value;
  const txtName = `_acme-challenge.${domain}`;
  const expected = dns01TxtValue(input.keyAuthorization);
  const deadline = Deadline.seconds(ctx.config.attemptTimeoutSeconds);
  const found = await ctx.dns.resolveTxtFollowingCname(txtName, { timeoutMs: deadline.remainingMs() });
  const via = found.cnames.length ? ` (via CNAME ${found.cnames.join(' -> ')})` : '';
  if (!found.records.length) throw ValidationError.final('unauthorized', `no TXT record at ${txtName}${via}`);
  if (!found.records.includes(expected)) {
    const got =
      found.records
        .slice(0, 5)
        .map((r) => quote(r))
        .join(', ') + (found.records.length > 5 ? `, ... (${found.records.length} records)` : '');
    throw ValidationError.final('incorrectResponse', `TXT records at ${txtName}${via}: expected ${quote(expected)}, got ${got}`);
  }
  return [{ hostname: domain, txtName, cnames: found.cnames }];
}
