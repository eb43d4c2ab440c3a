/**
 * Settings -> Notifications: the channels and thresholds in effect (secrets never shown),
 * what was sent to whom and how it went, the dead letters with a retry, and a "send test"
 * per channel. Administrators manage it; CA Administrators may look.
 */
import type { NotificationsConfig } from '../../config/index.ts';
import { nothingToTest } from '../../notifications/notices.ts';
import * as repo from '../../db/repos/notifications.ts';
import { retryDelivery, testAndWait } from '../../ra/notifications.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { record } from '../auth.ts';
import { apiForm, badge, fields, html, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';

/** The configuration as shown: addresses and URLs, never the SMTP password or a webhook secret. */
function notificationsView(n: NotificationsConfig) {
  const smtp = n.smtp && new URL(n.smtp.url);
  return {
    smtp: smtp
      ? {
          server: `${smtp.protocol.replace(':', '')}://${smtp.host}`,
          user: smtp.username ? decodeURIComponent(smtp.username) : null,
          from: n.smtp!.from,
          tls: smtp.protocol === 'smtps:' ? 'TLS' : n.smtp!.requireTls ? 'STARTTLS required' : 'STARTTLS when offered',
        }
      : null,
    email: n.email,
    webhooks: n.webhooks.map((w) => ({ url: w.url, events: w.events ?? 'all' })),
    expiringDays: n.expiringDays,
    requesters: n.requesters,
    profiles: n.profiles,
    crlExpiringHours: n.crlExpiringHours,
    stuckMinutes: n.stuckMinutes,
    intervalMinutes: n.intervalMinutes,
    retry: n.retry,
  };
}

const channelProp = { type: 'string', enum: ['email', 'webhook'] } as const;

async function sendTest(deps: AdminDeps, who: { actor: string }, channel: 'email' | 'webhook') {
  const none = nothingToTest(deps.config.notifications, channel);
  if (none) return { ok: false, message: none, outcomes: [] };
  const outcomes = await testAndWait(deps, { channel, requester: who.actor }, 60_000);
  const failed = outcomes.filter((o) => o.status !== 'delivered');
  const message = failed.length
    ? `test FAILED for ${failed.map((o) => `${o.target} (${o.detail})`).join('; ')}`
    : `test delivered to ${outcomes.map((o) => o.target).join(', ')}`;
  return { ok: failed.length === 0, message, outcomes };
}

export function notificationsArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/notifications',
      access: 'notifications:read',
      tag: 'notifications',
      summary: 'Notification channels and thresholds in effect (no secrets), and deliveries by channel and status',
      handler: async ({ deps }) => ({
        settings: notificationsView(deps.config.notifications),
        deliveries: await repo.deliveryCounts(deps.pool),
      }),
    },
    {
      method: 'GET',
      path: '/notifications/deliveries',
      access: 'notifications:read',
      tag: 'notifications',
      summary: 'Deliveries, newest first: target, status (pending, delivered, dead), attempts, last error',
      query: {
        status: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
        channel: channelProp,
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
      },
      handler: async ({ deps, query }) =>
        repo.listDeliveries(deps.pool, {
          status: query.status as repo.DeliveryStatus | undefined,
          channel: query.channel as repo.Channel | undefined,
          limit: query.limit as number | undefined,
        }),
    },
    {
      method: 'POST',
      path: '/notifications/test',
      access: 'notifications:manage',
      tag: 'notifications',
      summary: 'Send a test notice through every configured target of a channel and wait for each outcome (ok false if one failed)',
      body: { properties: { channel: channelProp }, required: ['channel'] },
      async handler({ deps, who, body }) {
        const r = await sendTest(deps, who, body.channel);
        await record(
          deps.pool,
          who,
          'notifications.test',
          body.channel,
          { ok: r.ok, targets: r.outcomes.map((o) => [o.target, o.status]) },
          r.ok ? 'ok' : 'failed',
        );
        return r;
      },
    },
    {
      method: 'POST',
      path: '/notifications/deliveries/{id}/retry',
      access: 'notifications:manage',
      tag: 'notifications',
      summary: 'Try a dead-lettered delivery again (after fixing the receiver or the mail settings)',
      async handler({ deps, who, params }) {
        const r = await retryDelivery(deps, params.id!);
        await record(deps.pool, who, 'notifications.retry', params.id!, { workflowId: r.workflowId });
        return { ...r, message: `delivery ${params.id} is being tried again` };
      },
    },
  ];

  const pages: Page[] = [
    {
      path: '/settings/notifications',
      access: 'notifications:read',
      title: 'Notifications',
      async render({ deps, principal }) {
        const s = notificationsView(deps.config.notifications);
        const manage = can(principal.role, 'notifications:manage');
        const [counts, recent, dead] = await Promise.all([
          repo.deliveryCounts(deps.pool),
          repo.listDeliveries(deps.pool, { limit: 50 }),
          repo.listDeliveries(deps.pool, { status: 'dead', limit: 100 }),
        ]);
        const deliveries = (rows: repo.DeliveryView[], id: string, empty: string, retry: boolean) =>
          table(
            rows,
            ['Notice', 'Channel', 'To', 'Status', 'Attempts', 'Last error', 'Updated', ...(retry ? [''] : [])],
            (d) => [
              html`${d.subject}<br /><small><code>${d.noticeId}</code></small>`,
              d.channel,
              d.target,
              badge(d.status),
              String(d.attempts),
              d.lastError ?? '-',
              d.updatedAt,
              ...(retry
                ? [
                    apiForm({
                      method: 'POST',
                      action: `/admin/api/v1/notifications/deliveries/${encodeURIComponent(d.id)}/retry`,
                      submit: 'Retry',
                      inline: true,
                      body: html``,
                    }),
                  ]
                : []),
            ],
            { id, empty },
          );
        return html`<p class="hint">
            From the <code>notifications</code> section of the configuration file (docs/notifications.md); change the file and restart the
            worker. Every ${s.intervalMinutes} minutes certflow looks for expiring certificates, CAs and CRLs, stuck requests and audit
            verification failures, and tells each once.
          </p>
          ${fields([
            [
              'Mail server',
              s.smtp ? `${s.smtp.server} (${s.smtp.tls}${s.smtp.user ? `, user ${s.smtp.user}` : ''}), from ${s.smtp.from}` : 'none',
            ],
            ['Operators', s.email.join(', ') || 'none'],
            [
              'Webhooks',
              s.webhooks.map((w) => `${w.url} (${typeof w.events === 'string' ? 'all events' : w.events.join(', ')})`).join('; ') || 'none',
            ],
            ['Certificates', `${s.expiringDays.join(', ')} days before expiry${s.requesters ? ', also to their requesters' : ''}`],
            ['CAs', 'when the CA expiry watch reports them (ca.expiryWarningDays)'],
            ['CRLs', `${s.crlExpiringHours.join(', ')} hours before expiry`],
            ['Stuck requests', `once stuck for ${s.stuckMinutes} minutes`],
            [
              'Retries',
              `${s.retry.maxAttempts} attempts, ${s.retry.initialSeconds} s doubling up to ${s.retry.maxSeconds} s; then dead-lettered`,
            ],
            ['Deliveries', counts.map((c) => `${c.channel} ${c.status}: ${c.count}`).join(', ') || 'none yet'],
          ])}
          ${
            manage
              ? html`<div class="actions">
                  ${apiForm({ method: 'POST', action: '/admin/api/v1/notifications/test', id: 'test-email', submit: 'Send test e-mail', then: 'show', body: html`<input type="hidden" name="channel" value="email" />` })}
                  ${apiForm({ method: 'POST', action: '/admin/api/v1/notifications/test', id: 'test-webhook', submit: 'Send test webhook', then: 'show', body: html`<input type="hidden" name="channel" value="webhook" />` })}
                </div>`
              : ''
          }
          <h2>Dead letters</h2>
          ${deliveries(dead, 'dead-letters', 'No dead letters.', manage)}
          <h2>Recent deliveries</h2>
          ${deliveries(recent, 'deliveries', 'Nothing sent yet.', false)}`;
      },
    },
  ];
  return { routes, pages };
}
