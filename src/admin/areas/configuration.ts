/**
 * Profiles — certificate, key and CRL profiles in effect (built-ins, the configuration file
 * as seed, managed versions), created, cloned, edited and retired by Administrators through
 * src/ra/profiles.ts — and the effective settings.
 */
import type { CertProfile } from '../../config/index.ts';
import { paths } from '../../config/index.ts';
import { applyProfile, cloneProfile, profileUses, profileView, retireProfile } from '../../ra/profiles.ts';
import { PROFILE_KINDS, type ProfileKind } from '../../config/profile-set.ts';
import { CaError } from '../../core/errors.ts';
import * as stored from '../../db/repos/profiles.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { apiForm, fields, html, input, select, table, textarea, type Html } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';

const KIND_PROP = { type: 'string', enum: PROFILE_KINDS } as const;

function kindOf(value: string | undefined): ProfileKind {
  if (!PROFILE_KINDS.includes(value as ProfileKind)) throw new CaError('notFound', `no profile kind "${value}" (certificate, key, crl)`);
  return value as ProfileKind;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CaError('malformed', `the definition is not JSON: ${(e as Error).message}`, { rule: 'profile.json' });
  }
}

/** The profiles of one kind in effect, with their source and version. */
async function profileList(deps: AdminDeps, kind: ProfileKind) {
  const latest = (await stored.latest(deps.pool)).filter((s) => s.kind === kind);
  const names =
    kind === 'certificate'
      ? [...deps.config.profiles.keys()]
      : kind === 'key'
        ? [...deps.config.keyProfiles.keys()]
        : [...deps.config.crlProfiles.keys()];
  return Promise.all(names.map((name) => profileView(deps.pool, deps.config, kind, name))).then((views) => ({
    views,
    retired: latest
      .filter((s) => s.retired)
      .map((s) => ({ name: s.name, version: s.version, changedBy: s.changedBy, changedAt: s.changedAt })),
  }));
}

/** One profile's card: what is in effect, its versions, and the Administrator's actions. */
function profileCard(view: Awaited<ReturnType<typeof profileView>>, manage: boolean): Html {
  const base = `/admin/api/v1/profiles/${view.kind}/${encodeURIComponent(view.name)}`;
  const definition = JSON.stringify(view.definition ?? { name: view.name, extends: view.name }, null, 2);
  return html`<details class="profile" data-profile="${view.kind}:${view.name}">
    <summary><strong>${view.name}</strong> <small>${view.source}; used by ${view.usedBy.join(', ') || 'nothing'}</small></summary>
    <pre>${JSON.stringify(view.effective, null, 2)}</pre>
    ${
      view.versions.length
        ? table(
            view.versions,
            ['Version', 'By', 'At', 'Change'],
            (v) => [
              String(v.version),
              v.changedBy,
              v.changedAt,
              v.retired ? 'retired' : v.diff.map((d) => `${d.path}: ${JSON.stringify(d.from)} → ${JSON.stringify(d.to)}`).join('; '),
            ],
            { id: `versions-${view.kind}-${view.name}` },
          )
        : ''
    }
    ${
      manage
        ? html`${apiForm({
            method: 'POST',
            action: '/admin/api/v1/profiles',
            id: `edit-${view.kind}-${view.name}`,
            submit: 'Save as a new version',
            body: html`<input
                type="hidden"
                name="kind"
                value="${view.kind}"
              />${textarea('definition', "Definition (the configuration file's schema)", { value: definition, rows: 12 })}`,
          })}
          ${apiForm({ method: 'POST', action: `${base}/clone`, id: `clone-${view.kind}-${view.name}`, submit: 'Clone', body: input('as', 'New name', { required: true }) })}
          ${apiForm({ method: 'POST', action: `${base}/retire`, id: `retire-${view.kind}-${view.name}`, submit: 'Retire', danger: true, confirm: `Retire ${view.name}?`, body: html`` })}`
        : ''
    }
  </details>`;
}

function keysText(p: CertProfile): string {
  const k = p.keys;
  return [
    k.rsa ? `RSA ${k.rsa.minBits}-${k.rsa.maxBits}` : '',
    k.ec ? `EC ${k.ec.curves.join('/')}` : '',
    k.ed25519 ? 'Ed25519' : '',
    k.ed448 ? 'Ed448' : '',
  ]
    .filter(Boolean)
    .join(', ');
}

