/**
 * The CA expiry watch: which CAs expire too soon. A CA must outlive the certificates it
 * issues; once its remaining validity is shorter than the longest profile it serves, new
 * certificates come out shortened (capped at its notAfter). certflow reports a CA from
 * `ca.expiryWarningDays` (30) days before that point: on /healthz, the console's dashboard,
 * `certflow ca list`, and (once per CA key and level) in the audit log through the daily
 * `<queue>-ca-expiry-watch` schedule. A parent CA serves what its subordinates serve.
 * One function, caExpiryReport, is what every surface (and notifications) calls.
 */
import type { Config } from '../config/index.ts';
import type { Queryable } from '../db/pool.ts';
import * as cas from '../db/repos/cas.ts';
import { issuingCaName } from '../ca/authority.ts';
import { unknownCaReferences } from './ca-references.ts';

export interface CaExpiry {
  ca: string;
  generation: number;
  notAfter: string;
  remainingDays: number;
  /** The longest certificate profile the CA (or a CA below it) issues with. */
  longestProfile: { name: string; days: number } | null;
  /** warning: within the lead time; critical: certificates are already shortened; expired. */
  level: 'warning' | 'critical' | 'expired';
  external: boolean;
  message: string;
}

const DAY = 86_400_000;

/** Profile -> the CA names that issue with it, over every surface (cert issue, ACME aliases, EST labels, CMP aliases). */
function servedProfiles(config: Pick<Config, 'ca' | 'profiles' | 'acme' | 'est' | 'cmp'>): Map<string, { name: string; seconds: number }> {
  const longest = new Map<string, { name: string; seconds: number }>();
  const serve = (named: string | undefined, profileName: string) => {
    const profile = config.profiles.get(profileName);
    if (!profile) return;
    const ca = issuingCaName(config, named, profile);
    const current = longest.get(ca);
    if (!current || profile.validitySeconds > current.seconds) longest.set(ca, { name: profile.name, seconds: profile.validitySeconds });
  };
  for (const p of config.profiles.values()) serve(undefined, p.name);
  for (const a of config.acme.aliases.values()) for (const p of [a.profile, ...Object.values(a.profiles)]) serve(a.caName, p);
  for (const l of config.est.labels.values()) serve(l.caName, l.profile);
  for (const a of config.cmp.aliases.values()) serve(a.caName, a.profile);
  return longest;
}

/** The CAs that expire too soon, most urgent first. */
export async function caExpiryReport(
  db: Queryable,
  config: Pick<Config, 'ca' | 'profiles' | 'acme' | 'est' | 'cmp'>,
  now = new Date(),
): Promise<CaExpiry[]> {
  const all = await cas.list(db);
  const served = servedProfiles(config);
  // What each CA must cover: its own profiles and, for a parent, every descendant's.
  const need = new Map<string, { name: string; seconds: number }>();
  const cover = (ca: string, p: { name: string; seconds: number }) => {
    for (let name: string | null = ca; name; name = all.find((c) => c.name === name)?.parent ?? null) {
      const current = need.get(name);
      if (!current || p.seconds > current.seconds) need.set(name, p);
    }
  };
  for (const [ca, p] of served) cover(ca, p);
  const newer = new Set<string>();
  for (const c of all) {
    // A certified later key (a rollover waiting for its activation time) takes care of it.
    const keys = await cas.keys(db, c.name);
    if (keys.some((k) => k.certDer && k.generation > c.generation && k.notAfter! > c.notAfter)) newer.add(c.name);
  }
  const out: CaExpiry[] = [];
  for (const c of all) {
    if (c.status !== 'active' || newer.has(c.name)) continue;
    const p = need.get(c.name);
    // CAs that serve nothing (an unused root) are still reported when they expire within the lead time.
    const needMs = p ? p.seconds * 1000 : 0;
    const remaining = c.notAfter.getTime() - now.getTime();
    const lead = config.ca.expiryWarningDays * DAY;
    if (remaining >= needMs + lead) continue;
    const level = remaining <= 0 ? 'expired' : remaining < needMs ? 'critical' : 'warning';
    const days = Math.floor(remaining / DAY);
    const profileText = p
      ? `the longest profile it serves, "${p.name}", is ${Math.round(p.seconds / 86_400)} days`
      : 'it serves no profile';
    out.push({
      ca: c.name,
      generation: c.generation,
      notAfter: c.notAfter.toISOString(),
      remainingDays: days,
      longestProfile: p ? { name: p.name, days: Math.round(p.seconds / 86_400) } : null,
      level,
      external: c.external,
      message:
        level === 'expired'
          ? `CA "${c.name}" expired on ${c.notAfter.toISOString()}`
          : `CA "${c.name}" expires on ${c.notAfter.toISOString()} (in ${days} days); ${profileText}` +
            (level === 'critical' ? ': certificates it issues now are cut short' : '') +
            (c.external ? ' (an outside CA: renew it there)' : `: roll it over (\`certflow ca rollover ${c.name}\`)`),
    });
  }
  const rank = { expired: 0, critical: 1, warning: 2 };
  return out.sort((a, b) => rank[a.level] - rank[b.level] || a.remainingDays - b.remainingDays);
}

/** What /healthz and the dashboard warn about: CAs that expire too soon and configured CA names that are no CA. */
export async function caWarnings(
  db: Queryable,
  config: Parameters<typeof caExpiryReport>[1] & Parameters<typeof unknownCaReferences>[0],
): Promise<string[]> {
  const [expiry, unknown] = await Promise.all([caExpiryReport(db, config), unknownCaReferences(config, db)]);
  return [...expiry.map((w) => w.message), ...unknown.map((r) => r.message)];
}
