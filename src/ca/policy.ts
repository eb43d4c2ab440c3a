/**
 * Certificate profiles applied to a parsed request: decides the subject, SANs and usages
 * of the certificate, or rejects the request.
 *
 * Every rejection is a CaError('badKey' for the public key, 'policy' otherwise) whose
 * `rule` names the broken rule and whose message names the offending value, the profile and
 * the rule, e.g. `IP address SAN "10.0.0.1" is not allowed by profile "tls-client" (rule san.ip)`.
 *
 * Only the SANs and subject of the request are taken over; other requested extensions
 * (key usage, basic constraints, ...) are ignored: the profile decides those.
 */
import { CaError } from '../core/errors.ts';
import { checkProfileKey } from '../config/key-limits.ts';
import { usagesFittingPurposes } from '../config/key-usage.ts';
import { EKU_OIDS, KEY_USAGES, SUBJECT_ATTRS, type CertProfile, type KeyUsageName } from '../config/profiles.ts';
import {
  attrShortName,
  emptySans,
  normalizeIp,
  sanCount,
  type ParsedCsr,
  type PublicKeyKind,
  type RdnAttr,
  type SanSet,
} from '../pki/index.ts';

export interface PolicyResult {
  /** In encoding order. */
  subject: RdnAttr[];
  sans: SanSet;
  keyUsage: KeyUsageName[];
  /** OIDs */
  extKeyUsage: string[];
}

const CN = SUBJECT_ATTRS.CN;

function reject(
  kind: 'badKey' | 'policy',
  profile: CertProfile,
  rule: string,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new CaError(kind, `${message} (rule ${rule})`, { rule, details: { profile: profile.name, ...details } });
}

export function applyProfile(csr: ParsedCsr, profile: CertProfile): PolicyResult {
  checkProfileKey(csr.key, profile);
  if (csr.unsupportedSans?.length) {
    reject(
      'policy',
      profile,
      'san.type',
      `SAN ${csr.unsupportedSans[0]} is of a type profile "${profile.name}" cannot issue (only DNS, IP, email and URI)`,
      {
        value: csr.unsupportedSans[0],
      },
    );
  }
  const sans = checkSans(csr.sans, profile);
  const subject = checkSubject(csr.subject, profile);
  const cns = subject.filter((a) => a.type === CN);
  if (cns.length > 1) {
    // Each CN would be a name of the certificate (and, where the CN must be a SAN, a SAN too).
    reject(
      'policy',
      profile,
      'subject.cnCount',
      `the subject has ${cns.length} common names (${cns.map((a) => `CN=${a.value}`).join(', ')}); profile "${profile.name}" allows one`,
      { values: cns.map((a) => a.value) },
    );
  }

  if (profile.subject.cnFromFirstSan) addCnFromFirstSan(subject, sans, profile);
  const cn = subject.find((a) => a.type === CN);
  if (cn && profile.subject.cnMustBeSan) cn.value = ensureCnIsSan(cn.value, sans, profile);
  for (const name of profile.subject.required) {
    if (!subject.some((a) => a.type === SUBJECT_ATTRS[name])) {
      reject('policy', profile, 'subject.required', `the subject must contain ${name}, required by profile "${profile.name}"`, {
        attribute: name,
      });
    }
  }
  checkSanCount(sans, profile);
  if (subject.length === 0 && sanCount(sans) === 0) {
    reject(
      'policy',
      profile,
      'subject.empty',
      `the request has neither a subject nor SANs; profile "${profile.name}" cannot issue a certificate that names nothing`,
    );
  }
  const extKeyUsage = extKeyUsages(profile, sans);
  return { subject, sans, keyUsage: keyUsages(csr.key, profile, extKeyUsage), extKeyUsage };
}

// ---------------------------------------------------------------------------------------
// Key

// ---------------------------------------------------------------------------------------
// SANs

