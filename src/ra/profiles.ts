/**
 * Managed profiles: certificate, key and CRL profiles created, cloned, edited and retired
 * in the console, the admin API and `certflow profiles`, on top of the configuration file
 * (the seed). A change is checked with the configuration file's schema and by building the
 * whole profile set with it (extends, keyProfile, the profile rules) before it is saved as a
 * new version, audited with its diff, and applied by every process without a restart: each
 * server, worker and console rebuilds its profiles on the database notification.
 */
import type { Pool } from 'pg';
import { z } from 'zod';
import type { Config } from '../config/index.ts';
import { buildProfileSet, overlay, retiredBuiltins, type ProfileKind, type ProfileSet, type StoredProfile } from '../config/profile-set.ts';
import { DEFAULT_PROFILES } from '../config/profiles.ts';
import { crlProfileSchema, jsonPath, keyProfileSchema, profileSchema } from '../config/schema.ts';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { listen, type Listener } from '../db/listen.ts';
import { withTransaction, type Queryable } from '../db/pool.ts';
import { audit } from '../db/repos/audit.ts';
import * as cas from '../db/repos/cas.ts';
import * as stored from '../db/repos/profiles.ts';

const SCHEMAS: Record<ProfileKind, z.ZodType> = { certificate: profileSchema, key: keyProfileSchema, crl: crlProfileSchema };
const KIND_WORDS: Record<ProfileKind, string> = { certificate: 'certificate profile', key: 'key profile', crl: 'CRL profile' };

type ProfileConfig = Pick<Config, 'profiles' | 'keyProfiles' | 'crlProfiles' | 'profileSeed'>;

/** The set the seed and `versions` make (throws CaError('config') naming the entry at fault). */
function setOf(config: ProfileConfig, versions: StoredProfile[]): ProfileSet {
  return buildProfileSet(overlay(config.profileSeed, versions), {
    retired: retiredBuiltins(versions),
    where: (kind, i, name) => {
      const v = versions.find((s) => s.kind === kind && s.name === name);
      return v
        ? `${KIND_WORDS[kind]} "${name}" (version ${v.version})`
        : `${kind === 'certificate' ? 'profiles' : `${kind}Profiles`}[${i}]`;
    },
  });
}

/** Puts a profile set into the config's maps in place: every holder of `config` sees it at once. */
function install(config: ProfileConfig, set: ProfileSet): void {
  for (const [target, source] of [
    [config.profiles, set.profiles],
    [config.keyProfiles, set.keyProfiles],
    [config.crlProfiles, set.crlProfiles],
  ] as Array<[Map<string, unknown>, Map<string, unknown>]>) {
    target.clear();
    for (const [k, v] of source) target.set(k, v);
  }
}

/** Loads the managed versions from the database into `config` (the CLI once; servers and workers at start). */
export async function loadManagedProfiles(config: ProfileConfig, db: Queryable, log?: Pick<Logger, 'error'>): Promise<void> {
  const versions = await stored.latest(db);
  try {
    install(config, setOf(config, versions));
  } catch (e) {
    // A seed that no longer fits a stored version (the configuration file changed): keep
    // the seed alone and say so, rather than refusing to start.
    if (!log) throw e;
    log.error({ err: (e as Error).message }, 'managed profiles do not fit the configuration file; using the configuration file alone');
  }
}

/** Keeps `config`'s profiles current: rebuilt on every change notification (and after a reconnect). */
export function watchManagedProfiles(config: ProfileConfig, deps: { url: string; pool: Pool; log: Logger }): Listener {
  const reload = () =>
    void loadManagedProfiles(config, deps.pool, deps.log).catch((e: unknown) =>
      deps.log.warn({ err: (e as Error).message }, 'reloading managed profiles failed; keeping the current ones'),
    );
  return listen({
    url: deps.url,
    channel: stored.PROFILES_CHANNEL,
    onNotify: reload,
    onConnectionChange: (connected) => connected && reload(),
    log: deps.log,
  });
}

