/** Users and roles: console users, API tokens, and the role x permission matrix. */
import { CaError } from '../../core/errors.ts';
import * as users from '../../db/repos/admin-users.ts';
import * as tokens from '../../db/repos/admin-tokens.ts';
import type { ApiRoute } from '../api.ts';
import {
  bindCertificate,
  createToken,
  createUser,
  resetPassword,
  revokeToken,
  setUserEnabled,
  setUserRole,
  tokenView,
  TOKEN_DEFAULT_DAYS,
  TOKEN_MAX_DAYS,
  userView,
} from '../auth.ts';
import { apiForm, badge, html, input, select, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can, MATRIX, PERMISSIONS, ROLE_TITLES, ROLES, type Permission } from '../roles.ts';
import { normalizeSerial } from './certificates.ts';

const ROLE_PROP = { type: 'string', enum: ROLES } as const;

async function requireUser(pool: Parameters<typeof users.get>[0], name: string) {
  const u = await users.get(pool, name);
  if (!u) throw new CaError('notFound', `no user named "${name}"`, { rule: 'user.unknown' });
  return u;
}

export function usersArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/users',
      access: 'users:read',
      tag: 'users',
      summary: 'Console users (never their password hashes)',
      handler: async ({ deps }) => (await users.list(deps.pool)).map(userView),
    },
    {
      method: 'POST',
      path: '/users',
      access: 'users:manage',
      tag: 'users',
      summary: 'Create a user with a role; the password is temporary (changed at first login) unless temporary=false',
      status: 201,
      body: {
        properties: {
          name: { type: 'string', maxLength: 64 },
          role: ROLE_PROP,
          password: { type: 'string', format: 'password', maxLength: 1024 },
          certificateSerial: { type: 'string', maxLength: 100, description: 'a client certificate of this CA that logs in as this user' },
          temporary: { type: 'boolean' },
        },
        required: ['name', 'role'],
      },
      async handler({ deps, who, body }) {
        const row = await createUser(deps.pool, who, {
          name: body.name,
          role: body.role,
          password: body.password || undefined,
          certSerial: body.certificateSerial ? normalizeSerial(body.certificateSerial) : undefined,
          mustChangePassword: body.password ? body.temporary !== false : false,
        });
        return { ...userView(row), message: `user "${row.name}" created` };
      },
    },
    ...[false, true].map((enabled): ApiRoute => ({
      method: 'POST',
      path: `/users/{name}/${enabled ? 'enable' : 'disable'}`,
      access: 'users:manage',
      tag: 'users',
      summary: enabled ? 'Enable a user' : 'Disable a user (their sessions end at once)',
      async handler({ deps, who, params }) {
        const row = await setUserEnabled(deps.pool, who, params.name!, enabled);
        return { ...userView(row), message: `user "${row.name}" ${enabled ? 'enabled' : 'disabled'}` };
      },
    })),
    {
      method: 'PUT',
      path: '/users/{name}/password',
      access: 'users:manage',
      tag: 'users',
      summary: "Set a user's password (temporary unless temporary=false); their sessions end",
      body: {
        properties: { password: { type: 'string', format: 'password', maxLength: 1024 }, temporary: { type: 'boolean' } },
        required: ['password'],
      },
      async handler({ deps, who, params, body }) {
        const row = await resetPassword(deps.pool, who, params.name!, body.password, { temporary: body.temporary !== false });
        return { ...userView(row), message: `password of "${row.name}" set` };
      },
    },
    {
      method: 'PUT',
      path: '/users/{name}/role',
      access: 'users:manage',
      tag: 'users',
      summary: "Change a user's role (their sessions end)",
      body: { properties: { role: ROLE_PROP }, required: ['role'] },
      async handler({ deps, who, params, body }) {
        const row = await setUserRole(deps.pool, who, params.name!, body.role);
        return { ...userView(row), message: `"${row.name}" is now ${ROLE_TITLES[row.role as keyof typeof ROLE_TITLES]}` };
      },
    },
    {
      method: 'PUT',
      path: '/users/{name}/certificate',
      access: 'users:manage',
      tag: 'users',
      summary: 'Bind a client certificate of this CA to a user (login by TLS client certificate); an empty serial unbinds',
      body: { properties: { serial: { type: 'string', maxLength: 100 } } },
      async handler({ deps, who, params, body }) {
        await requireUser(deps.pool, params.name!);
        const row = await bindCertificate(deps.pool, who, params.name!, body.serial ? normalizeSerial(body.serial) : null);
        return {
          ...userView(row),
          message: row.certSerial ? `certificate ${row.certSerial} bound to "${row.name}"` : `"${row.name}" has no certificate`,
        };
      },
    },
    {
      method: 'GET',
      path: '/tokens',
      access: 'users:read',
      tag: 'users',
      summary: 'API tokens (never their secrets)',
      handler: async ({ deps }) => (await tokens.list(deps.pool)).map(tokenView),
    },
    {
      method: 'POST',
      path: '/tokens',
      access: 'users:manage',
      tag: 'users',
      summary:
        'Create an API token of your own (it works while you are enabled and hold its role), bound to one role (default: yours) you hold; shown once',
      status: 201,
      body: {
        properties: {
          name: { type: 'string', maxLength: 64 },
          role: ROLE_PROP,
          expiresDays: { type: 'integer', minimum: 1, maximum: TOKEN_MAX_DAYS, description: `default ${TOKEN_DEFAULT_DAYS}` },
        },
        required: ['name'],
      },
      async handler({ deps, who, body, principal }) {
        const owner = principal.kind === 'session' ? principal.user.name : principal.token.owner!;
        const { token, row } = await createToken(deps.pool, who, {
          name: body.name,
          owner,
          role: body.role,
          expiresDays: body.expiresDays,
        });
        return { ...tokenView(row), token, message: 'copy the token now: it is not shown again' };
      },
    },
    {
      method: 'DELETE',
      path: '/tokens/{id}',
      access: 'users:manage',
      tag: 'users',
      summary: 'Revoke an API token',
      async handler({ deps, who, params }) {
        await revokeToken(deps.pool, who, params.id!);
        return { id: params.id, message: `token ${params.id} revoked` };
      },
    },
  ];

  const roleOptions = ROLES.map((r): [string, string] => [r, ROLE_TITLES[r]]);
  const pages: Page[] = [
    {
      path: '/users',
      access: 'users:read',
      title: 'Users and roles',
      menu: { id: 'users', label: 'Users and roles', group: 'Administration' },
      async render({ deps, principal }) {
        const manage = can(principal.role, 'users:manage');
        const [all, toks] = await Promise.all([users.list(deps.pool), tokens.list(deps.pool)]);
        const enc = encodeURIComponent;
        return html`<h2>Users</h2>
          ${table(
            all,
            ['Name', 'Role', 'Status', 'Login', 'Last login', 'Created by', ...(manage ? ['Manage'] : [])],
            (u) => [
              u.name,
              ROLE_TITLES[u.role as keyof typeof ROLE_TITLES] ?? u.role,
              html`${badge(u.enabled ? 'enabled' : 'disabled')}${u.mustChangePassword ? badge('password change due', 'pending') : ''}`,
              [u.passwordHash ? 'password' : '', u.certSerial ? `certificate ${u.certSerial}` : ''].filter(Boolean).join(' + '),
              u.lastLoginAt,
              u.createdBy,
              ...(manage
                ? [
                    html`${apiForm({ method: 'POST', action: `/admin/api/v1/users/${enc(u.name)}/${u.enabled ? 'disable' : 'enable'}`, submit: u.enabled ? 'Disable' : 'Enable', inline: true, danger: u.enabled, body: html`` })}
                    ${apiForm({ method: 'PUT', action: `/admin/api/v1/users/${enc(u.name)}/role`, submit: 'Set role', inline: true, body: select('role', '', roleOptions, u.role) })}
                    ${apiForm({ method: 'PUT', action: `/admin/api/v1/users/${enc(u.name)}/password`, submit: 'Set password', inline: true, body: input('password', '', { type: 'password', placeholder: 'temporary password', autocomplete: 'new-password' }) })}
                    ${apiForm({ method: 'PUT', action: `/admin/api/v1/users/${enc(u.name)}/certificate`, submit: 'Bind certificate', inline: true, body: input('serial', '', { placeholder: 'certificate serial (empty: none)', value: u.certSerial ?? '' }) })}`,
                  ]
                : []),
            ],
            { id: 'users' },
          )}
          ${
            manage
              ? apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/users',
                  id: 'add-user',
                  submit: 'Create user',
                  body: html`${input('name', 'Name', { required: true })}${select('role', 'Role', roleOptions, 'auditor')}${input('password', 'Temporary password (12+ characters)', { type: 'password', autocomplete: 'new-password' })}${input('certificateSerial', 'or client certificate serial')}`,
                })
              : ''
          }
          <h2>API tokens</h2>
          ${table(
            toks.map(tokenView),
            ['Id', 'Name', 'Role', 'User', 'Created by', 'Expires', 'Last used', 'Status', ...(manage ? [''] : [])],
            (t) => [
              html`<code>${t.id}</code>`,
              t.name,
              ROLE_TITLES[t.role as keyof typeof ROLE_TITLES] ?? t.role,
              t.owner ?? '(none: not usable)',
              t.createdBy,
              t.expiresAt,
              t.lastUsedAt,
              badge(t.active ? 'active' : t.revokedAt ? 'revoked' : 'expired'),
              ...(manage && t.active
                ? [
                    apiForm({
                      method: 'DELETE',
                      action: `/admin/api/v1/tokens/${t.id}`,
                      submit: 'Revoke',
                      inline: true,
                      danger: true,
                      confirm: `Revoke token ${t.name}?`,
                      body: html``,
                    }),
                  ]
                : manage
                  ? ['']
                  : []),
            ],
            { id: 'tokens', empty: 'No API tokens.' },
          )}
          ${
            manage
              ? apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/tokens',
                  id: 'create-token',
                  submit: 'Create API token',
                  then: 'show',
                  body: html`${input('name', 'Name', { required: true })}${select('role', 'Role (at most yours)', roleOptions, principal.role)}${input('expiresDays', `Expires after (days; default ${TOKEN_DEFAULT_DAYS}, at most ${TOKEN_MAX_DAYS})`, { type: 'number' })}`,
                })
              : ''
          }
          <h2>Roles</h2>
          <table id="role-matrix">
            <thead>
              <tr>
                <th>Permission</th>
                ${ROLES.map((r) => html`<th>${ROLE_TITLES[r]}</th>`)}
              </tr>
            </thead>
            <tbody>
              ${(Object.keys(PERMISSIONS) as Permission[]).map(
                (p) =>
                  html`<tr>
                    <td><code>${p}</code><br /><small>${PERMISSIONS[p]}</small></td>
                    ${ROLES.map((r) => html`<td class="${MATRIX[r].includes(p) ? 'yes' : 'no'}">${MATRIX[r].includes(p) ? '✓' : ''}</td>`)}
                  </tr>`,
              )}
            </tbody>
          </table>`;
      },
    },
  ];
  return { routes, pages };
}