/** Why `name` is not a valid DNS name (LDH labels, optional leading "*" label), or undefined. */
function dnsSyntaxProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return `is ${name.length} characters long; the maximum is 253`;
  if (/[^\x21-\x7e]/.test(name))
    return 'contains spaces or non-ASCII characters; internationalized names must be requested in punycode (xn--...)';
  if (name.endsWith('.')) return 'ends with a dot; request the name without it';
  if (normalizeIp(name)) return 'is an IP address; request it as an IP address SAN';
  const labels = name.split('.');
  for (const [i, label] of labels.entries()) {
    if (label === '*' && i === 0) continue;
    if (label.includes('*')) return 'has a wildcard that is not the whole leftmost label';
    if (label.length === 0) return 'has an empty label';
    if (label.length > 63) return `has a label of ${label.length} characters; the maximum is 63`;
    if (!/^[a-z0-9-]+$/i.test(label)) return `has the label "${label}" with characters other than letters, digits and "-"`;
    if (label.startsWith('-') || label.endsWith('-')) return `has the label "${label}" that starts or ends with "-"`;
  }
  if (/^\d+$/.test(labels[labels.length - 1])) return 'has an all-numeric top-level label';
  // Browsers refuse wildcards directly under a top-level domain; so do we.
  if (labels[0] === '*' && labels.length < 3) return 'is a wildcard directly under a top-level domain (use e.g. *.example.com)';
  return undefined;
}

function checkDnsSan(raw: string, p: CertProfile): string {
  const name = raw.toLowerCase();
  if (name.startsWith('*.') && !p.san.dnsWildcard) {
    reject('policy', p, 'san.dnsWildcard', `wildcard DNS name "${raw}" is not allowed by profile "${p.name}"`, { value: raw });
  }
  const problem = dnsSyntaxProblem(name);
  if (problem) reject('policy', p, 'san.dnsSyntax', `DNS name "${raw}" ${problem}; profile "${p.name}"`, { value: raw });
  return name;
}

const EMAIL_LOCAL_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** Why `addr` is not a plain (dot-atom, RFC 5321) mailbox, or undefined. */
function emailSyntaxProblem(addr: string): string | undefined {
  const at = addr.lastIndexOf('@');
  if (at <= 0 || at === addr.length - 1) return 'is not of the form local@domain';
  if (addr.length > 254) return `is ${addr.length} characters long; the maximum is 254`;
  const local = addr.slice(0, at);
  if (local.length > 64) return `has a local part of ${local.length} characters; the maximum is 64`;
  if (!EMAIL_LOCAL_RE.test(local)) return `has an invalid local part "${local}" (quoted or non-ASCII local parts are not supported)`;
  const domainProblem = dnsSyntaxProblem(addr.slice(at + 1).toLowerCase());
  if (domainProblem) return `has a domain that ${domainProblem}`;
  if (addr.slice(at + 1).includes('*')) return 'has a wildcard domain';
  return undefined;
}

/** Local part kept as is (it may be case-sensitive), domain lower-cased. */
function checkEmail(raw: string, p: CertProfile, rule: string, what: string): string {
  const problem = emailSyntaxProblem(raw);
  if (problem) reject('policy', p, rule, `${what} "${raw}" ${problem}; profile "${p.name}"`, { value: raw });
  const at = raw.lastIndexOf('@');
  return `${raw.slice(0, at)}@${raw.slice(at + 1).toLowerCase()}`;
}

function checkUri(raw: string, p: CertProfile): string {
  const fail = (why: string): never => reject('policy', p, 'san.uriSyntax', `URI SAN "${raw}" ${why}; profile "${p.name}"`, { value: raw });
  if (!/^[\x21-\x7e]+$/.test(raw)) fail('contains spaces or non-ASCII characters');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw)) fail('is not an absolute URI (it needs a scheme, e.g. https: or urn:)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('cannot be parsed as a URI');
  }
  // RFC 5280 4.2.1.6: a URI with an authority must name a host.
  if (raw.slice(url.protocol.length).startsWith('//') && url.host === '') fail('has an authority without a host');
  return raw;
}

