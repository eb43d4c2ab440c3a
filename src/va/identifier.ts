/** ACME identifiers as the VA uses them: checked, normalized, and turned into hosts and names. */
import { isIP } from 'node:net';
import { ipFromText, ipToText } from '../pki/index.ts';
import { ValidationError } from './errors.ts';

export interface Identifier {
  type: 'dns' | 'ip';
  value: string;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether `name` (lower-case, no trailing dot) is a host name: LDH labels, at most 253 characters. */
export function isDnsName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/**
 * The identifier in canonical form: a DNS name lower-cased, without a trailing dot and
 * without the "*." of a wildcard (its validation is the base domain's, RFC 8555 section
 * 7.1.3); an IP address in canonical text. Anything else is 'malformed' (final): the VA
 * must never put unchecked text into a URL, a DNS query or a TLS SNI.
 */
export function normalizeIdentifier(id: Identifier): Identifier {
  if (id.type === 'ip') {
    const bytes = ipFromText(id.value.trim());
    if (!bytes) throw ValidationError.final('malformed', `identifier ${JSON.stringify(id.value)} is not an IP address`);
    return { type: 'ip', value: ipToText(bytes) };
  }
  const name = id.value.trim().toLowerCase().replace(/\.$/, '').replace(/^\*\./, '');
  if (!isDnsName(name) || isIP(name)) throw ValidationError.final('malformed', `identifier ${JSON.stringify(id.value)} is not a DNS name`);
  return { type: 'dns', value: name };
}

/** A host as it appears in a URL or Host header: IPv6 addresses in brackets (RFC 3986, RFC 8738). */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** "127.0.0.1:80", "[::1]:80": an address and port for messages. */
export function hostPort(address: string, port: number): string {
  return `${urlHost(address)}:${port}`;
}

/**
 * The reverse-mapping name of an IP address (RFC 8738 section 6: the SNI of a tls-alpn-01
 * validation of an IP identifier): "4.3.2.1.in-addr.arpa", or the nibbles of an IPv6 address
 * reversed under "ip6.arpa".
 */
export function reverseDnsName(ip: string): string {
  const bytes = ipFromText(ip);
  if (!bytes) throw ValidationError.final('malformed', `${JSON.stringify(ip)} is not an IP address`);
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles = [...bytes].flatMap((b) => [(b >> 4).toString(16), (b & 0xf).toString(16)]);
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}
