/**
 * The VA's DNS client: node:dns Resolver (c-ares) queries sent to config.dnsResolver
 * (host:port) or, without it, to the system's name servers. Never the OS getaddrinfo: the
 * VA must see exactly what DNS answers (and tests must be able to supply the answers).
 *
 * Every call has its own timeout and its own Resolver, so a cancelled (timed-out) call
 * cannot disturb concurrent ones. "No such name" and "no records of that type" are answers
 * (empty results); everything else that goes wrong is a ValidationError of type 'dns',
 * retryable because a resolver that fails now (SERVFAIL, timeout) may answer later.
 */
import type { CaaRecord as NodeCaaRecord } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import type { ValidationConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { ValidationError } from './errors.ts';

/** One CAA resource record (RFC 8659 section 4.1); `tag` is lower-cased (tags are case-insensitive). */
export interface CaaRecord {
  flags: number;
  tag: string;
  value: string;
}

export interface TxtLookup {
  /** The name queried last: the end of the chain, or an alias whose answer carried its target's records. */
  name: string;
  /** One string per TXT record: its character-strings concatenated (RFC 8555 section 8.4). */
  records: string[];
  /** CNAME targets followed explicitly, in order ([] when none). */
  cnames: string[];
}

export interface LookupOptions {
  /** Timeout of this call (default: the client's). */
  timeoutMs?: number;
}

/** The look-ups the validators make. An interface so that tests can inject fakes (caa.ts). */
export interface DnsClient {
  /** TXT records of `name`, following CNAMEs (at most MAX_CNAME_HOPS). */
  resolveTxtFollowingCname(name: string, opts?: LookupOptions): Promise<TxtLookup>;
  /** A and AAAA addresses of `name`: IPv6 first, then IPv4 ([] when it has none). */
  resolveAddresses(name: string, opts?: LookupOptions): Promise<string[]>;
  /** CAA records at exactly `name` ([] when none); the resolver follows CNAMEs. */
  resolveCaa(name: string, opts?: LookupOptions): Promise<CaaRecord[]>;
}

export interface DnsClientOptions {
  /** "host:port" ("[v6]:port") of the resolver; undefined = the system's name servers. */
  server?: string;
  /** Default timeout of one call. */
  timeoutMs: number;
}

const MAX_CNAME_HOPS = 8;

/** Result of one query: records, or which of the two "nothing there" answers came back. */
type Answer<T> = { kind: 'records'; records: T } | { kind: 'nxdomain' } | { kind: 'nodata' };

/** c-ares error codes, as what a human would call them. */
const DNS_ERRORS: Record<string, string> = {
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  ETIMEOUT: 'timeout',
  ECANCELLED: 'timeout',
  ECONNREFUSED: 'connection refused by the resolver',
  EBADRESP: 'malformed response',
  EFORMERR: 'FORMERR',
  ENOTIMP: 'NOTIMP',
  EOF: 'truncated response',
};

export function createDnsClient(opts: DnsClientOptions): DnsClient {
  return new CaresDnsClient(opts);
}

/** The client config.validation asks for: its resolver, per-call timeout = attemptTimeoutSeconds. */
export function dnsClientFromConfig(config: ValidationConfig): DnsClient {
  return createDnsClient({ server: config.dnsResolver, timeoutMs: config.attemptTimeoutSeconds * 1000 });
}

/** Lower-case, without the root's trailing dot: the form names are compared in. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

class CaresDnsClient implements DnsClient {
  private readonly server?: string;
  private readonly timeoutMs: number;

  constructor(opts: DnsClientOptions) {
    this.server = opts.server;
    this.timeoutMs = opts.timeoutMs;
    // Fail at start-up, not at the first validation, when the address is not usable.
    this.newResolver(1000);
  }

  async resolveTxtFollowingCname(name: string, opts: LookupOptions = {}): Promise<TxtLookup> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const cnames: string[] = [];
    let current = normalizeName(name);
    for (;;) {
      // c-ares already follows a CNAME when the server puts the target's TXT records into the
      // same answer; the explicit walk below covers servers that stop at the CNAME.
      const txt = await this.query('TXT', current, timeoutMs, (r) => r.resolveTxt(current));
      if (txt.kind === 'records' && txt.records.length)
        return { name: current, records: txt.records.map((chunks) => chunks.join('')), cnames };
      if (txt.kind === 'nxdomain') return { name: current, records: [], cnames };
      // NODATA, or an answer holding only a CNAME (c-ares then returns no records): the name
      // may be an alias whose target's TXT records the server did not include.
      const target = await this.cnameOf(current, timeoutMs);
      if (target === undefined) return { name: current, records: [], cnames };
      if (target === normalizeName(name) || cnames.includes(target)) {
        throw ValidationError.final('dns', `CNAME loop looking up TXT for ${name}: ${[name, ...cnames, target].join(' -> ')}`);
      }
      if (cnames.length >= MAX_CNAME_HOPS) {
        throw ValidationError.final(
          'dns',
          `more than ${MAX_CNAME_HOPS} CNAMEs looking up TXT for ${name}: ${[name, ...cnames].join(' -> ')} -> ...`,
        );
      }
      cnames.push(target);
      current = target;
    }
  }

  async resolveAddresses(name: string, opts: LookupOptions = {}): Promise<string[]> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const n = normalizeName(name);
    const [v6, v4] = await Promise.allSettled([
      this.query('AAAA', n, timeoutMs, (r) => r.resolve6(n)),
      this.query('A', n, timeoutMs, (r) => r.resolve4(n)),
    ]);
    const addresses = [v6, v4].flatMap((s) => (s.status === 'fulfilled' && s.value.kind === 'records' ? s.value.records : []));
    // One family's answer is enough to connect; without any, a failed query is the story
    // (a transient failure must not turn into "has no addresses").
    if (addresses.length) return addresses;
    const failed = [v6, v4].find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return [];
  }

  async resolveCaa(name: string, opts: LookupOptions = {}): Promise<CaaRecord[]> {
    const n = normalizeName(name);
    const caa = await this.query('CAA', n, opts.timeoutMs ?? this.timeoutMs, (r) => r.resolveCaa(n));
    return caa.kind === 'records' ? caa.records.map(toCaaRecord) : [];
  }

  private async cnameOf(name: string, timeoutMs: number): Promise<string | undefined> {
    const cname = await this.query('CNAME', name, timeoutMs, (r) => r.resolveCname(name));
    // A server may return the whole chain; any member of it is a valid next step.
    return cname.kind === 'records' && cname.records.length ? normalizeName(cname.records[0]) : undefined;
  }

  private newResolver(timeoutMs: number): Resolver {
    // Two tries of a third each leave room for c-ares' backoff within the call's timeout.
    const resolver = new Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 3)), tries: 2 });
    if (this.server) {
      try {
        resolver.setServers([this.server]);
      } catch (e) {
        throw new CaError('config', `CERTFLOW_DNS_RESOLVER=${this.server} is not an address "ip:port": ${(e as Error).message}`, {
          rule: 'env.CERTFLOW_DNS_RESOLVER',
          cause: e,
        });
      }
    }
    return resolver;
  }

  /** Runs one query on a fresh Resolver, bounded by timeoutMs; maps errors (see the file comment). */
  private async query<T>(rrtype: string, name: string, timeoutMs: number, run: (r: Resolver) => Promise<T>): Promise<Answer<T>> {
    const resolver = this.newResolver(timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        resolver.cancel();
        reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' }));
      }, timeoutMs);
    });
    try {
      return { kind: 'records', records: await Promise.race([run(resolver), timeout]) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
      if (code === 'ENODATA') return { kind: 'nodata' };
      throw this.failure(rrtype, name, code, e);
    } finally {
      clearTimeout(timer);
    }
  }

  private failure(rrtype: string, name: string, code: string, cause: unknown): ValidationError {
    const via = this.server ? `resolver ${this.server}` : 'system resolver';
    if (code === 'EBADNAME') return ValidationError.final('malformed', `"${name}" is not a valid DNS name`, cause);
    const what = DNS_ERRORS[code] ?? (code || (cause as Error).message);
    return ValidationError.transient('dns', `DNS query for ${rrtype} ${name} failed: ${what} (${via})`, cause);
  }
}

/** Node reports a CAA record as { critical: flags, <tag>: value }. */
function toCaaRecord(r: NodeCaaRecord): CaaRecord {
  const fields = r as unknown as Record<string, unknown>;
  const tag = Object.keys(fields).find((k) => k !== 'critical') ?? '';
  return { flags: r.critical, tag: tag.toLowerCase(), value: String(fields[tag] ?? '') };
}