function settings(deps: AdminDeps) {
  const c = deps.config;
  return {
    home: c.home,
    listeners: {
      https: `${c.bind}:${c.httpsPort}`,
      http: `${c.bind}:${c.httpPort}`,
      admin: `${c.admin.bind}:${c.admin.port}`,
      publicHttpUrl: c.publicHttpUrl,
      publicHttpsUrl: c.publicHttpsUrl,
      tlsNames: c.tlsNames,
    },
    database: c.databaseUrl ? 'external (DATABASE_URL)' : `embedded, 127.0.0.1:${c.embeddedPostgresPort}`,
    temporal: {
      address: c.temporal.address,
      namespace: c.temporal.namespace,
      taskQueue: c.temporal.taskQueue,
      signingTaskQueue: c.temporal.signingTaskQueue,
      ui: c.admin.temporalUiUrl ?? null,
    },
    keys: {
      backend: c.keys.backend,
      pkcs11TokenLabel: c.keys.pkcs11.tokenLabel ?? null,
      passphrase: c.keys.passphrase ? 'set (CERTFLOW_KEY_PASSPHRASE)' : `file ${paths(c).keysDir}/passphrase (dev mode)`,
    },
    ca: c.ca,
    defaultProfile: c.defaultProfile,
    revocation: c.revocation,
    console: { idleSeconds: c.admin.idleSeconds, maxSessionSeconds: c.admin.maxSessionSeconds },
    audit: c.audit,
    acme: { ...c.acme, aliases: [...c.acme.aliases.values()] },
    est: { waitSeconds: c.est.waitSeconds, labels: [...c.est.labels.values()] },
    validation: c.validation,
  };
}

