/**
 * Requests: ACME orders and EST/CMP/operator enrollments with state filters, the stuck ones
 * (src/db/repos/stuck.ts) first and why they wait; the stuck and the waiting ones on their
 * own; retry (src/ra/approvals.ts, as `certflow requests|orders retry`) and order cancel
 * (the order workflow's Update, as `certflow orders cancel`); the approvals queue (the
 * enrollment workflow's decide Update, as `certflow approvals` sends it).
 */
import { CaError, errorMessage } from '../../core/errors.ts';
import { authzWorkflowId, WORKFLOWS } from '../../../workflows/api.ts';
import * as orders from '../../db/repos/acme-orders.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { REQUEST_STATES } from '../../db/repos/requests.ts';
import {
  describeDuration,
  PROTOCOLS,
  STUCK_REASONS,
  stuckRequests,
  WAITING_ON,
  waitingRequests,
  type RequestCondition,
} from '../../db/repos/stuck.ts';
import { cancelOrder, orderLastError } from '../../ra/acme.ts';
import { awaitingApproval, decideRequest, retryRequest } from '../../ra/approvals.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { record, type Actor } from '../auth.ts';
import { apiForm, badge, fields, html, input, link, select, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';
import { certLink, workflowLink } from './links.ts';
import { conditionsTable, conditionsView } from './stuck.ts';

const ORDER_STATES = ['pending', 'ready', 'processing', 'valid', 'invalid'] as const;

/** The stuck ones among the orders (protocol acme) or the enrollments, by id. */
async function stuckById(deps: AdminDeps, acme: boolean): Promise<Map<string, RequestCondition>> {
  const stuck = await stuckRequests(deps.pool, deps.config.stuck, acme ? { protocol: 'acme' } : {});
  return new Map(stuck.filter((e) => (e.kind === 'order') === acme).map((e) => [e.id, e]));
}

async function listOrders(deps: AdminDeps, q: { state?: string; stuck?: boolean; limit?: number }) {
  const stuck = await stuckById(deps, true);
  const ids = [...stuck.keys()];
  const rows = await orders.findOrders(deps.pool, { status: q.state, ids: q.stuck ? ids : undefined, first: ids, limit: q.limit ?? 100 });
  return rows.map((o) => ({
    id: o.id,
    status: o.status,
    stuck: stuck.has(o.id),
    stuckReason: stuck.get(o.id)?.reason ?? null,
    identifiers: o.identifiers.map((i) => `${i.type}:${i.value}`),
    account: o.accountId,
    profile: o.profile,
    serial: o.serial,
    error: o.error?.detail ?? null,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    expiresAt: o.expiresAt,
    workflowId: WORKFLOWS.acmeOrder.id(o.id),
  }));
}

async function listEnrollments(
  deps: AdminDeps,
  q: { state?: string; protocol?: string; stuck?: boolean; limit?: number; offset?: number },
) {
  const stuck = await stuckById(deps, false);
  const ids = [...stuck.keys()];
  const rows = await consoleDb.listEnrollments(deps.pool, { ...q, ids: q.stuck ? ids : undefined, first: ids });
  return rows.map((e) => ({ ...e, stuck: stuck.has(e.id), stuckReason: stuck.get(e.id)?.reason ?? null }));
}

async function orderDetail(deps: AdminDeps, id: string) {
  const o = await orders.getOrder(deps.pool, id);
  if (!o) throw new CaError('notFound', `no ACME order ${id}`, { rule: 'order.unknown' });
  const [authzs, stuck, waiting] = await Promise.all([
    orders.getAuthzs(deps.pool, o.authzIds),
    stuckRequests(deps.pool, deps.config.stuck, { ids: [id], protocol: 'acme' }),
    waitingRequests(deps.pool, deps.config.stuck, { ids: [id], protocol: 'acme' }),
  ]);
  let lastError: string | null;
  try {
    lastError = await orderLastError(deps, id);
  } catch (e) {
    lastError = `(Temporal: ${errorMessage(e)})`;
  }
  return {
    ...o,
    identifiers: o.identifiers.map((i) => `${i.type}:${i.value}`),
    error: o.error,
    lastError,
    /** Stuck or waiting, by the one definition (src/db/repos/stuck.ts); null: moving along or finished. */
    condition: stuck[0] ?? waiting[0] ?? null,
    workflowId: WORKFLOWS.acmeOrder.id(o.id),
    // Authorizations an order created live in its workflow; the others have their own.
    authorizations: authzs.map((a) => ({ ...a, workflowId: authzWorkflowId(o.id, a) })),
  };
}

/** Signs again or validates again now (as `certflow orders retry` / `requests retry`). */
async function retry(deps: AdminDeps, who: Actor, kind: 'order' | 'request', id: string) {
  const done = await retryRequest(deps, deps.pool, { id, kind }, who.actor);
  await record(
    deps.pool,
    who,
    kind === 'order' ? 'order.retry' : 'request.retry',
    id,
    done.authorizations ? { authorizations: done.authorizations } : {},
  );
  return done;
}

/** Makes an unfinished order invalid (as `certflow orders cancel`). */
async function cancel(deps: AdminDeps, who: Actor, id: string, reason?: string) {
  if (!(await orders.getOrder(deps.pool, id))) throw new CaError('notFound', `no ACME order ${id}`, { rule: 'order.unknown' });
  await cancelOrder(deps, id, who.actor, reason);
  await record(deps.pool, who, 'order.cancel', id, { reason });
  return { message: `order ${id} canceled` };
}

async function decideAsUser(deps: AdminDeps, who: Actor, id: string, approve: boolean, reason?: string) {
  // Audited by the workflow's projection (request.approve / request.reject, actor = who.actor).
  const state = await decideRequest(deps, id, { approve, by: who.actor, reason });
  return { id, state, message: approve ? `approved ${id}: it is being signed` : `rejected ${id}` };
}

const approvals = (deps: AdminDeps) => awaitingApproval(deps.pool, 500);

export function requestsArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/requests/orders',
      access: 'requests:read',
      tag: 'requests',
      summary:
        'ACME orders, stuck ones first (stuck: validating past the retry window, processing past the signing bound, open past expiry)',
      query: {
        state: { type: 'string', enum: ORDER_STATES },
        stuck: { type: 'boolean' },
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
      },
      handler: async ({ deps, query }) =>
        listOrders(deps, { state: query.state as string, stuck: query.stuck as boolean, limit: query.limit as number }),
    },
    {
      method: 'GET',
      path: '/requests/orders/{id}',
      access: 'requests:read',
      tag: 'requests',
      summary: 'One ACME order with its authorizations, challenges and last error',
      handler: async ({ deps, params }) => orderDetail(deps, params.id!),
    },
    {
      method: 'POST',
      path: '/requests/orders/{id}/retry',
      access: 'requests:manage',
      tag: 'requests',
      summary: 'Sign a processing order again now (a server fault fixed), or validate its challenges that wait for their next retry now',
      handler: async ({ deps, who, params }) => retry(deps, who, 'order', params.id!),
    },
    {
      method: 'POST',
      path: '/requests/orders/{id}/cancel',
      access: 'requests:manage',
      tag: 'requests',
      summary: 'Make an unfinished order invalid',
      body: { properties: { reason: { type: 'string', maxLength: 500 } } },
      handler: async ({ deps, who, params, body }) => cancel(deps, who, params.id!, body.reason),
    },
    {
      method: 'GET',
      path: '/requests/enrollments',
      access: 'requests:read',
      tag: 'requests',
      summary: 'EST, CMP and operator requests, stuck ones first',
      query: {
        state: { type: 'string', enum: REQUEST_STATES },
        protocol: { type: 'string', enum: ['est', 'cmp', 'operator'] },
        stuck: { type: 'boolean' },
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        offset: { type: 'integer', minimum: 0 },
      },
      handler: async ({ deps, query }) =>
        listEnrollments(deps, {
          state: query.state as string,
          protocol: query.protocol as string,
          stuck: query.stuck as boolean,
          limit: query.limit as number,
          offset: query.offset as number,
        }),
    },
    {
      method: 'POST',
      path: '/requests/enrollments/{id}/retry',
      access: 'requests:manage',
      tag: 'requests',
      summary: 'Sign a request stalled by a server fault again now (once the fault is fixed)',
      handler: async ({ deps, who, params }) => retry(deps, who, 'request', params.id!),
    },
    {
      method: 'GET',
      path: '/requests/stuck',
      access: 'requests:read',
      tag: 'requests',
      summary:
        'Stuck requests of every protocol, longest stuck first: why (the last error), since when, the workflow and the actions your role allows',
      query: {
        protocol: { type: 'string', enum: PROTOCOLS },
        reason: { type: 'string', enum: STUCK_REASONS },
        limit: { type: 'integer', minimum: 1, maximum: 10000 },
      },
      handler: async ({ deps, principal, query }) =>
        conditionsView(deps, principal.role, 'stuck', {
          protocol: query.protocol as string,
          reason: query.reason as (typeof STUCK_REASONS)[number],
          limit: query.limit as number,
        }),
    },
    {
      method: 'GET',
      path: '/requests/waiting',
      access: 'requests:read',
      tag: 'requests',
      summary: 'Requests waiting for a person (approval) or for their client, longest waiting first, with how long',
      query: {
        protocol: { type: 'string', enum: PROTOCOLS },
        on: { type: 'string', enum: WAITING_ON },
        limit: { type: 'integer', minimum: 1, maximum: 10000 },
      },
      handler: async ({ deps, principal, query }) =>
        conditionsView(deps, principal.role, 'waiting', {
          protocol: query.protocol as string,
          on: query.on as (typeof WAITING_ON)[number],
          limit: query.limit as number,
        }),
    },
    {
      method: 'GET',
      path: '/approvals',
      access: 'requests:read',
      tag: 'requests',
      summary: 'Enrollments waiting for an operator',
      handler: async ({ deps }) => approvals(deps),
    },
    {
      method: 'POST',
      path: '/approvals/{id}/approve',
      access: 'requests:manage',
      tag: 'requests',
      summary: 'Approve an enrollment: it is signed at once',
      handler: async ({ deps, who, params }) => decideAsUser(deps, who, params.id!, true),
    },
    {
      method: 'POST',
      path: '/approvals/{id}/reject',
      access: 'requests:manage',
      tag: 'requests',
      summary: 'Reject an enrollment (the reason is shown to the requester)',
      body: { properties: { reason: { type: 'string', maxLength: 500 } } },
      handler: async ({ deps, who, params, body }) => decideAsUser(deps, who, params.id!, false, body.reason),
    },
  ];

  const pages: Page[] = [
    {
      path: '/requests',
      access: 'requests:read',
      title: 'Requests',
      menu: { id: 'requests', label: 'Requests', group: 'Certificates' },
      async render({ deps, query, principal }) {
        const protocol = (PROTOCOLS as readonly string[]).includes(query.protocol ?? '') ? query.protocol : undefined;
        const on = (WAITING_ON as readonly string[]).includes(query.waiting ?? '')
          ? (query.waiting as (typeof WAITING_ON)[number])
          : undefined;
        const filters = html`<form class="filters" method="get" action="/requests">
          ${select('protocol', 'Protocol', [['', 'any'], ...PROTOCOLS.map((p): [string, string] => [p, p === 'operator' ? p : p.toUpperCase()])], query.protocol)}
          ${select(
            'stuck',
            'Only stuck',
            [
              ['', 'no'],
              ['1', 'yes'],
            ],
            query.stuck,
          )}
          ${select(
            'waiting',
            'Only waiting for',
            [
              ['', '-'],
              ['person', 'a person'],
              ['client', 'the client'],
            ],
            query.waiting,
          )}
          ${select('orderState', 'Order state', [['', 'any'], ...ORDER_STATES.map((s): [string, string] => [s, s])], query.orderState)}
          ${select('state', 'Enrollment state', [['', 'any'], ...REQUEST_STATES.map((s): [string, string] => [s, s])], query.state)}
          <button type="submit">Filter</button>
        </form>`;
        // Only stuck / only waiting: the one definition's list, as on the dashboard and in `certflow requests list --stuck`.
        if (query.stuck === '1' || on) {
          const which = query.stuck === '1' ? 'stuck' : 'waiting';
          const rows = await conditionsView(deps, principal.role, which, { protocol, on });
          const title = which === 'stuck' ? 'Stuck requests' : on === 'person' ? 'Waiting for a person' : 'Waiting for the client';
          return html`${filters}
            <h2>${title}</h2>
            ${conditionsTable(deps, rows, which)}`;
        }
        const showOrders = !protocol || protocol === 'acme';
        const showEnrollments = protocol !== 'acme';
        const [stuck, orderRows, enrollments] = await Promise.all([
          conditionsView(deps, principal.role, 'stuck', { protocol, limit: 50 }),
          showOrders ? listOrders(deps, { state: query.orderState || undefined }) : [],
          showEnrollments ? listEnrollments(deps, { state: query.state || undefined, protocol, limit: 200 }) : [],
        ]);
        const manage = can(principal.role, 'requests:manage');
        return html`${filters}
          <h2>Stuck requests</h2>
          ${conditionsTable(deps, stuck, 'stuck')}
          ${
            showOrders
              ? html`<h2>ACME orders</h2>
                  ${table(
                    orderRows,
                    ['Order', 'Status', 'Identifiers', 'Account', 'Updated', 'Error', 'Certificate', 'Workflow', ''],
                    (o) => [
                      link(`/requests/orders/${encodeURIComponent(o.id)}`, o.id),
                      html`${badge(o.status)}${o.stuck ? badge(o.stuckReason!, 'stuck') : ''}`,
                      o.identifiers.join(', '),
                      o.account,
                      o.updatedAt,
                      o.error,
                      certLink(o.serial),
                      workflowLink(deps.config, o.workflowId),
                      manage && ['pending', 'ready'].includes(o.status)
                        ? apiForm({
                            method: 'POST',
                            action: `/admin/api/v1/requests/orders/${encodeURIComponent(o.id)}/cancel`,
                            submit: 'Cancel',
                            inline: true,
                            danger: true,
                            confirm: `Cancel order ${o.id}?`,
                            body: html``,
                          })
                        : '',
                    ],
                    { id: 'orders', empty: 'No ACME orders.' },
                  )}`
              : ''
          }
          ${
            showEnrollments
              ? html`<h2>EST, CMP and operator requests</h2>
                  ${table(
                    enrollments,
                    ['Request', 'Protocol', 'State', 'Requester', 'Profile', 'Updated', 'Error', 'Certificate', 'Workflow'],
                    (e) => [
                      html`<code>${e.id}</code>`,
                      e.protocol,
                      html`${badge(e.state)}${e.stuck ? badge(e.stuckReason!, 'stuck') : ''}`,
                      e.requester,
                      e.profile,
                      e.updatedAt,
                      e.error,
                      certLink(e.serial),
                      workflowLink(deps.config, e.workflowId),
                    ],
                    { id: 'enrollments', empty: 'No requests.' },
                  )}`
              : ''
          }`;
      },
    },
    {
      path: '/requests/orders/:id',
      access: 'requests:read',
      title: (req) => `ACME order ${req.params.id}`,
      async render({ deps, params, principal }) {
        const o = await orderDetail(deps, params.id!);
        const manage = can(principal.role, 'requests:manage');
        const open = ['pending', 'ready', 'processing'].includes(o.status);
        const api = `/admin/api/v1/requests/orders/${encodeURIComponent(o.id)}`;
        const c = o.condition;
        return html`${fields([
            ['Status', badge(o.status)],
            [
              'Stuck / waiting',
              c
                ? html`${badge(c.condition === 'stuck' ? `stuck: ${c.reason}` : `waiting for ${c.on === 'person' ? 'a person' : 'the client'}`, c.condition)}
                  ${c.why} — since ${c.since} (${describeDuration(c.seconds)})`
                : 'neither: moving along or finished',
            ],
            ['Identifiers', o.identifiers.join(', ')],
            ['Account', o.accountId],
            ['Profile', o.profile],
            ['Created', o.createdAt],
            ['Expires', o.expiresAt],
            ['Certificate', certLink(o.serial)],
            ['Error', o.error ? `${o.error.type.split(':').at(-1)}: ${o.error.detail}` : '-'],
            ['CertflowLastError', o.lastError],
            ['Workflow', workflowLink(deps.config, o.workflowId)],
          ])}
          ${
            manage && open
              ? html`<div class="actions">
                  ${apiForm({ method: 'POST', action: `${api}/retry`, id: 'retry', submit: 'Retry now', body: html`` })}${apiForm({
                    method: 'POST',
                    action: `${api}/cancel`,
                    id: 'cancel',
                    submit: 'Cancel order',
                    danger: true,
                    confirm: `Cancel order ${o.id}?`,
                    body: input('reason', 'Reason'),
                  })}
                </div>`
              : ''
          }
          <h2>Authorizations</h2>
          ${table(o.authorizations, ['Authorization', 'Identifier', 'Status', 'Expires', 'Challenges', 'Workflow'], (a) => [
            html`<code>${a.id}</code>`,
            `${a.identifier.type}:${a.wildcard ? '*.' : ''}${a.identifier.value}`,
            badge(a.status),
            a.expiresAt,
            a.challenges.map((c) => `${c.type} ${c.status}${c.error ? ` — ${c.error.detail}` : ''}`).join('; '),
            workflowLink(deps.config, a.workflowId),
          ])}`;
      },
    },
    {
      path: '/approvals',
      access: 'requests:read',
      title: 'Approvals',
      menu: { id: 'approvals', label: 'Approvals', group: 'Certificates' },
      async render({ deps, principal }) {
        const rows = await approvals(deps);
        const manage = can(principal.role, 'requests:manage');
        return table(
          rows,
          [
            'Request',
            'Protocol',
            'Label',
            'Requester',
            'Subject',
            'Subject alternative names',
            'Key',
            'Profile',
            'Waiting since',
            'Workflow',
            ...(manage ? ['Decision'] : []),
          ],
          (r) => [
            html`<code>${r.id}</code>`,
            r.protocol,
            r.label === '' ? "''" : r.label,
            r.requester ?? '-',
            r.subject,
            r.sans.length ? html`${r.sans.map((n, i) => html`${i ? html`<br />` : ''}<code class="san">${n}</code>`)}` : '(none)',
            r.keyType,
            r.profile,
            r.createdAt,
            workflowLink(deps.config, r.workflowId),
            ...(manage
              ? [
                  html`${apiForm({ method: 'POST', action: `/admin/api/v1/approvals/${encodeURIComponent(r.id)}/approve`, submit: 'Approve', inline: true, id: `approve-${r.id}`, body: html`` })}${apiForm(
                    {
                      method: 'POST',
                      action: `/admin/api/v1/approvals/${encodeURIComponent(r.id)}/reject`,
                      submit: 'Reject',
                      inline: true,
                      danger: true,
                      id: `reject-${r.id}`,
                      body: input('reason', 'Reason'),
                    },
                  )}`,
                ]
              : []),
          ],
          { id: 'approvals', empty: 'No request waits for approval.' },
        );
      },
    },
  ];
  return { routes, pages };
}
