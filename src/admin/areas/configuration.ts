/**
 * Certificate profiles (the effective configuration: built-ins merged with the
 * configuration file; read-only — edit the file and restart) and the effective settings.
 */
import type { CertProfile } from '../../config/index.ts';
import { paths } from '../../config/index.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { fields, html, table } from '../html.ts';
import type { Page } from '../pages.ts';

function profileUse(deps: AdminDeps, name: string): string[] {
  const uses: string[] = [];
  if (deps.config.defaultProfile === name) uses.push('default');
  for (const a of deps.config.acme.aliases.values())
    if (a.profile === name || Object.values(a.profiles).includes(name)) uses.push(`ACME ${a.name ? `/acme/${a.name}` : '/acme'}`);
  for (const l of deps.config.est.labels.values())
    if (l.profile === name) uses.push(`EST ${l.name ? `/.well-known/est/${l.name}` : '/.well-known/est'}`);
  return uses;
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
      summary: 'Certificate profiles as configured (built-ins merged with the configuration file), and where each is used',
      handler: async ({ deps }) => [...deps.config.profiles.values()].map((p) => ({ ...p, usedBy: profileUse(deps, p.name) })),
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
      title: 'Certificate profiles',
      menu: { id: 'profiles', label: 'Profiles', group: 'Administration' },
      async render({ deps }) {
        const profiles = [...deps.config.profiles.values()];
        return html`<p class="hint">
            Read-only: profiles come from the built-ins and the configuration file (<code>${deps.config.home}/config.json</code> or
            <code>CERTFLOW_CONFIG</code>); change the file and restart the worker and server.
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
              profileUse(deps, p.name).join(', '),
            ],
            { id: 'profiles' },
          )}
          ${profiles.map(
            (p) =>
              html`<details>
                <summary>${p.name}: effective configuration</summary>
                <pre>${JSON.stringify(p, null, 2)}</pre>
              </details>`,
          )}`;
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
