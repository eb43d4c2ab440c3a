/**
 * The effective certificate, key and CRL profiles: the built-in certificate profiles, the
 * configuration file's entries (the seed) and the managed versions stored in the database
 * (console, admin API, `certflow profiles apply`). A stored version replaces the seed entry
 * of the same name; a retired one removes it. One function builds the set for every
 * process, from the same schema as the configuration file, so that what the console saves
 * is exactly what a configuration file could say.
 */
import { CaError } from '../core/errors.ts';
import { DEFAULT_PROFILES, validateProfile, type CertProfile } from './profiles.ts';
import type { ConfigFile } from './schema.ts';

export type CertificateProfileEntry = NonNullable<ConfigFile['profiles']>[number];
export type KeyProfile = NonNullable<ConfigFile['keyProfiles']>[number];
export type CrlProfile = NonNullable<ConfigFile['crlProfiles']>[number];
export type ProfileKind = 'certificate' | 'key' | 'crl';
export const PROFILE_KINDS: readonly ProfileKind[] = ['certificate', 'key', 'crl'];

/** The entries of the three kinds, as the configuration file has them. */
export interface ProfileEntries {
  profiles: CertificateProfileEntry[];
  keyProfiles: KeyProfile[];
  crlProfiles: CrlProfile[];
}

/** A managed version from the database (latest per kind and name). */
export interface StoredProfile {
  kind: ProfileKind;
  name: string;
  version: number;
  definition: Record<string, unknown>;
  retired: boolean;
  changedBy: string;
  changedAt: Date;
}

export interface ProfileSet {
  profiles: Map<string, CertProfile>;
  keyProfiles: Map<string, KeyProfile>;
  crlProfiles: Map<string, CrlProfile>;
}

const SECTION = { certificate: 'profiles', key: 'keyProfiles', crl: 'crlProfiles' } as const;

export function entriesOf(file: ConfigFile): ProfileEntries {
  return { profiles: file.profiles ?? [], keyProfiles: file.keyProfiles ?? [], crlProfiles: file.crlProfiles ?? [] };
}

/**
 * The seed entries with the stored versions applied: a stored version replaces the seed
 * entry of its name in place, a new name is appended (in the order the names were first
 * stored), a retired one is removed.
 */
export function overlay(seed: ProfileEntries, stored: StoredProfile[]): ProfileEntries {
  const out = { profiles: [...seed.profiles], keyProfiles: [...seed.keyProfiles], crlProfiles: [...seed.crlProfiles] } as Record<
    (typeof SECTION)[ProfileKind],
    Array<{ name: string }>
  >;
  for (const s of stored) {
    const list = out[SECTION[s.kind]];
    const i = list.findIndex((e) => e.name === s.name);
    if (s.retired) {
      if (i >= 0) list.splice(i, 1);
    } else if (i >= 0) list[i] = s.definition as { name: string };
    else list.push(s.definition as { name: string });
  }
  return out as unknown as ProfileEntries;
}

/** Built-in certificate profiles that are retired (a stored tombstone of a built-in name). */
export function retiredBuiltins(stored: StoredProfile[]): Set<string> {
  return new Set(
    stored.filter((s) => s.kind === 'certificate' && s.retired && DEFAULT_PROFILES.some((p) => p.name === s.name)).map((s) => s.name),
  );
}

/**
 * Resolves the entries into profiles: a certificate entry overrides the built-in of its
 * name or `extends` an earlier profile, and takes its keys from `keyProfile` when it names
 * one. `where(kind, index, name)` names an entry in error messages.
 */
export function buildProfileSet(
  entries: ProfileEntries,
  opts: { where?: (kind: ProfileKind, index: number, name: string) => string; retired?: Set<string> } = {},
): ProfileSet {
  const where = opts.where ?? ((kind, i) => `${SECTION[kind]}[${i}]`);
  const keyProfiles = new Map<string, KeyProfile>();
  for (const [i, k] of entries.keyProfiles.entries()) {
    if (!k.rsa && !k.ec && !k.ed25519 && !k.ed448) {
      throw new CaError('config', `${where('key', i, k.name)}: key profile "${k.name}" allows no key type`, { rule: 'profile.keys' });
    }
    if (k.rsa && k.rsa.maxBits < k.rsa.minBits) {
      throw new CaError('config', `${where('key', i, k.name)}.rsa: maxBits is below minBits`, { rule: 'profile.keys.rsa' });
    }
    keyProfiles.set(k.name, k);
  }
  const crlProfiles = new Map<string, CrlProfile>();
  for (const c of entries.crlProfiles) crlProfiles.set(c.name, c);

  const profiles = new Map<string, CertProfile>(
    DEFAULT_PROFILES.filter((p) => !opts.retired?.has(p.name)).map((p) => [p.name, structuredClone(p)]),
  );
  for (const [i, entry] of entries.profiles.entries()) {
    const at = where('certificate', i, entry.name);
    const { extends: base, keyProfile, ...rest } = entry;
    const parent = profiles.get(base ?? entry.name) ?? profiles.get('tls-server') ?? structuredClone(DEFAULT_PROFILES[0]!);
    if (base && !profiles.has(base)) {
      throw new CaError('config', `${at}.extends: profile "${entry.name}" extends unknown profile "${base}"`, { rule: 'profile.extends' });
    }
    if (keyProfile && rest.keys) {
      throw new CaError('config', `${at}: profile "${entry.name}" names both keys and keyProfile; keep one`, {
        rule: 'profile.keyProfile',
      });
    }
    const named = keyProfile ? keyProfiles.get(keyProfile) : undefined;
    if (keyProfile && !named) {
      throw new CaError('config', `${at}.keyProfile: profile "${entry.name}" names unknown key profile "${keyProfile}"`, {
        rule: 'profile.keyProfile',
      });
    }
    const keys = named ? { rsa: named.rsa, ec: named.ec, ed25519: named.ed25519, ed448: named.ed448 } : (rest.keys ?? parent.keys);
    const merged: CertProfile = {
      ...structuredClone(parent),
      ...rest,
      name: entry.name,
      keys: structuredClone(Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined))) as CertProfile['keys'],
      san: { ...parent.san, ...(rest.san ?? {}) },
      subject: { ...parent.subject, ...(rest.subject ?? {}) },
      aia: { ...parent.aia, ...(rest.aia ?? {}) },
      ...(keyProfile ? { keyProfile } : {}),
    };
    profiles.set(entry.name, validateProfile(merged, at));
  }
  return { profiles, keyProfiles, crlProfiles };
}
