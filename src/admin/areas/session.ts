/** Logging in and out (password or TLS client certificate), one's own account, the role matrix. */
import type { Context } from 'koa';
import { CaError } from '../../core/errors.ts';
import { apiForm, fields, html, input, table } from '../html.ts';
import type { ApiRoute } from '../api.ts';
import type { Page } from '../pages.ts';
import { changeOwnPassword, login, loginWithCertificate, logout, type AuthSettings, type NewSession, type Principal } from '../auth.ts';
import { SESSION_COOKIE } from '../app.ts';
import { MATRIX, PERMISSIONS, ROLE_TITLES, ROLES, type Permission } from '../roles.ts';
import { localRedirectTarget } from '../redirect.ts';
import { verifiedPeer, type PeerCertificate } from '../tls-login.ts';

/** Sets the session cookie of a login and answers with who logged in and the CSRF token. */
function started(ctx: Context, s: NewSession, settings: AuthSettings) {
  ctx.cookies.set(SESSION_COOKIE, s.cookie, {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: settings.maxSessionSeconds * 1000,
    overwrite: true,
  });
  return { name: s.user.name, role: s.user.role, csrfToken: s.csrfToken, mustChangePassword: s.user.mustChangePassword };
}

/** A login must come from the console itself (no cross-site login: the body is JSON and the Origin ours). */
function sameOrigin(ctx: Context): void {
  const origin = ctx.get('Origin');
  if (origin && origin !== `${ctx.protocol}://${ctx.host}`)
    throw new CaError('forbidden', `cross-origin login from ${origin} refused`, { rule: 'csrf.origin' });
}

function sessionView(p: Principal) {
  return {
    kind: p.kind,
    name: p.kind === 'session' ? p.user.name : p.token.name,
    role: p.role,
    roleTitle: ROLE_TITLES[p.role],
    permissions: MATRIX[p.role],
    ...(p.kind === 'session'
      ? { csrfToken: p.csrfToken, mustChangePassword: p.user.mustChangePassword, authMethod: p.authMethod }
      : { tokenId: p.token.id }),
  };
}