/** Parses a definition with the configuration file's schema for its kind; mistakes name their JSON path. */
function parseDefinition(kind: ProfileKind, definition: unknown): Record<string, unknown> {
  const r = SCHEMAS[kind].safeParse(definition);
  if (r.success) return r.data as Record<string, unknown>;
  const problems = r.error.issues.map((i) => `${jsonPath(i.path)}: ${i.message.replace(/^Invalid input: /, '')}`);
  throw new CaError('malformed', `the ${KIND_WORDS[kind]} is invalid:\n  ${problems.join('\n  ')}`, { rule: 'profile.schema' });
}

/** The definition in effect for a profile: its latest stored version, else its seed entry ({ name } for a built-in); undefined for an unknown one. */
function currentDefinition(config: ProfileConfig, versions: StoredProfile[], kind: ProfileKind, name: string) {
  const v = versions.find((s) => s.kind === kind && s.name === name);
  if (v) return v.retired ? undefined : v.definition;
  const seed =
    kind === 'certificate' ? config.profileSeed.profiles : kind === 'key' ? config.profileSeed.keyProfiles : config.profileSeed.crlProfiles;
  const entry = seed.find((e) => e.name === name) as Record<string, unknown> | undefined;
  // A built-in certificate profile is what an entry naming only it would be.
  return entry ?? (kind === 'certificate' && DEFAULT_PROFILES.some((p) => p.name === name) ? { name } : undefined);
}

function exists(config: ProfileConfig, kind: ProfileKind, name: string): boolean {
  return (kind === 'certificate' ? config.profiles : kind === 'key' ? config.keyProfiles : config.crlProfiles).has(name);
}

/** What changed between two definitions, field by field (JSON paths). */
export function profileDiff(before: unknown, after: unknown): Array<{ path: string; from: unknown; to: unknown }> {
  const out: Array<{ path: string; from: unknown; to: unknown }> = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    const isObj = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
    if (isObj(a) && isObj(b)) {
      const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
      for (const k of keys) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ path: path || '(all)', from: a ?? null, to: b ?? null });
    }
  };
  walk(before, after, '');
  return out;
}

export interface ProfileChangeResult {
  kind: ProfileKind;
  name: string;
  version: number;
  action: 'create' | 'update' | 'retire';
  diff: Array<{ path: string; from: unknown; to: unknown }>;
  message: string;
}

/**
 * Creates or updates a profile (a new version), after checking it with the schema, within
 * the whole profile set, and (certificate profiles) that its issuer is a CA. Audited as
 * profile.create / profile.update with the diff; in effect in every process at once.
 */