function dedupe(values: string[]): string[] {
  return [...new Set(values)];
}

function checkSans(requested: SanSet, p: CertProfile): SanSet {
  const kindNotAllowed = (rule: string, label: string, value: string): never =>
    reject('policy', p, rule, `${label} SAN "${value}" is not allowed by profile "${p.name}"`, { value });
  const sans = emptySans();
  for (const d of requested.dns) {
    if (!p.san.dns) kindNotAllowed('san.dns', 'DNS name', d);
    sans.dns.push(checkDnsSan(d, p));
  }
  for (const ip of requested.ip) {
    if (!p.san.ip) kindNotAllowed('san.ip', 'IP address', ip);
    sans.ip.push(
      normalizeIp(ip) ?? reject('policy', p, 'san.ipSyntax', `"${ip}" is not an IP address; profile "${p.name}"`, { value: ip }),
    );
  }
  for (const e of requested.email) {
    if (!p.san.email) kindNotAllowed('san.email', 'email', e);
    sans.email.push(checkEmail(e, p, 'san.emailSyntax', 'email SAN'));
  }
  for (const u of requested.uri) {
    if (!p.san.uri) kindNotAllowed('san.uri', 'URI', u);
    sans.uri.push(checkUri(u, p));
  }
  return { dns: dedupe(sans.dns), ip: dedupe(sans.ip), email: dedupe(sans.email), uri: dedupe(sans.uri) };
}

function checkSanCount(sans: SanSet, p: CertProfile): void {
  const n = sanCount(sans);
  if (n > p.san.max) {
    reject('policy', p, 'san.max', `the request has ${n} SANs; profile "${p.name}" allows at most ${p.san.max}`, { count: n });
  }
  if (n === 0 && p.san.required) {
    reject('policy', p, 'san.required', `the request has no SANs (and no CN usable as one); profile "${p.name}" requires at least one`);
  }
}

// ---------------------------------------------------------------------------------------
// Subject

/** X.520 / PKCS#9 upper bounds, in characters. */
const MAX_LENGTH: Record<string, number> = { CN: 64, O: 64, OU: 64, L: 128, ST: 128, serialNumber: 64, emailAddress: 255, C: 2 };

function checkSubject(requested: readonly RdnAttr[], p: CertProfile): RdnAttr[] {
  const allowed = new Map(p.subject.allowed.map((name) => [SUBJECT_ATTRS[name], name]));
  const out: RdnAttr[] = [];
  for (const a of requested) {
    const name = allowed.get(a.type);
    if (name === undefined) {
      if (p.subject.dropDisallowed) continue;
      const label = a.short ?? attrShortName(a.type) ?? a.type;
      reject(
        'policy',
        p,
        'subject.attribute',
        `subject attribute ${label}="${a.value}" is not allowed by profile "${p.name}" (allowed: ${p.subject.allowed.join(', ') || 'none'})`,
        { attribute: label },
      );
    }
    out.push({ type: a.type, short: name, value: checkAttrValue(name, a.value, p) });
  }
  return out;
}

