/**
 * Name constraints (RFC 5280 4.2.1.10) of a CA certificate: writing them, reading them
 * back, and checking the names of a certificate about to be issued against them (so a
 * constrained CA refuses a request instead of issuing a certificate relying parties reject).
 *
 * Constraints are written as typed strings, as SANs are elsewhere in certflow:
 *   dns:example.com      example.com and every name below it
 *   ip:10.0.0.0/8        an IPv4 or IPv6 network in CIDR form
 *   email:example.com    mailboxes at that host (".example.com": below it; "a@example.com": one mailbox)
 *   uri:example.com      URIs whose host is that host (".example.com": below it)
 */
import { CaError, type ErrorKind } from '../core/errors.ts';
import { derChildren, derElement, tlv } from './der.ts';
import { ipFromText, ipToText, type SanSet } from './san.ts';

export interface NameConstraints {
  permitted: string[];
  excluded: string[];
}

type Kind = 'dns' | 'ip' | 'email' | 'uri';
const TAGS: Record<Kind, number> = { email: 0x81, dns: 0x82, uri: 0x86, ip: 0x87 };

const DNS_LABELS = /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Checks and normalizes one constraint ("dns:Example.COM" -> "dns:example.com"). */
export function parseNameConstraint(text: string, kind: ErrorKind = 'malformed'): string {
  const m = /^(dns|ip|email|uri):(.+)$/.exec(text.trim());
  const bad = (why: string) => new CaError(kind, `name constraint "${text}": ${why}`, { rule: 'ca.nameConstraints' });
  if (!m) throw bad('write it as dns:<domain>, ip:<address>/<prefix>, email:<host or mailbox> or uri:<host>');
  const type = m[1] as Kind;
  const value = m[2]!.toLowerCase();
  if (type === 'ip') {
    const [addr, prefix, extra] = value.split('/');
    const bytes = addr ? ipFromText(addr) : undefined;
    const bits = Number(prefix);
    if (!bytes || extra !== undefined || !/^\d{1,3}$/.test(prefix ?? '') || bits > bytes.length * 8) {
      throw bad('expected an IP network in CIDR form, e.g. ip:10.0.0.0/8 or ip:2001:db8::/32');
    }
    return `ip:${ipToText(networkOf(bytes, bits))}/${bits}`;
  }
  const host = type === 'email' && value.includes('@') ? value.slice(value.indexOf('@') + 1) : value.replace(/^\./, '');
  if (!DNS_LABELS.test(host)) throw bad(`"${host}" is not a DNS name`);
  return `${type}:${value}`;
}

function networkOf(addr: Uint8Array, bits: number): Uint8Array {
  return addr.map((b, i) => b & maskByte(bits, i));
}

function maskByte(bits: number, i: number): number {
  const left = bits - i * 8;
  return left >= 8 ? 0xff : left <= 0 ? 0 : (0xff << (8 - left)) & 0xff;
}

function encodeSubtree(constraint: string): Uint8Array {
  const colon = constraint.indexOf(':');
  const type = constraint.slice(0, colon) as Kind;
  const value = constraint.slice(colon + 1);
  if (type === 'ip') {
    const [addr, prefix] = value.split('/');
    const bytes = ipFromText(addr!)!;
    const mask = bytes.map((_b, i) => maskByte(Number(prefix), i));
    return tlv(0x30, tlv(TAGS.ip, bytes, mask));
  }
  return tlv(0x30, tlv(TAGS[type], new Uint8Array(Buffer.from(value, 'latin1'))));
}

/** The extnValue of a nameConstraints extension. */
export function encodeNameConstraints(nc: NameConstraints): Uint8Array {
  const parts: Uint8Array[] = [];
  if (nc.permitted.length) parts.push(tlv(0xa0, ...nc.permitted.map(encodeSubtree)));
  if (nc.excluded.length) parts.push(tlv(0xa1, ...nc.excluded.map(encodeSubtree)));
  if (!parts.length) throw new CaError('internal', 'name constraints without a permitted or excluded subtree');
  return tlv(0x30, ...parts);
}

