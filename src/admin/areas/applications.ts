/**
 * External applications: EST clients (HTTP Basic, as `certflow est-client` manages them),
 * CMP clients (read from CMP's table when it exists), ACME EAB keys (as `certflow eab`).
 * Every change is audited in the transaction that makes it; passwords and MAC keys are
 * never stored in clear, logged or shown again.
 */
import type { Config } from '../../config/index.ts';
import { newEabKey } from '../../acme/eab.ts';
import { CaError } from '../../core/errors.ts';
import { withTransaction, type Queryable } from '../../db/pool.ts';
import * as consoleDb from '../../db/repos/console.ts';
import * as eabKeys from '../../db/repos/acme-eab.ts';
import * as estClients from '../../db/repos/est-clients.ts';
import type { EstClientRow } from '../../db/repos/est-clients.ts';
import { checkClientName } from '../../est/auth.ts';
import { checkEmailAddress } from '../../config/notifications.ts';
import { checkPasswordPolicy, hashPassword } from '../../est/password.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { record, type Actor } from '../auth.ts';
import { apiForm, badge, html, input, select, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';

/** The table CMP clients live in once CMP (issue 9) lands. */
const CMP_CLIENTS_TABLE = 'cmp_clients';

function estView(c: EstClientRow) {
  const { passwordHash: _hidden, ...rest } = c;
  return rest;
}

function checkProfile(config: Config, profile: string | undefined): void {
  if (profile !== undefined && !config.profiles.has(profile)) {
    throw new CaError('notFound', `unknown certificate profile "${profile}" (configured: ${[...config.profiles.keys()].join(', ')})`, {
      rule: 'profile.unknown',
    });
  }
}

function checkLabels(config: Config, labels: string[]): string[] {
  for (const l of labels) {
    if (!config.est.labels.has(l))
      throw new CaError(
        'notFound',
        `unknown EST label "${l}" (configured: ${[...config.est.labels.keys()].map((x) => x || "''").join(', ')})`,
        { rule: 'est.label.unknown' },
      );
  }
  return [...new Set(labels)];
}

async function changeEstClient(deps: AdminDeps, who: Actor, name: string, action: string, change: (db: Queryable) => Promise<boolean>) {
  await withTransaction(deps.pool, async (tx) => {
    if (!(await change(tx))) throw new CaError('notFound', `no EST client named "${name}"`, { rule: 'estClient.unknown' });
    await record(tx, who, action, name);
  });
  return { name, message: `EST client "${name}": ${action.split('.')[1]}` };
}

async function cmpClients(deps: AdminDeps) {
  if (!(await consoleDb.tableExists(deps.pool, CMP_CLIENTS_TABLE)))
    return { available: false, clients: [] as Array<Record<string, unknown>> };
  return { available: true, clients: await consoleDb.rowsWithoutSecrets(deps.pool, CMP_CLIENTS_TABLE) };
}

export function applicationsArea(): { routes: ApiRoute[]; pages: Page[] } {
  const nameParam = { type: 'string', maxLength: 100 } as const;
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/applications/est-clients',
      access: 'applications:read',
      tag: 'applications',
      summary: 'EST clients (never their passwords or hashes)',
      handler: async ({ deps }) => (await estClients.list(deps.pool)).map(estView),
    },
    {
      method: 'POST',
      path: '/applications/est-clients',
      access: 'applications:manage',
      tag: 'applications',
      summary: 'Register an EST client (HTTP Basic)',
      status: 201,
      body: {
        properties: {
          name: nameParam,
          password: { type: 'string', format: 'password', maxLength: 1024 },
          profile: { type: 'string', maxLength: 100 },
          labels: { type: 'array', maxItems: 50, maxLength: 100, description: "EST labels it may use ('' = /.well-known/est/); none: all" },
          requireApproval: { type: 'boolean' },
          email: { type: 'string', maxLength: 254, description: 'where notices about its certificates go (expiry)' },
        },
        required: ['name', 'password'],
      },
      async handler({ deps, who, body }) {
        checkClientName(body.name);
        if (body.email) checkEmailAddress(body.email);
        checkProfile(deps.config, body.profile || undefined);
        const labels = checkLabels(deps.config, body.labels ?? []);
        checkPasswordPolicy(body.password);
        const passwordHash = await hashPassword(body.password);
        const row = await withTransaction(deps.pool, async (tx) => {
          const stored = await estClients.insert(tx, {
            name: body.name,
            passwordHash,
            profile: body.profile || null,
            labels,
            requireApproval: Boolean(body.requireApproval),
            email: body.email || null,
          });
          await record(tx, who, 'estClient.add', body.name, {
            profile: stored.profile,
            labels,
            requireApproval: stored.requireApproval,
            email: stored.email,
          });
          return stored;
        });
        return { ...estView(row), message: `EST client "${row.name}" registered` };
      },
    },
    ...[false, true].map((enabled): ApiRoute => ({
      method: 'POST',
      path: `/applications/est-clients/{name}/${enabled ? 'enable' : 'disable'}`,
      access: 'applications:manage',
      tag: 'applications',
      summary: enabled ? 'Let a disabled EST client authenticate again' : 'Refuse an EST client (403) without deleting it',
      handler: async ({ deps, who, params }) =>
        changeEstClient(deps, who, params.name!, `estClient.${enabled ? 'enable' : 'disable'}`, (db) =>
          estClients.setEnabled(db, params.name!, enabled),
        ),
    })),
    {
      method: 'PUT',
      path: '/applications/est-clients/{name}/password',
      access: 'applications:manage',
      tag: 'applications',
      summary: "Replace an EST client's password",
      body: { properties: { password: { type: 'string', format: 'password', maxLength: 1024 } }, required: ['password'] },
      async handler({ deps, who, params, body }) {
        checkPasswordPolicy(body.password);
        const hash = await hashPassword(body.password);
        return changeEstClient(deps, who, params.name!, 'estClient.passwd', (db) => estClients.setPassword(db, params.name!, hash));
      },
    },
    {
      method: 'DELETE',
      path: '/applications/est-clients/{name}',
      access: 'applications:manage',
      tag: 'applications',
      summary: 'Delete an EST client: its credentials stop working at once',
      handler: async ({ deps, who, params }) =>
        changeEstClient(deps, who, params.name!, 'estClient.remove', (db) => estClients.remove(db, params.name!)),
    },
    {
      method: 'GET',
      path: '/applications/cmp-clients',
      access: 'applications:read',
      tag: 'applications',
      summary: 'CMP clients (once CMP is installed; secrets never shown)',
      handler: async ({ deps }) => cmpClients(deps),
    },
    {
      method: 'GET',
      path: '/applications/eab-keys',
      access: 'applications:read',
      tag: 'applications',
      summary: 'ACME external account binding keys: id, alias, the account that used it (never the MAC keys)',
      handler: async ({ deps }) =>
        (await eabKeys.list(deps.pool, {})).map((k) => ({
          kid: k.kid,
          alias: k.alias,
          accountId: k.accountId,
          createdAt: k.createdAt,
          usedAt: k.usedAt,
        })),
    },
    {
      method: 'POST',
      path: '/applications/eab-keys',
      access: 'applications:manage',
      tag: 'applications',
      summary: 'Create an EAB key id and MAC key for one new ACME account (the MAC key is shown once)',
      status: 201,
      body: { properties: { alias: { type: 'string', maxLength: 100, description: "ACME alias ('' = /acme/directory)" } } },
      async handler({ deps, who, body }) {
        const alias = body.alias ?? '';
        if (!deps.config.acme.aliases.has(alias)) {
          throw new CaError(
            'notFound',
            `unknown ACME alias "${alias}" (configured: ${[...deps.config.acme.aliases.keys()].map((a) => a || "''").join(', ')})`,
            { rule: 'acme.alias.unknown' },
          );
        }
        const { kid, hmacKey, hmacKeyEnc } = await newEabKey(deps.config);
        await withTransaction(deps.pool, async (tx) => {
          await eabKeys.insert(tx, { kid, alias, hmacKeyEnc });
          await record(tx, who, 'acme.eab.create', kid, { alias });
        });
        return { kid, hmacKey: hmacKey.toString('base64url'), alias, message: 'copy the MAC key now: it is not shown again' };
      },
    },
  ];

  const pages: Page[] = [
    {
      path: '/applications',
      access: 'applications:read',
      title: 'External applications',
      menu: { id: 'applications', label: 'External applications', group: 'Administration' },
      async render({ deps, principal }) {
        const manage = can(principal.role, 'applications:manage');
        const [est, cmp, eab] = await Promise.all([estClients.list(deps.pool), cmpClients(deps), eabKeys.list(deps.pool, {})]);
        const profiles = [...deps.config.profiles.keys()];
        const estActions = (c: EstClientRow) =>
          manage
            ? html`${apiForm({ method: 'POST', action: `/admin/api/v1/applications/est-clients/${encodeURIComponent(c.name)}/${c.enabled ? 'disable' : 'enable'}`, submit: c.enabled ? 'Disable' : 'Enable', inline: true, body: html`` })}${apiForm(
                {
                  method: 'DELETE',
                  action: `/admin/api/v1/applications/est-clients/${encodeURIComponent(c.name)}`,
                  submit: 'Remove',
                  inline: true,
                  danger: true,
                  confirm: `Remove EST client ${c.name}?`,
                  body: html``,
                },
              )}`
            : '';
        const cmpColumns = cmp.clients[0] ? Object.keys(cmp.clients[0]) : [];
        return html`<h2>EST clients</h2>
          ${table(
            est,
            ['Name', 'Enabled', 'Profile', 'Labels', 'Approval', 'Notices to', 'Created', ...(manage ? [''] : [])],
            (c) => [
              c.name,
              badge(c.enabled ? 'enabled' : 'disabled'),
              c.profile ?? "(the label's)",
              c.labels.length ? c.labels.map((l) => l || "''").join(', ') : '(all)',
              c.requireApproval ? 'always' : 'as the label says',
              c.email ?? '-',
              c.createdAt,
              ...(manage ? [estActions(c)] : []),
            ],
            { id: 'est-clients', empty: 'No EST clients.' },
          )}
          ${
            manage
              ? apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/applications/est-clients',
                  id: 'add-est-client',
                  submit: 'Register EST client',
                  body: html`${input('name', 'Name', { required: true })}${input('password', 'Password (12+ characters)', { type: 'password', required: true, autocomplete: 'new-password' })}
                    ${select('profile', 'Profile', [['', "the label's"], ...profiles.map((p): [string, string] => [p, p])])}
                    <label>Labels <input name="labels" data-type="array" placeholder="comma separated; empty: all" /></label>
                    ${input('email', 'Notices to (e-mail, optional)', { type: 'email' })}
                    <label><input type="checkbox" name="requireApproval" /> always require approval</label>`,
                })
              : ''
          }
          <h2>CMP clients</h2>
          ${
            cmp.available
              ? table(
                  cmp.clients,
                  cmpColumns,
                  (r) =>
                    cmpColumns.map((k) =>
                      r[k] instanceof Date ? (r[k] as Date) : Array.isArray(r[k]) ? (r[k] as unknown[]).join(', ') : String(r[k] ?? '-'),
                    ),
                  { id: 'cmp-clients', empty: 'No CMP clients.' },
                )
              : html`<p class="hint" id="cmp-clients">
                  CMP clients appear here once CMP is installed (<code>certflow cmp-client add</code>).
                </p>`
          }
          <h2>ACME external account binding keys</h2>
          ${table(eab, ['Key id', 'ACME alias', 'Bound to account', 'Created', 'Used'], (k) => [html`<code>${k.kid}</code>`, k.alias || "''", k.accountId, k.createdAt, k.usedAt], { id: 'eab-keys', empty: 'No EAB keys.' })}
          ${
            manage
              ? apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/applications/eab-keys',
                  id: 'create-eab',
                  submit: 'Create EAB key',
                  then: 'show',
                  body: select(
                    'alias',
                    'ACME directory',
                    [...deps.config.acme.aliases.keys()].map((a): [string, string] => [
                      a,
                      a === '' ? '/acme/directory' : `/acme/${a}/directory`,
                    ]),
                  ),
                })
              : ''
          }`;
      },
    },
  ];
  return { routes, pages };
}