export async function applyProfile(
  pool: Pool,
  config: ProfileConfig,
  kind: ProfileKind,
  definition: unknown,
  actor: string,
  opts: { expectedVersion?: number } = {},
): Promise<ProfileChangeResult> {
  const parsed = parseDefinition(kind, definition);
  const name = String(parsed.name);
  if (kind === 'certificate' && typeof parsed.issuer === 'string' && !(await cas.getEntry(pool, parsed.issuer))) {
    throw new CaError('malformed', `the certificate profile's issuer "${parsed.issuer}" is no CA (see \`certflow ca list\`)`, {
      rule: 'profile.issuer',
    });
  }
  const { result, set } = await withTransaction(pool, async (tx) => {
    const versions = await stored.latest(tx);
    const before = currentDefinition(config, versions, kind, name);
    const builtin = kind === 'certificate' && DEFAULT_PROFILES.some((p) => p.name === name);
    const diff = profileDiff(before ?? {}, parsed);
    if (!diff.length) throw new CaError('conflict', `${KIND_WORDS[kind]} "${name}" is already exactly that`, { rule: 'profile.unchanged' });
    const candidate: StoredProfile = {
      kind,
      name,
      version: 0,
      definition: parsed,
      retired: false,
      changedBy: actor,
      changedAt: new Date(),
    };
    let set: ProfileSet;
    try {
      set = setOf(config, [...versions.filter((v) => !(v.kind === kind && v.name === name)), candidate]);
    } catch (e) {
      throw new CaError('malformed', `the ${KIND_WORDS[kind]} is invalid: ${(e as Error).message}`, {
        rule: (e as CaError).rule ?? 'profile.invalid',
      });
    }
    const r = await stored.insertVersion(tx, { kind, name, definition: parsed, retired: false, changedBy: actor }, opts.expectedVersion);
    if ('conflict' in r) {
      throw new CaError(
        'conflict',
        `${KIND_WORDS[kind]} "${name}" is at version ${r.conflict}, not ${opts.expectedVersion}: it was changed meanwhile; reload it`,
        {
          rule: 'profile.version',
        },
      );
    }
    const action = before || builtin || exists(config, kind, name) ? 'update' : 'create';
    await audit(tx, { actor, action: `profile.${action}`, object: `${kind}:${name}`, details: { kind, name, version: r.version, diff } });
    const result: ProfileChangeResult = {
      kind,
      name,
      version: r.version,
      action,
      diff,
      message: `${KIND_WORDS[kind]} "${name}" ${action}d: version ${r.version}`,
    };
    return { result, set };
  });
  install(config, set);
  return result;
}

/** Copies a profile under a new name (its definition as in effect, or the built-in's). */
export async function cloneProfile(pool: Pool, config: ProfileConfig, kind: ProfileKind, from: string, as: string, actor: string) {
  if (exists(config, kind, as)) throw new CaError('conflict', `${KIND_WORDS[kind]} "${as}" exists already`, { rule: 'profile.exists' });
  const versions = await stored.latest(pool);
  const source = currentDefinition(config, versions, kind, from);
  if (!source && !exists(config, kind, from))
    throw new CaError('notFound', `no ${KIND_WORDS[kind]} "${from}"`, { rule: 'profile.unknown' });
  // A built-in (or an entry that only tweaks one) is cloned as a profile that extends it.
  const definition = source ? { ...source, name: as } : { name: as, extends: from };
  return applyProfile(pool, config, kind, definition, actor);
}

/** Where a profile is used: the configuration, registered EST and CMP clients, CAs (CRL profiles), other profiles. */
export async function profileUses(
  db: Queryable,
  config: ProfileConfig & Pick<Config, 'defaultProfile' | 'acme' | 'est' | 'cmp'>,
  kind: ProfileKind,
  name: string,
) {
  const uses: string[] = [];
  if (kind === 'certificate') {
    if (config.defaultProfile === name) uses.push('the default profile (defaultProfile)');
    if (name === 'tls-server') uses.push("certflow's own HTTPS and console certificates");
    if (name === 'cmp-signer') uses.push("the CMP server's signer certificate");
    for (const a of config.acme.aliases.values())
      if (a.profile === name || Object.values(a.profiles).includes(name)) uses.push(`ACME ${a.name ? `/acme/${a.name}` : '/acme'}`);
    for (const l of config.est.labels.values())
      if (l.profile === name) uses.push(`EST ${l.name ? `/.well-known/est/${l.name}` : '/.well-known/est'}`);
    for (const a of config.cmp.aliases.values())
      if (a.profile === name) uses.push(`CMP ${a.name ? `/.well-known/cmp/p/${a.name}` : '/.well-known/cmp'}`);
    for (const p of config.profiles.values())
      if (p.name !== name && config.profileSeed.profiles.find((e) => e.name === p.name)?.extends === name)
        uses.push(`profile ${p.name} (extends)`);
    uses.push(...(await stored.clientsUsing(db, name)));
  } else if (kind === 'key') {
    for (const p of config.profiles.values()) if (p.keyProfile === name) uses.push(`certificate profile ${p.name}`);
  } else {
    uses.push(...(await cas.withCrlProfile(db, name)).map((n) => `CA ${n}`));
  }
  return uses;
}