function checkAttrValue(name: string, value: string, p: CertProfile): string {
  const fail = (why: string): never =>
    reject('policy', p, 'subject.value', `subject attribute ${name}="${value}" ${why}; profile "${p.name}"`, { attribute: name });
  if (value.trim() === '') fail('is empty');
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\x00-\x1f\x7f]/.test(value)) fail('contains control characters');
  const max = MAX_LENGTH[name];
  if (name === 'C') {
    if (!/^[A-Za-z]{2}$/.test(value)) fail('is not a two-letter ISO 3166 country code');
    return value.toUpperCase();
  }
  if (max !== undefined && [...value].length > max) fail(`is longer than ${max} characters`);
  if (name === 'serialNumber' && !/^[A-Za-z0-9 '()+,\-./:=?]+$/.test(value)) fail('has characters a PrintableString cannot hold');
  if (name === 'emailAddress') return checkEmail(value, p, 'subject.value', 'subject attribute emailAddress');
  return value;
}

/** ACME style: without a CN, the first DNS SAN that fits (64 chars) becomes the CN, else the first IP. */
function addCnFromFirstSan(subject: RdnAttr[], sans: SanSet, p: CertProfile): void {
  if (subject.some((a) => a.type === CN) || !p.subject.allowed.includes('CN')) return;
  const cn = sans.dns.find((d) => d.length <= MAX_LENGTH.CN) ?? sans.ip[0];
  if (cn !== undefined) subject.push({ type: CN, short: 'CN', value: cn });
}

/**
 * The CN must also be a SAN: a CN that is an IP address or DNS name missing from the SANs is
 * added to them (first) when the profile allows that SAN kind. Returns the CN in the
 * SAN's canonical form (lower-case name, compressed IPv6).
 */
function ensureCnIsSan(cn: string, sans: SanSet, p: CertProfile): string {
  const notSan = (why: string): never =>
    reject('policy', p, 'subject.cnNotSan', `CN "${cn}" ${why}, but profile "${p.name}" requires the CN to be a SAN`, { value: cn });
  const ip = normalizeIp(cn);
  if (ip !== undefined) {
    if (sans.ip.includes(ip)) return ip;
    if (!p.san.ip) notSan('is an IP address not among the SANs and IP SANs are not allowed');
    sans.ip.unshift(ip);
    return ip;
  }
  const name = cn.toLowerCase();
  if (dnsSyntaxProblem(name) !== undefined) return notSan('is neither a DNS name nor an IP address');
  if (sans.dns.includes(name)) return name;
  if (!p.san.dns) notSan('is a DNS name not among the SANs and DNS SANs are not allowed');
  if (name.startsWith('*.') && !p.san.dnsWildcard) notSan('is a wildcard name not among the SANs and wildcards are not allowed');
  sans.dns.unshift(name);
  return name;
}

// ---------------------------------------------------------------------------------------
// Usages

/**
 * The profile's key usages, plus keyEncipherment for an RSA key where the profile asks for
 * it (TLS 1.2 RSA key exchange encrypts the premaster secret with the certificate's key),
 * keeping only those the certificate's extended key usages permit: a device certificate
 * whose serverAuth was left out (no server name) gets no keyEncipherment.
 */
function keyUsages(key: PublicKeyKind, p: CertProfile, ekuOids: string[]): KeyUsageName[] {
  const usages = new Set<KeyUsageName>(p.keyUsage);
  if (key.type === 'rsa' && p.rsaKeyEncipherment) usages.add('keyEncipherment');
  return usagesFittingPurposes(
    KEY_USAGES.filter((u) => usages.has(u)),
    ekuOids,
  );
}

/**
 * The profile's extended key usages. serverAuth only goes into a certificate that names a
 * server (a DNS or IP SAN: RFC 6125, CA/B Forum BR 7.1.2.7); without one it is left out, and
 * a profile whose only usage is serverAuth refuses the request.
 */
function extKeyUsages(p: CertProfile, sans: SanSet): string[] {
  const ekus = dedupe(p.extKeyUsage.map((e) => EKU_OIDS[e] ?? e));
  if (!ekus.includes(EKU_OIDS.serverAuth!) || sans.dns.length + sans.ip.length > 0) return ekus;
  const rest = ekus.filter((e) => e !== EKU_OIDS.serverAuth);
  if (rest.length === 0) {
    reject('policy', p, 'eku.serverAuthSan', `a serverAuth certificate needs a DNS or IP SAN; profile "${p.name}" issues only serverAuth`);
  }
  return rest;
}
