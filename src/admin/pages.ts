/**
 * The console's pages: server-rendered HTML from the same functions the API handlers use.
 * Every page has an access rule (checked like the API's: 403 and an access.denied audit
 * entry without the permission); the menu shows the pages the role may open. Changes go
 * through the API (forms submitted as JSON by /assets/console.js).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Principal } from './auth.ts';
import { actorOf, type Actor } from './auth.ts';
import { authorize, Download, type Access, type AdminDeps } from './api.ts';
import { html, raw, type Html } from './html.ts';
import { can, ROLE_TITLES } from './roles.ts';

export interface PageRequest {
  deps: AdminDeps;
  principal: Principal;
  who: Actor;
  params: Record<string, string>;
  query: Record<string, string>;
  ctx: Context;
}

export const MENU_GROUPS = ['Overview', 'Certificates', 'Reports', 'Administration'] as const;

export interface Page {
  /** Koa path: /certificates/:serial */
  path: string;
  access: Access;
  title: string | ((req: PageRequest) => string);
  menu?: { id: string; label: string; group: (typeof MENU_GROUPS)[number] };
  render(req: PageRequest): Promise<Html | Download>;
}

function menuFor(principal: Principal, pages: Page[]): Page[] {
  return pages.filter((p) => p.menu && (p.access === 'authenticated' || p.access === 'public' || can(principal.role, p.access)));
}

function who(principal: Principal): string {
  return principal.kind === 'session' ? principal.user.name : `token ${principal.token.name}`;
}

export function layout(opts: { title: string; body: Html; principal?: Principal; pages: Page[]; current?: string; csrf?: string }): string {
  const p = opts.principal;
  const menu = p
    ? MENU_GROUPS.map((group) => {
        const items = menuFor(p, opts.pages).filter((x) => x.menu!.group === group);
        if (!items.length) return html``;
        return html`<div class="group">
          <h2>${group}</h2>
          <ul>
            ${items.map(
              (x) =>
                html`<li>
                  <a href="${x.path}" data-menu="${x.menu!.id}" ${x.path === opts.current ? raw(' aria-current="page"') : ''}
                    >${x.menu!.label}</a
                  >
                </li>`,
            )}
          </ul>
        </div>`;
      })
    : html``;
  const doc = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <link rel="icon" href="data:," />
        <title>${opts.title} · certflow console</title>
        ${opts.csrf ? html`<meta name="csrf-token" content="${opts.csrf}" />` : ''}
        <link rel="stylesheet" href="/assets/console.css" />
        <script src="/assets/chart.umd.min.js" defer></script>
        <script src="/assets/console.js" defer></script>
      </head>
      <body>
        <header>
          <a class="brand" href="/">certflow console</a>${
            p
              ? html`<span class="who" id="who">${who(p)} · <span id="role">${ROLE_TITLES[p.role]}</span></span>
                  <a href="/account" data-menu="account">Account</a>
                  <form class="api inline" data-api-method="DELETE" data-api="/admin/api/v1/session" data-then="/login">
                    <button type="submit" id="logout">Log out</button>
                  </form>`
              : ''
          }
        </header>
        ${p ? html`<nav id="menu">${menu}</nav>` : ''}
        <main>
          <h1>${opts.title}</h1>
          <div id="flash" role="status" hidden></div>
          ${opts.body}
        </main>
      </body>
    </html>`;
  return doc.value;
}

export function pageRouter(deps: AdminDeps, pages: Page[]): Router {
  const router = new Router();
  for (const page of pages) {
    router.get(page.path, async (ctx) => {
      const principal = ctx.state.principal as Principal | undefined;
      if (!principal && page.access !== 'public') {
        ctx.redirect(`/login?next=${encodeURIComponent(ctx.originalUrl)}`);
        return;
      }
      if (principal?.kind === 'session' && principal.user.mustChangePassword && page.path !== '/account') {
        ctx.redirect('/account');
        return;
      }
      await authorize(deps, ctx, page.access, `page ${page.path}`);
      const req: PageRequest = {
        deps,
        principal: principal!,
        who: principal ? actorOf(principal, ctx.state.requestId as string) : { actor: 'anonymous', role: null },
        params: ctx.params as Record<string, string>,
        query: Object.fromEntries(Object.entries(ctx.query).map(([k, v]) => [k, Array.isArray(v) ? v[0]! : (v ?? '')])),
        ctx,
      };
      const body = await page.render(req);
      if (body instanceof Download) {
        ctx.type = body.type;
        if (body.filename) ctx.attachment(body.filename);
        ctx.body = body.body;
        return;
      }
      const title = typeof page.title === 'function' ? page.title(req) : page.title;
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = layout({
        title,
        body,
        principal,
        pages,
        current: page.path,
        csrf: principal?.kind === 'session' ? principal.csrfToken : undefined,
      });
    });
  }
  return router;
}
