/**
 * Requests: ACME orders and EST/CMP/operator enrollments with state filters, the stuck ones
 * first and why they wait; order retry and cancel (the order and authorization workflows'
 * Updates, as `certflow orders retry|cancel` sends them); the approvals queue (the
 * enrollment workflow's decide Update, as `certflow approvals` sends it).
 */
import { CaError, errorMessage } from '../../core/errors.ts';
import * as orders from '../../db/repos/acme-orders.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { awaitingApproval, decideRequest } from '../../temporal/approvals.ts';
import { withDeadline } from '../../temporal/client.ts';
import { cancelOrder, retryOrderValidation } from '../../temporal/orders.ts';
import { searchAttributeKeys } from '../../temporal/search-attributes.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { record, type Actor } from '../auth.ts';
import { apiForm, badge, fields, html, input, link, select, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';
import { STUCK_SECONDS } from './dashboard.ts';
import { certLink, workflowLink } from './links.ts';

const ORDER_STATES = ['pending', 'ready', 'processing', 'valid', 'invalid'] as const;
const REQUEST_STATES = ['pending', 'awaiting-approval', 'signing', 'issued', 'failed', 'rejected'] as const;

function stuckRule(deps: AdminDeps) {
  return { processingSeconds: 120, validatingSeconds: deps.config.validation.retryWindowSeconds + 60 };
}

async function listOrders(deps: AdminDeps, q: { state?: string; stuck?: boolean; limit?: number }) {
  const [stuck, all] = await Promise.all([
    orders.findOrders(deps.pool, { status: q.state, stuck: stuckRule(deps), limit: q.limit ?? 100 }),
    q.stuck ? Promise.resolve([]) : orders.findOrders(deps.pool, { status: q.state, limit: q.limit ?? 100 }),
  ]);
  const stuckIds = new Set(stuck.map((o) => o.id));
  const rows = [...stuck, ...all.filter((o) => !stuckIds.has(o.id))];
  return rows.map((o) => ({
    id: o.id,
    status: o.status,
    stuck: stuckIds.has(o.id),
    identifiers: o.identifiers.map((i) => `${i.type}:${i.value}`),
    account: o.accountId,
    profile: o.profile,
    serial: o.serial,
    error: o.error?.detail ?? null,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    expiresAt: o.expiresAt,
    workflowId: `acme-order-${o.id}`,
  }));
}

async function orderDetail(deps: AdminDeps, id: string) {
  const o = await orders.getOrder(deps.pool, id);
  if (!o) throw new CaError('notFound', `no ACME order ${id}`, { rule: 'order.unknown' });
  const authzs = await orders.getAuthzs(deps.pool, o.authzIds);
  let lastError: string | null = null;
  try {
    const d = await withDeadline('Temporal', 3000, () => deps.temporal.workflow.getHandle(`acme-order-${id}`).describe());
    lastError = d.typedSearchAttributes.get(searchAttributeKeys.lastError) ?? null;
  } catch (e) {
    lastError = `(Temporal: ${errorMessage(e)})`;
  }
  return {
    ...o,
    identifiers: o.identifiers.map((i) => `${i.type}:${i.value}`),
    error: o.error,
    lastError,
    workflowId: `acme-order-${o.id}`,
    // Authorizations an order created live in its workflow; the others have their own.
    authorizations: authzs.map((a) => ({ ...a, workflowId: a.ownerOrderId === o.id ? `acme-order-${o.id}` : `acme-authz-${a.id}` })),
  };
}

/** Validates the order's challenges that wait for their next retry now (as `certflow orders retry`). */
async function retryOrder(deps: AdminDeps, who: Actor, id: string) {
  const retried = await retryOrderValidation(deps.temporal, deps.pool, id);
  await record(deps.pool, who, 'order.retry', id, { authorizations: retried });
  return { message: `validating ${retried.length} authorization(s) of order ${id} again now`, authorizations: retried };
}

/** Makes an unfinished order invalid (as `certflow orders cancel`). */
async function cancel(deps: AdminDeps, who: Actor, id: string, reason?: string) {
  if (!(await orders.getOrder(deps.pool, id))) throw new CaError('notFound', `no ACME order ${id}`, { rule: 'order.unknown' });
  await cancelOrder(deps.temporal, id, who.actor, reason);
  await record(deps.pool, who, 'order.cancel', id, { reason });
  return { message: `order ${id} canceled` };
}

async function decideAsUser(deps: AdminDeps, who: Actor, id: string, approve: boolean, reason?: string) {
  // Audited by the workflow's projection (request.approve / request.reject, actor = who.actor).
  const state = await decideRequest(deps.pool, deps.temporal, id, { approve, by: who.actor, reason });
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
      summary: 'ACME orders, stuck ones first (processing > 2 min, validating past the retry window, open past expiry)',
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
      summary: "Validate the order's challenges that wait for their next retry now",
      handler: async ({ deps, who, params }) => retryOrder(deps, who, params.id!),
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
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        offset: { type: 'integer', minimum: 0 },
      },
      handler: async ({ deps, query }) =>
        consoleDb.listEnrollments(deps.pool, {
          state: query.state as string,
          protocol: query.protocol as string,
          stuckSeconds: STUCK_SECONDS,
          limit: query.limit as number,
          offset: query.offset as number,
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
        const stuck = query.stuck === '1';
        const [orderRows, enrollments] = await Promise.all([
          listOrders(deps, { state: query.orderState || undefined, stuck }),
          consoleDb.listEnrollments(deps.pool, {
            state: query.state || undefined,
            protocol: query.protocol || undefined,
            stuckSeconds: STUCK_SECONDS,
            onlyStuck: stuck,
            limit: 200,
          }),
        ]);
        const manage = can(principal.role, 'requests:manage');
        return html`<form class="filters" method="get" action="/requests">
            ${select('orderState', 'Order state', [['', 'any'], ...ORDER_STATES.map((s): [string, string] => [s, s])], query.orderState)}
            ${select('state', 'Enrollment state', [['', 'any'], ...REQUEST_STATES.map((s): [string, string] => [s, s])], query.state)}
            ${select(
              'protocol',
              'Protocol',
              [
                ['', 'any'],
                ['est', 'EST'],
                ['cmp', 'CMP'],
                ['operator', 'operator'],
              ],
              query.protocol,
            )}
            ${select(
              'stuck',
              'Only stuck',
              [
                ['', 'no'],
                ['1', 'yes'],
              ],
              query.stuck,
            )}
            <button type="submit">Filter</button>
          </form>
          <h2>ACME orders</h2>
          ${table(
            orderRows,
            ['Order', 'Status', 'Identifiers', 'Account', 'Updated', 'Why it waits', 'Certificate', 'Workflow', ''],
            (o) => [
              link(`/requests/orders/${encodeURIComponent(o.id)}`, o.id),
              html`${badge(o.status)}${o.stuck ? badge('stuck') : ''}`,
              o.identifiers.join(', '),
              o.account,
              o.updatedAt,
              o.error,
              certLink(o.serial),
              workflowLink(deps.config, o.workflowId),
              manage && ['pending', 'ready', 'processing'].includes(o.status)
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
          )}
          <h2>EST, CMP and operator requests</h2>
          ${table(
            enrollments,
            ['Request', 'Protocol', 'State', 'Requester', 'Profile', 'Updated', 'Why it waits / error', 'Certificate', 'Workflow'],
            (e) => [
              html`<code>${e.id}</code>`,
              e.protocol,
              html`${badge(e.state)}${e.stuck ? badge('stuck') : ''}`,
              e.requester,
              e.profile,
              e.updatedAt,
              e.error,
              certLink(e.serial),
              workflowLink(deps.config, e.workflowId),
            ],
            { id: 'enrollments', empty: 'No requests.' },
          )}`;
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
        return html`${fields([
            ['Status', badge(o.status)],
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
                  ${apiForm({ method: 'POST', action: `${api}/retry`, id: 'retry', submit: 'Retry validation now', body: html`` })}${apiForm(
                    {
                      method: 'POST',
                      action: `${api}/cancel`,
                      id: 'cancel',
                      submit: 'Cancel order',
                      danger: true,
                      confirm: `Cancel order ${o.id}?`,
                      body: input('reason', 'Reason'),
                    },
                  )}
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
