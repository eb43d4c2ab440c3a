/**
 * `certflow profiles ...`: certificate, key and CRL profiles. list and show read the
 * effective set (built-ins, the configuration file, managed versions); apply, clone and
 * retire make a new managed version (src/ra/profiles.ts), checked against the
 * configuration file's schema, audited with its diff, in effect in every running process
 * at once.
 */
import { Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { applyProfile, cloneProfile, loadManagedProfiles, profileView, retireProfile } from '../ra/profiles.ts';
import { PROFILE_KINDS, type ProfileKind } from '../config/profile-set.ts';
import { CaError } from '../core/errors.ts';
import * as stored from '../db/repos/profiles.ts';
import type { CliContext } from './context.ts';

const operator = () => `operator:${userInfo().username}`;
const kindOption = () =>
  new Option('--kind <kind>', 'certificate (default), key or crl').choices([...PROFILE_KINDS]).default('certificate');

/** The profiles a file holds: one certificate profile, or the configuration file's profile sections. */
function entriesOfFile(value: unknown): Array<{ kind: ProfileKind; definition: unknown }> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new CaError('malformed', 'the file must hold a JSON object');
  const v = value as Record<string, unknown>;
  if ('name' in v) return [{ kind: 'certificate', definition: v }];
  const sections: Array<[string, ProfileKind]> = [
    ['keyProfiles', 'key'],
    ['crlProfiles', 'crl'],
    ['profiles', 'certificate'],
  ];
  const unknown = Object.keys(v).filter((k) => !sections.some(([s]) => s === k));
  if (unknown.length) {
    throw new CaError(
      'malformed',
      `unknown key(s) ${unknown.join(', ')}: the file holds one certificate profile, or profiles / keyProfiles / crlProfiles arrays`,
    );
  }
  return sections.flatMap(([section, kind]) => {
    const list = v[section];
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new CaError('malformed', `${section} must be an array`);
    return list.map((definition) => ({ kind, definition }));
  });
}

export function registerProfileCommands(root: Command, ctx: CliContext): void {
  const profiles = root
    .command('profiles')
    .description('certificate, key and CRL profiles: list, show, apply (create or update), clone, retire');

  profiles
    .command('list')
    .description('the profiles in effect, where each comes from, and its version')
    .addOption(new Option('--kind <kind>', 'only this kind').choices([...PROFILE_KINDS]))
    .action(async (opts: { kind?: ProfileKind }) => {
      await ctx.withPool(async (pool, config) => {
        await loadManagedProfiles(config, pool);
        const latest = await stored.latest(pool);
        const rows: Array<Record<string, unknown>> = [];
        const add = (kind: ProfileKind, names: Iterable<string>) => {
          if (opts.kind && opts.kind !== kind) return;
          for (const name of names) {
            const v = latest.find((s) => s.kind === kind && s.name === name);
            rows.push({
              kind,
              name,
              version: v?.version ?? 0,
              source: v
                ? 'managed'
                : kind === 'certificate' && !config.profileSeed.profiles.some((e) => e.name === name)
                  ? 'built-in'
                  : 'configuration file',
            });
          }
          for (const r of latest.filter((s) => s.kind === kind && s.retired))
            rows.push({ kind, name: r.name, version: r.version, source: 'retired' });
        };
        add('certificate', config.profiles.keys());
        add('key', config.keyProfiles.keys());
        add('crl', config.crlProfiles.keys());
        if (ctx.json()) ctx.printJson(rows);
        else process.stdout.write(ctx.table(rows, ['kind', 'name', 'version', 'source']));
      });
    });

  profiles
    .command('show <name>')
    .description('a profile: its definition, what is in effect, where it is used, and every version with its diff')
    .addOption(kindOption())
    .action(async (name: string, opts: { kind: ProfileKind }) => {
      await ctx.withPool(async (pool, config) => {
        await loadManagedProfiles(config, pool);
        const view = await profileView(pool, config, opts.kind, name);
        if (ctx.json()) ctx.printJson(view);
        else {
          process.stdout.write(`${view.kind} profile ${view.name} (${view.source})\nused by: ${view.usedBy.join(', ') || '-'}\n`);
          process.stdout.write(`${JSON.stringify(view.effective, null, 2)}\n`);
          for (const v of view.versions) {
            process.stdout.write(
              `version ${v.version} ${v.retired ? '(retired) ' : ''}by ${v.changedBy} at ${v.changedAt.toISOString()}\n`,
            );
            for (const d of v.diff) process.stdout.write(`  ${d.path}: ${JSON.stringify(d.from)} -> ${JSON.stringify(d.to)}\n`);
          }
        }
      });
    });

  profiles
    .command('apply')
    .description(
      'create or update profiles from a JSON file: one certificate profile, or profiles / keyProfiles / crlProfiles arrays as in the configuration file',
    )
    .requiredOption('--file <json>', 'the JSON file')
    .action(async (opts: { file: string }) => {
      const text = await readFile(opts.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new CaError('malformed', `cannot read ${opts.file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
      });
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new CaError('malformed', `${opts.file} is not JSON: ${(e as Error).message}`);
      }
      await ctx.withPool(async (pool, config) => {
        await loadManagedProfiles(config, pool);
        const results = [];
        for (const { kind, definition } of entriesOfFile(value)) {
          try {
            results.push(await applyProfile(pool, config, kind, definition, operator()));
          } catch (e) {
            if (!CaError.is(e, 'conflict') || (e as CaError).rule !== 'profile.unchanged') throw e;
            results.push({ kind, name: (definition as { name?: string }).name, unchanged: true, message: (e as Error).message });
          }
        }
        if (ctx.json()) ctx.printJson(results);
        else for (const r of results) ctx.say(r.message);
      });
    });

  profiles
    .command('clone <name>')
    .description('copy a profile under a new name')
    .requiredOption('--as <new-name>', 'the new profile name')
    .addOption(kindOption())
    .action(async (name: string, opts: { as: string; kind: ProfileKind }) => {
      await ctx.withPool(async (pool, config) => {
        await loadManagedProfiles(config, pool);
        const r = await cloneProfile(pool, config, opts.kind, name, opts.as, operator());
        if (ctx.json()) ctx.printJson(r);
        else ctx.say(r.message);
      });
    });

  profiles
    .command('retire <name>')
    .description('retire a profile that nothing uses (its versions are kept)')
    .addOption(kindOption())
    .action(async (name: string, opts: { kind: ProfileKind }) => {
      await ctx.withPool(async (pool, config) => {
        await loadManagedProfiles(config, pool);
        const r = await retireProfile(pool, config, opts.kind, name, operator());
        if (ctx.json()) ctx.printJson(r);
        else ctx.say(r.message);
      });
    });
}
