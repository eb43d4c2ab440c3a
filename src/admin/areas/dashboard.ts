/** Dashboard (certificates by state, issuance per day, expiry, stuck requests, CRL/OCSP freshness, health) and the health page. */
import { errorMessage } from '../../core/errors.ts';
import { ping } from '../../db/locks.ts';
import * as cas from '../../db/repos/cas.ts';
import { caExpiryReport } from '../../ra/ca-expiry.ts';
import { unknownCaReferences } from '../../ra/ca-references.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { countStuckAndWaiting, describeDuration } from '../../db/repos/stuck.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { badge, chart, fields, html, table, type Html } from '../html.ts';
import type { Page } from '../pages.ts';
import type { Role } from '../roles.ts';
import { conditionsTable, conditionsView } from './stuck.ts';

interface Check {
  status: 'ok' | 'error';
  detail?: string;
  latencyMs?: number;
}

interface QueueCheck {
  taskQueue: string;
  kind: 'workflow' | 'activity';
  /** Who polls: worker identities and when they last polled. */
  pollers: Array<{ identity: string; lastAccess: Date | null }>;
  status: 'ok' | 'error';
}

async function timed(fn: () => Promise<unknown>): Promise<Check> {
  const started = Date.now();
  try {
    await Promise.race([fn(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 3 s')), 3000).unref())]);
    return { status: 'ok', latencyMs: Date.now() - started };
  } catch (e) {
    return { status: 'error', detail: errorMessage(e), latencyMs: Date.now() - started };
  }
}

/** Task queue types of Temporal's API (temporal.api.enums.v1.TaskQueueType). */
const TASK_QUEUE_TYPE = { workflow: 1, activity: 2 } as const;

async function queue(deps: AdminDeps, taskQueue: string, kind: 'workflow' | 'activity'): Promise<QueueCheck> {
  try {
    const r = await deps.temporal.workflowService.describeTaskQueue({
      namespace: deps.config.temporal.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: TASK_QUEUE_TYPE[kind],
    });
    const pollers = (r.pollers ?? []).map((p) => ({
      identity: p.identity ?? '?',
      lastAccess: p.lastAccessTime?.seconds ? new Date(Number(p.lastAccessTime.seconds.toString()) * 1000) : null,
    }));
    const recent = pollers.some((p) => p.lastAccess && Date.now() - p.lastAccess.getTime() < 120_000);
    return { taskQueue, kind, pollers, status: recent ? 'ok' : 'error' };
  } catch (e) {
    return { taskQueue, kind, pollers: [{ identity: `(${errorMessage(e)})`, lastAccess: null }], status: 'error' };
  }
}

async function health(deps: AdminDeps) {
  const t = deps.config.temporal;
  const [postgres, temporal, ...workers] = await Promise.all([
    timed(() => ping(deps.pool)),
    timed(() => deps.temporal.workflowService.getSystemInfo({})),
    queue(deps, t.taskQueue, 'workflow'),
    queue(deps, t.taskQueue, 'activity'),
    queue(deps, t.signingTaskQueue, 'activity'),
  ]);
  const ok = postgres.status === 'ok' && temporal.status === 'ok' && workers.every((w) => w.status === 'ok');
  return { status: ok ? 'ok' : 'degraded', postgres, temporal, workers };
}

async function dashboard(deps: AdminDeps, role: Role) {
  const { pool, config } = deps;
  const [byState, perDay, expiring, counts, stuck, waiting, issuingCas, crls, ocsp, healthStatus, caExpiry, unknownCas] = await Promise.all(
    [
      consoleDb.countByState(pool),
      consoleDb.issuancePerDay(pool, 30),
      consoleDb.expiringCounts(pool, [7 * 86_400, 30 * 86_400]),
      countStuckAndWaiting(pool, config.stuck),
      conditionsView(deps, role, 'stuck', { limit: 50 }),
      conditionsView(deps, role, 'waiting', { limit: 20 }),
      cas.list(pool).then((all) => all.filter((c) => c.role === 'issuing')),
      consoleDb.listCrls(pool, { latestOnly: true }),
      consoleDb.ocspFreshness(pool, config.revocation.ocspRefreshSeconds),
      health(deps),
      caExpiryReport(pool, config),
      unknownCaReferences(config, pool),
    ],
  );
  const now = Date.now();
  const waitingOn = (on: 'person' | 'client') => {
    const lines = counts.waiting.filter((w) => w.on === on);
    const ages = lines.map((w) => w.oldestSeconds).filter((x): x is number => x !== null);
    return { count: lines.reduce((n, w) => n + w.count, 0), oldestSeconds: ages.length ? Math.max(...ages) : null };
  };
  return {
    certificates: byState,
    issuancePerDay: perDay,
    expiring: { in7Days: expiring[0] ?? 0, in30Days: expiring[1] ?? 0 },
    /** By the one definition (src/db/repos/stuck.ts): the count, by protocol and reason, and the longest stuck (at most 50). */
    stuck: { count: counts.stuck.reduce((n, x) => n + x.count, 0), byReason: counts.stuck.filter((x) => x.count), requests: stuck },
    /** Waiting for a person (approval) or for the client, with how long; the longest waiting (at most 20). */
    waiting: { person: waitingOn('person'), client: waitingOn('client'), requests: waiting },
    crls: issuingCas.map((ca) => {
      const latest = crls.find((c) => c.caName === ca.name);
      const stale =
        !latest || latest.nextUpdate.getTime() < now || now - latest.thisUpdate.getTime() > config.revocation.crlRefreshSeconds * 1500;
      return {
        ca: ca.name,
        crlNumber: latest?.crlNumber ?? null,
        thisUpdate: latest?.thisUpdate ?? null,
        nextUpdate: latest?.nextUpdate ?? null,
        fresh: !stale,
      };
    }),
    ocsp: ocsp.map((o) => ({ ...o, fresh: o.missingOrExpired === 0 })),
    /** CAs whose remaining validity is shorter than (or within the lead time of) the longest profile they serve (src/ra/ca-expiry.ts). */
    caExpiry,
    /** Configured CA names that are no CA (src/ra/ca-references.ts). */
    unknownCas: unknownCas.map((r) => r.message),
    health: healthStatus,
  };
}

const PROTOCOL_COLOURS: Record<string, string> = { acme: '#2f6fde', est: '#1f9d55', cmp: '#b7791f', operator: '#805ad5' };

/** chart.js configuration of a stacked bar chart of issuance per day and protocol. */
function issuanceChart(perDay: Array<{ day: string; protocol: string; count: number }>) {
  const days = [...new Set(perDay.map((r) => r.day))];
  const protocols = [...new Set(perDay.map((r) => r.protocol).filter(Boolean))].sort();
  return {
    type: 'bar',
    data: {
      labels: days.map((d) => d.slice(5)),
      datasets: protocols.map((p) => ({
        label: p,
        backgroundColor: PROTOCOL_COLOURS[p] ?? '#718096',
        data: days.map((d) => perDay.find((r) => r.day === d && r.protocol === p)?.count ?? 0),
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    },
  };
}

function healthTable(h: Awaited<ReturnType<typeof health>>): Html {
  const rows: Array<[string, string, string]> = [
    ['Postgres', h.postgres.status, h.postgres.detail ?? `${h.postgres.latencyMs} ms`],
    ['Temporal', h.temporal.status, h.temporal.detail ?? `${h.temporal.latencyMs} ms`],
    ...h.workers.map((w): [string, string, string] => [
      `Workers: ${w.taskQueue} (${w.kind})`,
      w.status,
      w.pollers.length
        ? w.pollers.map((p) => `${p.identity}${p.lastAccess ? ` @ ${p.lastAccess.toISOString()}` : ''}`).join(', ')
        : 'no poller',
    ]),
  ];
  return table(rows, ['Component', 'Status', 'Detail'], ([name, status, detail]) => [name, badge(status), detail], { id: 'health' });
}

export function dashboardArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/dashboard',
      access: 'dashboard:read',
      tag: 'dashboard',
      summary: 'Certificates by state, issuance per day and protocol (30 days), expiry, stuck requests, CRL/OCSP freshness, health',
      handler: async ({ deps, principal }) => dashboard(deps, principal.role),
    },
    {
      method: 'GET',
      path: '/health',
      access: 'health:read',
      tag: 'dashboard',
      summary: 'Postgres, Temporal and worker (task queue poller) health',
      handler: async ({ deps }) => health(deps),
    },
  ];
  const pages: Page[] = [
    {
      path: '/',
      access: 'dashboard:read',
      title: 'Dashboard',
      menu: { id: 'dashboard', label: 'Dashboard', group: 'Overview' },
      async render({ deps, principal }) {
        const d = await dashboard(deps, principal.role);
        const c = d.certificates;
        const age = (seconds: number | null) => (seconds === null ? '' : ` (longest ${describeDuration(seconds)})`);
        const card = (label: string, value: number, href: string, id: string) =>
          html`<a class="card" href="${href}" id="${id}"><span class="n">${value}</span><span>${label}</span></a>`;
        const warnings = [...d.caExpiry.map((w) => w.message), ...d.unknownCas];
        return html`${warnings.length ? html`<div class="warning" id="ca-warnings">${warnings.map((w) => html`<p>${w}</p>`)}</div>` : ''}
          <section class="cards">
            ${card('active', c.active, '/certificates?state=active', 'count-active')}
            ${card('suspended', c.suspended, '/certificates?state=suspended', 'count-suspended')}
            ${card('revoked', c.revoked, '/certificates?state=revoked', 'count-revoked')}
            ${card('expired', c.expired, '/certificates?state=expired', 'count-expired')}
            ${card('expire within 7 days', d.expiring.in7Days, '/reports?type=expiring&days=7', 'expiring-7')}
            ${card('expire within 30 days', d.expiring.in30Days, '/reports?type=expiring&days=30', 'expiring-30')}
            ${card('stuck requests', d.stuck.count, '/requests?stuck=1', 'stuck')}
            ${card(`waiting for a person${age(d.waiting.person.oldestSeconds)}`, d.waiting.person.count, '/requests?waiting=person', 'waiting-person')}
            ${card(`waiting for the client${age(d.waiting.client.oldestSeconds)}`, d.waiting.client.count, '/requests?waiting=client', 'waiting-client')}
          </section>
          <h2>Issued per day and protocol (30 days)</h2>
          ${chart('issuance-chart', issuanceChart(d.issuancePerDay))}
          <h2>Stuck requests</h2>
          ${conditionsTable(deps, d.stuck.requests, 'stuck')}
          <h2>Waiting for a person or the client</h2>
          ${conditionsTable(deps, d.waiting.requests, 'waiting')}
          <h2>CRL and OCSP freshness</h2>
          ${table(d.crls, ['CA', 'CRL', 'This update', 'Next update', 'Fresh'], (x) => [x.ca, x.crlNumber ?? '-', x.thisUpdate, x.nextUpdate, badge(x.fresh ? 'fresh' : 'stale')], { id: 'crl-freshness' })}
          ${table(d.ocsp, ['CA', 'Certificates', 'Missing or expired responses', 'Due soon', 'Earliest next update', 'Fresh'], (o) => [o.caName, o.certificates, o.missingOrExpired, o.dueSoon, o.earliestNextUpdate, badge(o.fresh ? 'fresh' : 'stale')], { id: 'ocsp-freshness' })}
          <h2>Health</h2>
          ${healthTable(d.health)}`;
      },
    },
    {
      path: '/health',
      access: 'health:read',
      title: 'Health',
      menu: { id: 'health', label: 'Health', group: 'Overview' },
      async render({ deps }) {
        const h = await health(deps);
        return html`${fields([['Overall', badge(h.status)]])}${healthTable(h)}`;
      },
    },
  ];
  return { routes, pages };
}