/** Retires a profile that nothing uses (a tombstone version); audited as profile.retire. */
export async function retireProfile(
  pool: Pool,
  config: ProfileConfig & Pick<Config, 'defaultProfile' | 'acme' | 'est' | 'cmp'>,
  kind: ProfileKind,
  name: string,
  actor: string,
): Promise<ProfileChangeResult> {
  if (!exists(config, kind, name)) throw new CaError('notFound', `no ${KIND_WORDS[kind]} "${name}"`, { rule: 'profile.unknown' });
  const uses = await profileUses(pool, config, kind, name);
  if (uses.length)
    throw new CaError('conflict', `${KIND_WORDS[kind]} "${name}" is in use (${uses.join('; ')}); it cannot be retired`, {
      rule: 'profile.inUse',
    });
  const { result, set } = await withTransaction(pool, async (tx) => {
    const versions = await stored.latest(tx);
    const before = currentDefinition(config, versions, kind, name) ?? { name };
    const tombstone: StoredProfile = { kind, name, version: 0, definition: before, retired: true, changedBy: actor, changedAt: new Date() };
    const set = setOf(config, [...versions.filter((v) => !(v.kind === kind && v.name === name)), tombstone]);
    const r = await stored.insertVersion(tx, { kind, name, definition: before, retired: true, changedBy: actor });
    if ('conflict' in r) throw new CaError('conflict', `${KIND_WORDS[kind]} "${name}" changed meanwhile`, { rule: 'profile.version' });
    await audit(tx, { actor, action: 'profile.retire', object: `${kind}:${name}`, details: { kind, name, version: r.version } });
    const result: ProfileChangeResult = {
      kind,
      name,
      version: r.version,
      action: 'retire',
      diff: [],
      message: `${KIND_WORDS[kind]} "${name}" retired (version ${r.version})`,
    };
    return { result, set };
  });
  install(config, set);
  return result;
}

/** A profile as the console and `profiles show` present it: in effect, where it comes from, its versions. */
export async function profileView(
  db: Queryable,
  config: ProfileConfig & Pick<Config, 'defaultProfile' | 'acme' | 'est' | 'cmp'>,
  kind: ProfileKind,
  name: string,
) {
  const history = await stored.versions(db, kind, name);
  const effective =
    kind === 'certificate' ? config.profiles.get(name) : kind === 'key' ? config.keyProfiles.get(name) : config.crlProfiles.get(name);
  if (!effective && !history.length) throw new CaError('notFound', `no ${KIND_WORDS[kind]} "${name}"`, { rule: 'profile.unknown' });
  const latest = history[0];
  const seeded = currentDefinition(config, [], kind, name);
  const seedList =
    kind === 'certificate' ? config.profileSeed.profiles : kind === 'key' ? config.profileSeed.keyProfiles : config.profileSeed.crlProfiles;
  const inFile = seedList.some((e) => e.name === name);
  const source = latest
    ? `managed, version ${latest.version}${latest.retired ? ' (retired)' : ''}`
    : inFile
      ? 'configuration file'
      : 'built-in';
  return {
    kind,
    name,
    source,
    version: latest?.version ?? 0,
    retired: latest?.retired ?? false,
    definition: latest && !latest.retired ? latest.definition : (seeded ?? null),
    effective: effective ?? null,
    usedBy: effective ? await profileUses(db, config, kind, name) : [],
    versions: history.map((v, i) => ({
      version: v.version,
      retired: v.retired,
      changedBy: v.changedBy,
      changedAt: v.changedAt,
      diff: profileDiff(history[i + 1]?.definition ?? (v.version === 1 ? (seeded ?? {}) : {}), v.retired ? null : v.definition),
    })),
  };
}