/** Reads a nameConstraints extension; subtrees of other name types are kept as "other:<tag>". */
export function decodeNameConstraints(value: Uint8Array, kind: ErrorKind = 'malformed'): NameConstraints {
  const what = 'the nameConstraints extension';
  const out: NameConstraints = { permitted: [], excluded: [] };
  for (const part of derChildren(derElement(value, what, kind, 0x30), what, kind)) {
    const list = part.tag === 0xa0 ? out.permitted : part.tag === 0xa1 ? out.excluded : undefined;
    if (!list) throw new CaError(kind, `${what} has an unknown field [${part.tag & 0x1f}]`);
    for (const subtree of derChildren(part, what, kind)) {
      const base = derChildren(subtree, what, kind)[0];
      if (!base) throw new CaError(kind, `${what} has an empty subtree`);
      const type = (Object.keys(TAGS) as Kind[]).find((k) => TAGS[k] === base.tag);
      if (type === 'ip' && (base.content.length === 8 || base.content.length === 32)) {
        const n = base.content.length / 2;
        const mask = base.content.subarray(n);
        const bits = mask.reduce((sum, b) => sum + popcount(b), 0);
        list.push(`ip:${ipToText(base.content.subarray(0, n))}/${bits}`);
      } else if (type && type !== 'ip') {
        list.push(`${type}:${Buffer.from(base.content).toString('latin1').toLowerCase()}`);
      } else {
        list.push(`other:${base.tag.toString(16)}`);
      }
    }
  }
  return out;
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x >>= 1) n += x & 1;
  return n;
}

function dnsMatches(name: string, constraint: string): boolean {
  const n = name.toLowerCase().replace(/^\*\./, 'x.');
  const c = constraint.replace(/^\./, '');
  return n === c || n.endsWith(`.${c}`);
}

function emailMatches(mailbox: string, constraint: string): boolean {
  const m = mailbox.toLowerCase();
  if (constraint.includes('@')) return m === constraint;
  const host = m.slice(m.lastIndexOf('@') + 1);
  return constraint.startsWith('.') ? host.endsWith(constraint) : host === constraint;
}

function uriMatches(uri: string, constraint: string): boolean {
  let host: string;
  try {
    host = new URL(uri).hostname.toLowerCase();
  } catch {
    return false;
  }
  return constraint.startsWith('.') ? host.endsWith(constraint) : host === constraint;
}

function ipMatches(ip: string, constraint: string): boolean {
  const [net, prefix] = constraint.split('/');
  const a = ipFromText(ip);
  const b = ipFromText(net!);
  if (!a || !b || a.length !== b.length) return false;
  return a.every((byte, i) => (byte & maskByte(Number(prefix), i)) === b[i]);
}

const MATCHERS: Record<Kind, (name: string, constraint: string) => boolean> = {
  dns: dnsMatches,
  ip: ipMatches,
  email: emailMatches,
  uri: uriMatches,
};

/**
 * The first name of `sans` the constraints do not allow (RFC 5280 4.2.1.10: an excluded
 * subtree always wins; where permitted subtrees of a name's type exist, it must be in one),
 * as "dns:host.other.test", or undefined when every name is allowed.
 */
export function nameConstraintViolation(nc: NameConstraints, sans: SanSet): string | undefined {
  for (const type of Object.keys(MATCHERS) as Kind[]) {
    const of = (list: string[]) => list.filter((c) => c.startsWith(`${type}:`)).map((c) => c.slice(type.length + 1));
    const permitted = of(nc.permitted);
    const excluded = of(nc.excluded);
    for (const name of sans[type]) {
      if (excluded.some((c) => MATCHERS[type](name, c))) return `${type}:${name}`;
      if (permitted.length && !permitted.some((c) => MATCHERS[type](name, c))) return `${type}:${name}`;
    }
  }
  return undefined;
}