export function sessionArea(settings: AuthSettings): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'POST',
      path: '/session',
      access: 'public',
      tag: 'session',
      summary: 'Log in with user name and password; sets the session cookie and returns the CSRF token',
      body: {
        properties: { name: { type: 'string', maxLength: 200 }, password: { type: 'string', format: 'password', maxLength: 1024 } },
        required: ['name', 'password'],
      },
      async handler({ deps, body, ctx }) {
        sameOrigin(ctx);
        const client = { ip: ctx.ip, userAgent: ctx.get('User-Agent'), requestId: ctx.state.requestId as string };
        return started(ctx, await login(deps.pool, { name: body.name, password: body.password, ...client }, settings), settings);
      },
    },
    {
      method: 'POST',
      path: '/session/certificate',
      access: 'public',
      tag: 'session',
      summary: 'Log in with the TLS client certificate of this connection (issued by this CA, bound to a user)',
      async handler({ deps, ctx }) {
        sameOrigin(ctx);
        const peer = await verifiedPeer(deps.pool, ctx.state.peer as PeerCertificate | undefined);
        const client = { ip: ctx.ip, userAgent: ctx.get('User-Agent'), requestId: ctx.state.requestId as string };
        return started(ctx, await loginWithCertificate(deps.pool, { serial: peer.serial, ...client }, settings), settings);
      },
    },
    {
      method: 'GET',
      path: '/session',
      access: 'authenticated',
      tag: 'session',
      summary: 'Who is logged in: name, role, permissions (and the CSRF token of a session)',
      beforePasswordChange: true,
      async handler({ principal }) {
        return sessionView(principal);
      },
    },
    {
      method: 'DELETE',
      path: '/session',
      access: 'authenticated',
      tag: 'session',
      summary: 'Log out (ends the session)',
      beforePasswordChange: true,
      async handler({ deps, principal, ctx }) {
        if (principal.kind !== 'session')
          throw new CaError('malformed', 'an API token has no session to end (revoke the token instead)', { rule: 'session.token' });
        await logout(deps.pool, principal, ctx.state.requestId);
        ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: 0, overwrite: true });
        return { message: 'logged out' };
      },
    },
    {
      method: 'PUT',
      path: '/account/password',
      access: 'authenticated',
      tag: 'session',
      summary: 'Change your own password (other sessions of yours end)',
      beforePasswordChange: true,
      body: {
        properties: {
          current: { type: 'string', format: 'password', maxLength: 1024 },
          password: { type: 'string', format: 'password', maxLength: 1024 },
        },
        required: ['current', 'password'],
      },
      async handler({ deps, principal, who, body }) {
        if (principal.kind !== 'session') throw new CaError('malformed', 'API tokens have no password', { rule: 'session.token' });
        await changeOwnPassword(deps.pool, who, principal.user.name, body.current, body.password, principal.idHash);
        return { message: 'password changed' };
      },
    },
    {
      method: 'GET',
      path: '/roles',
      access: 'authenticated',
      tag: 'session',
      summary: 'The roles and their permissions',
      async handler() {
        return {
          roles: ROLES.map((r) => ({ role: r, title: ROLE_TITLES[r], permissions: MATRIX[r] })),
          permissions: PERMISSIONS,
        };
      },
    },
  ];

  const pages: Page[] = [
    {
      path: '/login',
      access: 'public',
      title: 'Log in',
      async render({ deps, ctx }) {
        const next = localRedirectTarget(ctx.query.next);
        let certLogin = html``;
        const peer = ctx.state.peer as PeerCertificate | undefined;
        if (peer) {
          const verified = await verifiedPeer(deps.pool, peer).catch((e: Error) => e);
          certLogin =
            verified instanceof Error
              ? html`<p class="hint">Client certificate not usable: ${verified.message}</p>`
              : apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/session/certificate',
                  body: html`<p>Certificate ${verified.subject} (${verified.serial})</p>`,
                  submit: 'Log in with this certificate',
                  then: next,
                  id: 'cert-login',
                });
        }
        return html`<section class="login">
          ${apiForm({
            method: 'POST',
            action: '/admin/api/v1/session',
            id: 'login',
            then: next,
            submit: 'Log in',
            body: html`${input('name', 'User name', { required: true, autocomplete: 'username' })}${input('password', 'Password', { type: 'password', required: true, autocomplete: 'current-password' })}`,
          })}
          ${certLogin}
          <p class="hint">
            The first CA Administrator is created with <code>certflow users add --name NAME --role ca-admin --password -</code> (or printed
            once by <code>npm start</code>).
          </p>
        </section>`;
      },
    },
    {
      path: '/account',
      access: 'authenticated',
      title: 'Account',
      async render({ principal }) {
        if (principal.kind !== 'session') return html`<p>Logged in with API token ${principal.token.name} (${principal.token.id}).</p>`;
        const u = principal.user;
        return html`${u.mustChangePassword ? html`<p class="warning" id="must-change">Your password was set by an administrator: choose your own before you continue.</p>` : ''}
          ${fields([
            ['User', u.name],
            ['Role', ROLE_TITLES[principal.role]],
            ['Logged in with', principal.authMethod],
            ['Client certificate', u.certSerial],
            ['Last login', u.lastLoginAt],
          ])}
          <h2>Change password</h2>
          ${apiForm({
            method: 'PUT',
            action: '/admin/api/v1/account/password',
            id: 'change-password',
            submit: 'Change password',
            then: '/',
            body: html`${input('current', 'Current password', { type: 'password', required: true, autocomplete: 'current-password' })}${input('password', 'New password (12 characters or more)', { type: 'password', required: true, autocomplete: 'new-password' })}`,
          })}
          <h2>What your role may do</h2>
          ${table(MATRIX[principal.role] as Permission[], ['Permission', 'Meaning'], (p) => [p, PERMISSIONS[p]])}`;
      },
    },
  ];
  return { routes, pages };
}
