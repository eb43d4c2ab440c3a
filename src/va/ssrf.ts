/**
 * The VA's address guard. A challenge makes the CA connect wherever the applicant's DNS
 * (or redirect) points, so every address is checked before the VA connects to it: on the
 * resolved address, never the name (a name can resolve to anything, and again differently
 * at connect time, so the VA connects to exactly the address it checked).
 *
 * Refused, always: unspecified/"this network" (0.0.0.0/8, ::), link-local (169.254/16,
 * fe80::/10), cloud metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200,
 * 168.63.129.16), multicast, IPv4 reserved/broadcast (240/4) and the deprecated
 * IPv4-compatible IPv6 block (::/96). IPv4 addresses embedded in IPv6 (::ffff:0:0/96
 * mapped, 64:ff9b::/96 NAT64) are checked as the IPv4 address they reach.
 *
 * Refused unless config.allowLoopback: loopback (127/8, ::1), i.e. the CA's own services.
 *
 * Allowed: private ranges (RFC 1918 10/8, 172.16/12, 192.168/16; CGNAT 100.64/10; IPv6
 * ULA fc00::/7). certflow is mostly an internal CA whose job is to validate internal hosts;
 * refusing private addresses would make it useless there. Deployments that must not reach
 * internal networks from the VA should run it behind an egress firewall.
 */
import { ipFromText, ipToText } from '../pki/index.ts';
import { ValidationError, type ProblemType } from './errors.ts';

export interface AddressPolicy {
  allowLoopback: boolean;
}

interface Rule {
  net: Uint8Array;
  prefix: number;
  /** What the range is, for messages: "a loopback address". */
  what: string;
  loopback?: boolean;
  /** The range embeds an IPv4 address in its last 32 bits: check that one instead. */
  embedsIpv4?: boolean;
}

function rule(cidr: string, what: string, extra: Partial<Rule> = {}): Rule {
  const [addr, len] = cidr.split('/');
  const net = ipFromText(addr);
  if (!net) throw new Error(`bad CIDR ${cidr}`);
  return { net, prefix: Number(len), what, ...extra };
}

// First match wins: the specific metadata addresses come before the ranges containing them.
const RULES: Rule[] = [
  rule('169.254.169.254/32', 'a cloud metadata address'),
  rule('100.100.100.200/32', 'a cloud metadata address'),
  rule('168.63.129.16/32', 'a cloud metadata address'),
  rule('0.0.0.0/8', 'an unspecified ("this network") address'),
  rule('127.0.0.0/8', 'a loopback address', { loopback: true }),
  rule('169.254.0.0/16', 'a link-local address'),
  rule('224.0.0.0/4', 'a multicast address'),
  rule('240.0.0.0/4', 'a reserved or broadcast address'),
  rule('fd00:ec2::254/128', 'a cloud metadata address'),
  rule('::/128', 'the unspecified address'),
  rule('::1/128', 'a loopback address', { loopback: true }),
  rule('::ffff:0:0/96', 'an IPv4-mapped address', { embedsIpv4: true }),
  rule('64:ff9b::/96', 'a NAT64 address', { embedsIpv4: true }),
  rule('::/96', 'an IPv4-compatible (deprecated) address'),
  rule('fe80::/10', 'a link-local address'),
  rule('ff00::/8', 'a multicast address'),
];

function inPrefix(addr: Uint8Array, r: Rule): boolean {
  if (addr.length !== r.net.length) return false;
  const full = Math.floor(r.prefix / 8);
  for (let i = 0; i < full; i++) if (addr[i] !== r.net[i]) return false;
  const bits = r.prefix % 8;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (addr[full] & mask) === (r.net[full] & mask);
}

/**
 * Why the VA must not connect to `address`, or undefined when it may.
 * Text that is not an IP address (or carries an IPv6 zone id) is refused too.
 */
export function addressRefusal(address: string, policy: AddressPolicy): string | undefined {
  const bytes = ipFromText(address);
  if (!bytes) return 'not an IP address';
  return refusalOf(bytes, policy);
}

function refusalOf(bytes: Uint8Array, policy: AddressPolicy): string | undefined {
  const r = RULES.find((x) => inPrefix(bytes, x));
  if (!r) return undefined;
  if (r.embedsIpv4) {
    const inner = refusalOf(bytes.slice(12), policy);
    return inner && `${r.what} of ${ipToText(bytes.slice(12))}, ${inner}`;
  }
  if (r.loopback && policy.allowLoopback) return undefined;
  return r.what;
}

/**
 * Throws a final ValidationError when the VA must not connect to `address`.
 * @param what what the address is for, in the message ("example.test", "the redirect to ...")
 */
export function assertAddressAllowed(
  address: string,
  policy: AddressPolicy,
  what: string,
  problemType: ProblemType = 'rejectedIdentifier',
): void {
  const why = addressRefusal(address, policy);
  if (why) throw ValidationError.final(problemType, `${what}: refusing to connect to ${address} (${why})`);
}
