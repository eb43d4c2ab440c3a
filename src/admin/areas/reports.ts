/**
 * Reports: all / active / revoked / suspended / expired / expiring certificates, per CA,
 * profile and period, as a table, CSV or JSON, with charts; the CRL report; certificate
 * statistics.
 */
import * as cas from '../../db/repos/cas.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { Download, type AdminDeps, type ApiRoute, type Prop } from '../api.ts';
import { badge, chart, html, input, link, query as qs, select, table } from '../html.ts';
import type { Page, PageRequest } from '../pages.ts';
import { certLink } from './links.ts';
import { toCsv } from './csv.ts';

const REPORT_TYPES = ['all', 'active', 'revoked', 'suspended', 'expired', 'expiring'] as const;
type ReportType = (typeof REPORT_TYPES)[number];

const REPORT_QUERY: Record<string, Prop> = {
  type: { type: 'string', enum: REPORT_TYPES },
  days: { type: 'integer', minimum: 1, maximum: 3650, description: 'expiring: within this many days (default 30)' },
  ca: { type: 'string', maxLength: 100 },
  profile: { type: 'string', maxLength: 100 },
  from: { type: 'string', format: 'date-time', description: 'period start (issued; revoked for revoked/suspended; expiry for expired)' },
  to: { type: 'string', format: 'date-time', description: 'period end (exclusive)' },
  format: { type: 'string', enum: ['json', 'csv'] },
  limit: { type: 'integer', minimum: 1, maximum: 10000 },
};

const COLUMNS = [
  'serial',
  'state',
  'subject',
  'sans',
  'profile',
  'caName',
  'protocol',
  'requester',
  'issuedAt',
  'notAfter',
  'revokedAt',
  'revocationReason',
];

function searchFor(q: Record<string, string | number | boolean | undefined>): { type: ReportType; search: consoleDb.CertificateSearch } {
  const type = (q.type as ReportType) || 'all';
  const from = q.from ? new Date(String(q.from)) : undefined;
  const to = q.to ? new Date(String(q.to)) : undefined;
  const search: consoleDb.CertificateSearch = {
    ca: (q.ca as string) || undefined,
    profile: (q.profile as string) || undefined,
    limit: (q.limit as number) || 10000,
  };
  if (type === 'revoked' || type === 'suspended') Object.assign(search, { state: type, revokedFrom: from, revokedTo: to });
  else if (type === 'expired') Object.assign(search, { state: 'expired', expiresFrom: from, expiresTo: to });
  else if (type === 'expiring') {
    const days = (q.days as number) || 30;
    Object.assign(search, { state: 'active', expiresTo: new Date(Date.now() + days * 86_400_000), issuedFrom: from, issuedTo: to });
  } else Object.assign(search, { state: type === 'active' ? 'active' : undefined, issuedFrom: from, issuedTo: to });
  return { type, search };
}

async function certificateReport(deps: AdminDeps, q: Record<string, string | number | boolean | undefined>) {
  const { type, search } = searchFor(q);
  const [result, byCa, byProfile, byMonth] = await Promise.all([
    consoleDb.searchCertificates(deps.pool, search),
    consoleDb.countsBy(deps.pool, 'ca', { ...search, limit: undefined }),
    consoleDb.countsBy(deps.pool, 'profile', { ...search, limit: undefined }),
    consoleDb.countsBy(deps.pool, 'month', { ...search, limit: undefined }),
  ]);
  const sum = (rows: consoleDb.GroupCount[]) =>
    Object.entries(rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.key]: (acc[r.key] ?? 0) + r.count }), {})).map(
      ([key, count]) => ({ key, count }),
    );
  return {
    type,
    generatedAt: new Date(),
    filters: {
      ca: search.ca ?? null,
      profile: search.profile ?? null,
      from: q.from ?? null,
      to: q.to ?? null,
      days: type === 'expiring' ? (q.days as number) || 30 : null,
    },
    total: result.total,
    byCa: sum(byCa),
    byProfile: sum(byProfile),
    byMonth: sum(byMonth),
    items: result.rows,
  };
}

async function statistics(deps: AdminDeps) {
  const [byState, byCa, byProfile, byProtocol, byMonth, byReason] = await Promise.all([
    consoleDb.countByState(deps.pool),
    consoleDb.countsBy(deps.pool, 'ca'),
    consoleDb.countsBy(deps.pool, 'profile'),
    consoleDb.countsBy(deps.pool, 'protocol'),
    consoleDb.countsBy(deps.pool, 'month', { issuedFrom: new Date(Date.now() - 366 * 86_400_000) }),
    consoleDb.countsBy(deps.pool, 'reason', { state: 'revoked' }),
  ]);
  return { byState, byCa, byProfile, byProtocol, byMonth, revocationsByReason: byReason.map((r) => ({ reason: r.key, count: r.count })) };
}

