/**
 * Which names a certificate for an ACME order may carry: exactly the order's identifiers
 * (RFC 8555 7.4), no name beyond them and none missing. The one home of that rule; it is
 * applied twice, as Boulder's RA and CA both do:
 *
 * - `csr`: the front end at finalize, on the CSR. The names a CSR asks for are its SANs
 *   together with its CN: RFC 8555 7.4 lets an identifier appear in either, so a CSR that
 *   names its identifier only in the CN (acme-tiny's `-subj /CN=name`) is fine, and the
 *   profile puts the name into the SANs.
 * - `certificate`: the signing activity, on the prepared TBSCertificate (the subject and
 *   SANs as the profile built them and as they will be signed), against the identifiers the
 *   order's authorizations proved — not what the CSR says. Here every name must also be a SAN.
 *
 * A subject with more than one CN is refused: which of them a relying party reads is
 * anybody's guess, and each one is a name. DNS names compare case-insensitively, IP
 * addresses in canonical form; only DNS and IP names are allowed.
 */
import { CaError } from '../core/errors.ts';
import type { RdnAttr } from './names.ts';
import { normalizeIp, type SanSet } from './san.ts';

export interface OrderIdentifier {
  type: 'dns' | 'ip';
  value: string;
}

/** The fields of a CSR (ParsedCsr) or TBSCertificate (TbsView: subject, decoded.sans) that carry names. */
export interface NamedSubject {
  subject: readonly RdnAttr[];
  sans: SanSet;
  /** SANs of kinds a SanSet cannot hold (otherName, directoryName, ...), described. */
  unsupportedSans?: readonly string[];
}

const CN = '2.5.4.3';

/** "dns:<lower-case name>" or "ip:<canonical address>". */
function nameOf(type: 'dns' | 'ip', value: string): string {
  return type === 'ip' ? `ip:${normalizeIp(value) ?? value}` : `dns:${value.toLowerCase()}`;
}

/** A CN is an IP address when it parses as one, a DNS name otherwise (anything else then matches no identifier). */
function cnName(value: string): string {
  return normalizeIp(value) !== undefined ? nameOf('ip', value) : nameOf('dns', value);
}

/**
 * Throws CaError('badCSR') naming the offending names unless `requested` names exactly the
 * `identifiers` (see the module comment for the two stages).
 */
export function checkOrderNames(requested: NamedSubject, identifiers: readonly OrderIdentifier[], stage: 'csr' | 'certificate'): void {
  const what = stage === 'csr' ? 'the CSR' : 'the certificate to be signed';
  const refuse = (rule: string, message: string, details: Record<string, unknown>): never => {
    throw new CaError('badCSR', `${what} ${message}`, { rule: `acme.names.${rule}`, details });
  };
  const others = [
    ...requested.sans.email.map((v) => `email:${v}`),
    ...requested.sans.uri.map((v) => `uri:${v}`),
    ...(requested.unsupportedSans ?? []),
  ];
  if (others.length) refuse('kind', `may only name DNS names and IP addresses, not ${others.join(', ')}`, { names: others });
  const cns = requested.subject.filter((a) => a.type === CN).map((a) => a.value);
  if (cns.length > 1) {
    refuse('cnCount', `has more than one common name (${cns.map((v) => `CN=${v}`).join(', ')}); at most one is allowed`, {
      names: cns.map(cnName),
    });
  }
  const sans = new Set([...requested.sans.dns.map((v) => nameOf('dns', v)), ...requested.sans.ip.map((v) => nameOf('ip', v))]);
  const names = new Set(sans);
  if (cns[0] !== undefined) names.add(cnName(cns[0]));
  const wanted = new Set(identifiers.map((i) => nameOf(i.type, i.value)));
  const extra = [...names].filter((n) => !wanted.has(n));
  if (extra.length) refuse('extra', `asks for names that are not in the order: ${extra.join(', ')}`, { names: extra });
  const missing = [...wanted].filter((n) => !names.has(n));
  if (missing.length) refuse('missing', `lacks names of the order: ${missing.join(', ')}`, { names: missing });
  const notSan = stage === 'certificate' ? [...wanted].filter((n) => !sans.has(n)) : [];
  if (notSan.length) refuse('notSan', `does not carry ${notSan.join(', ')} as a SAN`, { names: notSan });
}
