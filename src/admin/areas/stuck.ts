/**
 * Stuck and waiting requests in the console and the admin API, by the one definition of
 * src/db/repos/stuck.ts: each says why, since when and for how long, links its workflow
 * (to the Temporal UI where configured) and offers the actions the viewer's role allows.
 */
import {
  describeDuration,
  stuckRequests,
  waitingRequests,
  type ConditionQuery,
  type RequestAction,
  type RequestCondition,
} from '../../db/repos/stuck.ts';
import { API_PREFIX, type AdminDeps } from '../api.ts';
import { apiForm, badge, html, input, link, table, type Html } from '../html.ts';
import { can, type Role } from '../roles.ts';
import { workflowLink, workflowUrl } from './links.ts';

/** The admin API route that performs `action` on the request. */
function actionPath(action: RequestAction, e: Pick<RequestCondition, 'kind' | 'id'>): string {
  const id = encodeURIComponent(e.id);
  if (action === 'approve' || action === 'reject') return `${API_PREFIX}/approvals/${id}/${action}`;
  return `${API_PREFIX}/requests/${e.kind === 'order' ? 'orders' : 'enrollments'}/${id}/${action}`;
}

/** The actions of the request that `role` may use (every one needs requests:manage). */
function allowedActions(role: Role, e: RequestCondition): Array<{ action: RequestAction; method: 'POST'; path: string }> {
  if (!can(role, 'requests:manage')) return [];
  return e.actions.map((action) => ({ action, method: 'POST' as const, path: actionPath(action, e) }));
}

/** Stuck or waiting requests as the API answers them: the definition's fields, the Temporal UI link and the allowed actions. */
export async function conditionsView(deps: AdminDeps, role: Role, which: 'stuck' | 'waiting', q: ConditionQuery = {}) {
  const find = which === 'stuck' ? stuckRequests : waitingRequests;
  const rows = await find(deps.pool, deps.config.stuck, q);
  return rows.map((e) => ({
    ...e,
    actions: allowedActions(role, e),
    workflowUrl: workflowUrl(deps.config, e.workflowId) ?? null,
  }));
}

export type ConditionView = Awaited<ReturnType<typeof conditionsView>>[number];

const LABELS: Record<RequestAction, string> = { retry: 'Retry', cancel: 'Cancel', approve: 'Approve', reject: 'Reject' };

function actionButtons(e: ConditionView): Html {
  return html`${e.actions.map((a) =>
    apiForm({
      method: a.method,
      action: a.path,
      submit: LABELS[a.action],
      inline: true,
      id: `${a.action}-${e.id}`,
      danger: a.action === 'cancel' || a.action === 'reject',
      confirm: a.action === 'cancel' || a.action === 'reject' ? `${LABELS[a.action]} ${e.id}?` : undefined,
      body: a.action === 'cancel' || a.action === 'reject' ? input('reason', 'Reason') : html``,
    }),
  )}`;
}

/** The table of stuck (or waiting) requests, the same on the dashboard and the requests page. */
export function conditionsTable(deps: AdminDeps, rows: ConditionView[], which: 'stuck' | 'waiting'): Html {
  const stuck = which === 'stuck';
  return table(
    rows,
    ['Request', 'Protocol', 'State', stuck ? 'Why' : 'Waiting for', 'Since', 'For', 'Workflow', 'Actions'],
    (e) => [
      html`${e.kind === 'order' ? 'ACME order' : `${e.protocol} request`}
      ${
        e.kind === 'order'
          ? link(`/requests/orders/${encodeURIComponent(e.id)}`, html`<code data-request-id="${e.id}">${e.id}</code>`)
          : html`<code data-request-id="${e.id}">${e.id}</code>`
      }`,
      e.protocol,
      html`${badge(e.state)}${
        stuck
          ? e.reason !== e.state
            ? badge(e.reason!, 'stuck')
            : ''
          : badge(e.on === 'person' ? 'waiting for a person' : 'waiting for the client', 'waiting')
      }`,
      html`<span class="why">${e.why}</span>`,
      e.since,
      describeDuration(e.seconds),
      workflowLink(deps.config, e.workflowId),
      actionButtons(e),
    ],
    {
      id: stuck ? 'stuck-requests' : 'waiting-requests',
      empty: stuck ? 'No stuck requests.' : 'No request waits for a person or its client.',
    },
  );
}