async function crlReport(deps: AdminDeps) {
  const [issuing, all] = await Promise.all([
    cas.list(deps.pool).then((l) => l.filter((c) => c.role === 'issuing')),
    consoleDb.listCrls(deps.pool, { limit: 1000 }),
  ]);
  return issuing.map((ca) => {
    const mine = all.filter((c) => c.caName === ca.name);
    const latest = mine[0];
    return {
      ca: ca.name,
      crls: mine.length,
      latestNumber: latest?.crlNumber ?? null,
      thisUpdate: latest?.thisUpdate ?? null,
      nextUpdate: latest?.nextUpdate ?? null,
      entries: latest?.entries ?? 0,
      history: mine,
    };
  });
}

const STATE_COLOURS: Record<string, string> = {
  active: '#1f9d55',
  suspended: '#b7791f',
  revoked: '#c53030',
  expired: '#718096',
  signing: '#2f6fde',
};
const PALETTE = ['#2f6fde', '#1f9d55', '#b7791f', '#c53030', '#805ad5', '#319795', '#d53f8c', '#718096'];

function doughnut(rows: Array<{ key: string; count: number }>, colours?: Record<string, string>) {
  return {
    type: 'doughnut',
    data: {
      labels: rows.map((r) => r.key),
      datasets: [{ data: rows.map((r) => r.count), backgroundColor: rows.map((r, i) => colours?.[r.key] ?? PALETTE[i % PALETTE.length]) }],
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false },
  };
}

