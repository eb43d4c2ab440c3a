/** The audit log: filter by actor, action, target, result and time; recompute the chain; the signed checkpoints. */
import * as auditLog from '../../db/repos/audit.ts';
import { verifyAuditLog } from '../audit-verify.ts';
import type { AuditRow } from '../../db/repos/audit.ts';
import { Download, type ApiRoute, type Prop } from '../api.ts';
import { badge, fields, formatTime, html, input, link, query as qs, select, table, type Html } from '../html.ts';
import type { Page } from '../pages.ts';
import { toCsv } from './csv.ts';

const FILTER: Record<string, Prop> = {
  actor: { type: 'string', description: 'exact actor, or a prefix ending in ":" (user:, est:, acme:)', maxLength: 200 },
  action: { type: 'string', description: 'exact action, or a prefix ending in "." (cert., user.)', maxLength: 100 },
  target: { type: 'string', description: 'the object: serial, user, CA, request id', maxLength: 200 },
  result: { type: 'string', enum: ['ok', 'failed', 'denied'] },
  from: { type: 'string', format: 'date-time' },
  to: { type: 'string', format: 'date-time' },
  limit: { type: 'integer', minimum: 1, maximum: 1000 },
  offset: { type: 'integer', minimum: 0 },
  format: { type: 'string', enum: ['json', 'csv'] },
};

function filterOf(q: Record<string, string | number | boolean | undefined>): auditLog.AuditFilter {
  return {
    actor: (q.actor as string) || undefined,
    action: (q.action as string) || undefined,
    object: (q.target as string) || undefined,
    result: (q.result as string) || undefined,
    from: q.from ? new Date(String(q.from)) : undefined,
    to: q.to ? new Date(String(q.to)) : undefined,
    limit: (q.limit as number) || 100,
    offset: (q.offset as number) || 0,
  };
}

function entryView(e: AuditRow) {
  return {
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    role: e.role,
    action: e.action,
    target: e.object,
    result: e.result,
    requestId: e.requestId,
    details: e.details,
    hash: e.hash,
  };
}

export function auditTable(rows: AuditRow[], opts: { id?: string } = {}): Html {
  return table(
    rows,
    ['#', 'Time', 'Actor', 'Role', 'Action', 'Target', 'Result', 'Details'],
    (e) => [
      String(e.seq),
      formatTime(e.at),
      link(`/audit${qs({ actor: e.actor })}`, e.actor),
      e.role,
      e.action,
      e.object ? link(`/audit${qs({ target: e.object })}`, e.object) : '-',
      badge(e.result),
      Object.keys(e.details).length ? html`<code>${JSON.stringify(e.details)}</code>` : '',
    ],
    { id: opts.id ?? 'audit', empty: 'No audit entries.' },
  );
}

export function auditArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/audit',
      access: 'audit:read',
      tag: 'audit',
      summary: 'Audit entries, newest first, filtered (JSON or CSV)',
      query: FILTER,
      async handler({ deps, query }) {
        const filter = filterOf(query);
        const [rows, total] = await Promise.all([auditLog.list(deps.pool, filter), auditLog.count(deps.pool, filter)]);
        const items = rows.map(entryView);
        if (query.format === 'csv') {
          return new Download(
            'text/csv; charset=utf-8',
            toCsv(items.map((i) => ({ ...i, details: JSON.stringify(i.details) }))),
            'audit.csv',
          );
        }
        return { total, limit: filter.limit, offset: filter.offset, items };
      },
    },
    {
      method: 'GET',
      path: '/audit/verify',
      access: 'audit:read',
      tag: 'audit',
      summary:
        'Recompute the hash chain; check the signed checkpoints against the pinned audit key and those kept outside the database; names the first broken entry',
      handler: async ({ deps }) => verifyAuditLog(deps.pool, deps.config.home),
    },
    {
      method: 'GET',
      path: '/audit/checkpoints',
      access: 'audit:read',
      tag: 'audit',
      summary: 'The signed checkpoints of the chain head (signature base64, message as signed)',
      async handler({ deps }) {
        return (await auditLog.listCheckpoints(deps.pool, { limit: 500 })).map((c) => ({
          seq: c.seq,
          hash: c.hash,
          signedAt: c.signedAt,
          keyId: c.keyId,
          signAlg: c.signAlg,
          signature: c.signature.toString('base64'),
          message: auditLog.checkpointMessage(c).toString('utf8'),
        }));
      },
    },
  ];
  const pages: Page[] = [
    {
      path: '/audit',
      access: 'audit:read',
      title: 'Audit log',
      menu: { id: 'audit', label: 'Audit log', group: 'Reports' },
      async render({ deps, query }) {
        const filter = filterOf({ ...query, limit: Number(query.limit) || 100, offset: Number(query.offset) || 0 });
        const [rows, total, head, checkpoints] = await Promise.all([
          auditLog.list(deps.pool, filter),
          auditLog.count(deps.pool, filter),
          auditLog.head(deps.pool),
          auditLog.listCheckpoints(deps.pool, { limit: 5 }),
        ]);
        const verify = query.verify ? await verifyAuditLog(deps.pool, deps.config.home) : undefined;
        const latest = checkpoints[checkpoints.length - 1];
        const next =
          filter.offset! + rows.length < total ? link(`/audit${qs({ ...query, offset: filter.offset! + rows.length })}`, 'older →') : '';
        return html`${fields([
            ['Entries', String(head.seq)],
            ['Chain head', html`<code>${head.hash}</code>`],
            [
              'Latest signed checkpoint',
              latest
                ? html`#${latest.seq} at ${formatTime(latest.signedAt)} (key ${latest.keyId})`
                : `none yet (the worker signs one every ${Math.round(deps.config.audit.checkpointSeconds / 60)} min)`,
            ],
            [
              'Verification',
              verify
                ? html`<span id="verify-result"
                    >${badge(verify.ok ? 'ok' : 'broken')}
                    ${verify.ok ? `${verify.entries} entries and ${verify.checkpoints.length} checkpoints verified` : verify.problems.slice(0, 5).join('; ')}</span
                  >`
                : link('/audit?verify=1', 'verify the chain now'),
            ],
          ])}
          <form class="filters" method="get" action="/audit">
            ${input('actor', 'Actor', { value: query.actor, placeholder: 'user:alice or est:' })}${input('action', 'Action', { value: query.action, placeholder: 'cert. or user.add' })}
            ${input('target', 'Target', { value: query.target })}${select('result', 'Result', [['', 'any'], 'ok', 'failed', 'denied'], query.result)}
            ${input('from', 'From', { type: 'date', value: query.from })}${input('to', 'Before', { type: 'date', value: query.to })}
            <button type="submit">Filter</button>
          </form>
          <p>
            ${total} entries · ${link(`/admin/api/v1/audit${qs({ ...query, format: 'csv', verify: undefined })}`, 'CSV')} ·
            ${link(`/admin/api/v1/audit${qs({ ...query, verify: undefined })}`, 'JSON')}
          </p>
          ${auditTable(rows)}
          <p class="pager">${next}</p>`;
      },
    },
  ];
  return { routes, pages };
}