export function configurationArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/profiles',
      access: 'profiles:read',
      tag: 'configuration',
      summary: 'Profiles in effect (certificate by default; kind=key or crl), and where each is used',
      query: { kind: KIND_PROP },
      handler: async ({ deps, query }) => {
        const kind = (query.kind as ProfileKind | undefined) ?? 'certificate';
        if (kind === 'certificate') {
          return Promise.all(
            [...deps.config.profiles.values()].map(async (p) => ({
              ...p,
              usedBy: await profileUses(deps.pool, deps.config, 'certificate', p.name),
            })),
          );
        }
        return [...(kind === 'key' ? deps.config.keyProfiles : deps.config.crlProfiles).values()];
      },
    },
    {
      method: 'GET',
      path: '/profiles/{kind}/{name}',
      access: 'profiles:read',
      tag: 'configuration',
      summary: 'A profile: its definition, what is in effect, where it comes from and is used, every version with its diff',
      handler: async ({ deps, params }) => profileView(deps.pool, deps.config, kindOf(params.kind), params.name!),
    },
    {
      method: 'POST',
      path: '/profiles',
      access: 'profiles:manage',
      tag: 'configuration',
      summary:
        "Create or update a profile (a new version): `definition` is the profile as JSON, in the configuration file's schema; checked before it is saved, audited with the diff, in effect at once",
      body: {
        properties: {
          kind: KIND_PROP,
          definition: { type: 'string', minLength: 2, maxLength: 65_536, description: 'JSON of the profile' },
          expectedVersion: { type: 'integer', minimum: 0, description: 'refuse the change if the profile is at another version' },
        },
        required: ['kind', 'definition'],
      },
      handler: async ({ deps, body, who }) =>
        applyProfile(deps.pool, deps.config, body.kind, parseJson(body.definition), who.actor, { expectedVersion: body.expectedVersion }),
    },
    {
      method: 'POST',
      path: '/profiles/{kind}/{name}/clone',
      access: 'profiles:manage',
      tag: 'configuration',
      summary: 'Copy a profile under a new name',
      status: 201,
      body: {
        properties: { as: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } },
        required: ['as'],
      },
      handler: async ({ deps, params, body, who }) =>
        cloneProfile(deps.pool, deps.config, kindOf(params.kind), params.name!, body.as, who.actor),
    },
    {
      method: 'POST',
      path: '/profiles/{kind}/{name}/retire',
      access: 'profiles:manage',
      tag: 'configuration',
      summary: 'Retire a profile that nothing uses (its versions are kept)',
      handler: async ({ deps, params, who }) => retireProfile(deps.pool, deps.config, kindOf(params.kind), params.name!, who.actor),
    },
    {
      method: 'GET',
      path: '/settings',
      access: 'settings:read',
      tag: 'configuration',
      summary: 'Effective settings: listeners, database, Temporal, keys, CA names, revocation, console, ACME, EST, validation (no secrets)',
      handler: async ({ deps }) => settings(deps),
    },
  ];
  const pages: Page[] = [
    {
      path: '/profiles',
      access: 'profiles:read',
      title: 'Profiles',
      menu: { id: 'profiles', label: 'Profiles', group: 'Administration' },
      async render({ deps, principal }) {
        const manage = can(principal.role, 'profiles:manage');
        const profiles = [...deps.config.profiles.values()];
        const lists = await Promise.all(PROFILE_KINDS.map((k) => profileList(deps, k)));
        const titles: Record<ProfileKind, string> = { certificate: 'Certificate profiles', key: 'Key profiles', crl: 'CRL profiles' };
        return html`<p class="hint">
            Built-in profiles and the configuration file (<code>${deps.config.configFile ?? `${deps.config.home}/config.json`}</code>) are
            the seed; ${manage ? 'changes here' : 'Administrators change them here (or with `certflow profiles apply`); changes'} are new
            versions, checked against the configuration file's schema, audited with their diff and in effect at once, without a restart.
          </p>
          ${table(
            profiles,
            ['Profile', 'Validity', 'Keys', 'Key usage', 'Extended key usage', 'SANs', 'Used by'],
            (p) => [
              html`<strong>${p.name}</strong><br /><small>${p.description}</small>`,
              `${Math.round(p.validitySeconds / 86_400)} days`,
              keysText(p),
              p.keyUsage.join(', '),
              p.extKeyUsage.join(', '),
              Object.entries(p.san)
                .filter(([, v]) => v === true)
                .map(([k]) => k)
                .join(', '),
              lists[0]!.views.find((v) => v.name === p.name)?.usedBy.join(', ') ?? '',
            ],
            { id: 'profiles' },
          )}
          ${PROFILE_KINDS.map(
            (k, i) =>
              html`<section id="profiles-${k}">
                <h2>${titles[k]}</h2>
                ${lists[i]!.views.map((v) => profileCard(v, manage))}
                ${lists[i]!.retired.length ? html`<p class="hint">Retired: ${lists[i]!.retired.map((r) => `${r.name} (version ${r.version})`).join(', ')}</p>` : ''}
              </section>`,
          )}
          ${
            manage
              ? html`<section id="profile-new">
                  <h2>New profile</h2>
                  ${apiForm({
                    method: 'POST',
                    action: '/admin/api/v1/profiles',
                    id: 'new-profile',
                    submit: 'Create',
                    body: html`${select(
                      'kind',
                      'Kind',
                      PROFILE_KINDS.map((k): [string, string] => [k, titles[k]]),
                    )}
                    ${textarea('definition', 'Definition (JSON)', { rows: 10, placeholder: '{ "name": "iot", "extends": "device", "validitySeconds": 31536000 }' })}`,
                  })}
                </section>`
              : ''
          }`;
      },
    },
    {
      path: '/settings',
      access: 'settings:read',
      title: 'Settings',
      menu: { id: 'settings', label: 'Settings', group: 'Administration' },
      async render({ deps }) {
        const s = settings(deps);
        return html`<p class="hint">
            Effective settings of this console process (environment and configuration file); secrets are never shown.
          </p>
          <p>
            <a href="/settings/notifications" id="notifications-link">Notifications</a>: channels, thresholds, what was sent, dead letters,
            send a test.
          </p>
          ${fields([
            ['State directory', s.home],
            ['HTTPS / HTTP / console', `${s.listeners.https} / ${s.listeners.http} / ${s.listeners.admin}`],
            ['Public URLs', `${s.listeners.publicHttpsUrl}, ${s.listeners.publicHttpUrl}`],
            ['Database', s.database],
            [
              'Temporal',
              `${s.temporal.address} (namespace ${s.temporal.namespace}, task queues ${s.temporal.taskQueue} and ${s.temporal.signingTaskQueue})`,
            ],
            ['Key store', `${s.keys.backend}; passphrase ${s.keys.passphrase}`],
            ['Console sessions', `idle timeout ${s.console.idleSeconds} s, at most ${s.console.maxSessionSeconds} s`],
            ['Audit checkpoints', `every ${s.audit.checkpointSeconds} s`],
          ])}
          <pre id="settings">${JSON.stringify(s, null, 2)}</pre>`;
      },
    },
  ];
  return { routes, pages };
}