function stackedByState(rows: consoleDb.GroupCount[]) {
  const keys = [...new Set(rows.map((r) => r.key))];
  const states = consoleDb.CERT_STATES.filter((s) => rows.some((r) => r.state === s));
  return {
    type: 'bar',
    data: {
      labels: keys,
      datasets: states.map((s) => ({
        label: s,
        backgroundColor: STATE_COLOURS[s],
        data: keys.map((k) => rows.find((r) => r.key === k && r.state === s)?.count ?? 0),
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

function reportNav(current: string) {
  const tabs: Array<[string, string]> = [
    ...REPORT_TYPES.map((t): [string, string] => [`/reports?type=${t}`, `${t[0]!.toUpperCase()}${t.slice(1)} certificates`]),
    ['/reports/crls', 'CRL report'],
    ['/reports/statistics', 'Certificate statistics'],
  ];
  return html`<nav class="tabs">
    ${tabs.map(([href, label]) => html`<a href="${href}" ${href === current ? html` aria-current="page"` : ''}>${label}</a>`)}
  </nav>`;
}

export function reportsArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/reports/certificates',
      access: 'reports:read',
      tag: 'reports',
      summary: 'Certificate report (all, active, revoked, suspended, expired, expiring) per CA, profile and period, as JSON or CSV',
      query: REPORT_QUERY,
      async handler({ deps, query }) {
        const report = await certificateReport(deps, query);
        if (query.format === 'csv') {
          return new Download(
            'text/csv; charset=utf-8',
            toCsv(report.items as unknown as Array<Record<string, unknown>>, COLUMNS),
            `certificates-${report.type}.csv`,
          );
        }
        return report;
      },
    },
    {
      method: 'GET',
      path: '/reports/crls',
      access: 'reports:read',
      tag: 'reports',
      summary: 'CRL report: per issuing CA the CRLs issued, the latest one and its freshness',
      query: { format: { type: 'string', enum: ['json', 'csv'] } },
      async handler({ deps, query }) {
        const r = await crlReport(deps);
        if (query.format === 'csv')
          return new Download(
            'text/csv; charset=utf-8',
            toCsv(r.flatMap((x) => x.history as unknown as Array<Record<string, unknown>>)),
            'crls.csv',
          );
        return r;
      },
    },
    {
      method: 'GET',
      path: '/reports/statistics',
      access: 'reports:read',
      tag: 'reports',
      summary: 'Certificate statistics: by state, CA, profile, protocol, month of issue; revocations by reason',
      handler: async ({ deps }) => statistics(deps),
    },
  ];
  const pages: Page[] = [
    {
      path: '/reports',
      access: 'reports:read',
      title: 'Reports',
      menu: { id: 'reports', label: 'Reports', group: 'Reports' },
      async render(req: PageRequest) {
        const { deps, query } = req;
        const q = { ...query, days: Number(query.days) || undefined, limit: 10000 };
        const r = await certificateReport(deps, q);
        const api = (format: string) =>
          `/admin/api/v1/reports/certificates${qs({ type: r.type, days: query.days, ca: query.ca, profile: query.profile, from: query.from, to: query.to, format })}`;
        const issuing = (await cas.list(deps.pool)).filter((c) => c.role === 'issuing').map((c) => c.name);
        return html`${reportNav(`/reports?type=${r.type}`)}
          <form class="filters" method="get" action="/reports">
            ${select(
              'type',
              'Report',
              REPORT_TYPES.map((t): [string, string] => [t, t]),
              r.type,
            )}
            ${select('ca', 'CA', [['', 'every CA'], ...issuing.map((c): [string, string] => [c, c])], query.ca)}
            ${select('profile', 'Profile', [['', 'every profile'], ...[...deps.config.profiles.keys()].map((p): [string, string] => [p, p])], query.profile)}
            ${input('from', 'Period from', { type: 'date', value: query.from })}${input('to', 'Period before', { type: 'date', value: query.to })}
            ${input('days', 'Expiring within (days)', { type: 'number', value: query.days ?? '30' })}
            <button type="submit">Show</button>
          </form>
          <p id="report-total">
            ${r.total} certificate${r.total === 1 ? '' : 's'} · ${link(api('csv'), 'CSV')} · ${link(api('json'), 'JSON')}
          </p>
          <div class="charts">
            <div>
              <h2>Per profile</h2>
              ${chart('report-profile', doughnut(r.byProfile), { small: true })}
            </div>
            <div>
              <h2>Per CA</h2>
              ${chart('report-ca', doughnut(r.byCa), { small: true })}
            </div>
            <div>
              <h2>Per month</h2>
              ${chart('report-month', { type: 'bar', data: { labels: r.byMonth.map((m) => m.key), datasets: [{ label: 'certificates', backgroundColor: '#2f6fde', data: r.byMonth.map((m) => m.count) }] }, options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } }, { small: true })}
            </div>
          </div>
          ${table(
            r.items.slice(0, 500),
            ['Serial', 'State', 'Subject', 'Profile', 'CA', 'Protocol', 'Requester', 'Issued', 'Expires', 'Revoked'],
            (c) => [
              certLink(c.serial),
              badge(c.state),
              c.subject,
              c.profile,
              c.caName,
              c.protocol,
              c.requester,
              c.issuedAt,
              c.notAfter,
              c.revokedAt ? html`${c.revokedAt} (${c.revocationReason})` : '',
            ],
            { id: 'report', empty: 'No certificate matches.' },
          )}
          ${r.items.length > 500 ? html`<p>First 500 of ${r.total}: the CSV and JSON have all.</p>` : ''}`;
      },
    },
    {
      path: '/reports/crls',
      access: 'reports:read',
      title: 'CRL report',
      async render({ deps }) {
        const r = await crlReport(deps);
        return html`${reportNav('/reports/crls')}
          <p>${link('/admin/api/v1/reports/crls?format=csv', 'CSV')} · ${link('/admin/api/v1/reports/crls', 'JSON')}</p>
          ${table(r, ['CA', 'CRLs issued', 'Latest number', 'This update', 'Next update', 'Entries'], (x) => [x.ca, String(x.crls), x.latestNumber ?? '-', x.thisUpdate, x.nextUpdate, String(x.entries)], { id: 'crl-report' })}`;
      },
    },
    {
      path: '/reports/statistics',
      access: 'reports:read',
      title: 'Certificate statistics',
      async render({ deps }) {
        const s = await statistics(deps);
        const stateRows = Object.entries(s.byState).map(([key, count]) => ({ key, count }));
        return html`${reportNav('/reports/statistics')}
          <div class="charts">
            <div>
              <h2>By state</h2>
              ${chart('stats-state', doughnut(stateRows, STATE_COLOURS), { small: true })}
            </div>
            <div>
              <h2>By profile</h2>
              ${chart('stats-profile', stackedByState(s.byProfile), { small: true })}
            </div>
            <div>
              <h2>By protocol</h2>
              ${chart('stats-protocol', stackedByState(s.byProtocol), { small: true })}
            </div>
            <div>
              <h2>Issued per month</h2>
              ${chart('stats-month', stackedByState(s.byMonth), { small: true })}
            </div>
          </div>
          ${table(stateRows, ['State', 'Certificates'], (x) => [badge(x.key), String(x.count)], { id: 'stats' })}
          <h2>Revocations by reason</h2>
          ${table(s.revocationsByReason, ['Reason', 'Certificates'], (x) => [x.reason, String(x.count)], { empty: 'No revocations.' })}`;
      },
    },
  ];
  return { routes, pages };
}
