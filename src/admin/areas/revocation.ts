/** CRLs (issued, this/next update, download, generate now) and OCSP freshness (renew due responses now). */
import { CaError } from '../../core/errors.ts';
import * as cas from '../../db/repos/cas.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { pemEncode } from '../../pki/index.ts';
import { refreshAndWait } from '../../ra/revocation.ts';
import { Download, type AdminDeps, type ApiRoute } from '../api.ts';
import type { Actor } from '../auth.ts';
import { apiForm, badge, fields, html, link, select, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';
import { ACTION_TIMEOUT_MS } from './certificates.ts';
import { caUrls } from '../../ca/urls.ts';

/** A new CRL now (one CA or all issuing CAs) and the OCSP responses that are due, as `certflow crl generate` does. */
async function generate(deps: AdminDeps, who: Actor, caName?: string) {
  if (caName) {
    const ca = await cas.get(deps.pool, caName);
    if (!ca) throw new CaError('notFound', `no CA named "${caName}"`, { rule: 'ca.unknown' });
  }
  const r = await refreshAndWait(deps, { force: true, caName, requester: who.actor }, ACTION_TIMEOUT_MS);
  return {
    ...r,
    message:
      r.crls.map((c) => `CRL ${c.crlNumber} of ${c.caName}: ${c.entries} entries`).join('; ') +
      (r.ocspSigned ? `; ${r.ocspSigned} OCSP responses renewed` : ''),
  };
}

function freshness(deps: AdminDeps, c: consoleDb.CrlInfo): boolean {
  const now = Date.now();
  return c.nextUpdate.getTime() > now && now - c.thisUpdate.getTime() <= deps.config.revocation.crlRefreshSeconds * 1500;
}

export function revocationArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/crls',
      access: 'crls:read',
      tag: 'revocation',
      summary: 'CRLs issued, newest first',
      query: { ca: { type: 'string', maxLength: 100 }, latest: { type: 'boolean' } },
      async handler({ deps, query }) {
        const rows = await consoleDb.listCrls(deps.pool, { ca: query.ca as string, latestOnly: query.latest as boolean });
        return rows.map((c) => ({ ...c, fresh: freshness(deps, c), url: caUrls(deps.config, c.caName, c.generation).crl }));
      },
    },
    {
      method: 'GET',
      path: '/crls/{ca}/{number}',
      access: 'crls:read',
      tag: 'revocation',
      summary: 'One CRL (DER, or PEM with format=pem)',
      produces: 'application/pkix-crl',
      query: { format: { type: 'string', enum: ['der', 'pem'] } },
      async handler({ deps, params, query }) {
        const der = await consoleDb.getCrlDer(deps.pool, params.ca!, params.number!);
        if (!der) throw new CaError('notFound', `no CRL ${params.number} of CA "${params.ca}"`, { rule: 'crl.unknown' });
        return query.format === 'pem'
          ? new Download('application/x-pem-file', pemEncode('X509 CRL', der), `${params.ca}-${params.number}.crl.pem`)
          : new Download('application/pkix-crl', der, `${params.ca}-${params.number}.crl`);
      },
    },
    {
      method: 'POST',
      path: '/crls/generate',
      access: 'crls:manage',
      tag: 'revocation',
      summary: 'Sign a new CRL now (one CA or every issuing CA) and renew the OCSP responses that are due (CRL workflow)',
      body: { properties: { ca: { type: 'string', maxLength: 100 } } },
      handler: async ({ deps, who, body }) => generate(deps, who, body.ca || undefined),
    },
    {
      method: 'GET',
      path: '/ocsp',
      access: 'crls:read',
      tag: 'revocation',
      summary: 'OCSP freshness per CA: certificates, missing or expired responses, responses due for renewal',
      async handler({ deps }) {
        const rows = await consoleDb.ocspFreshness(deps.pool, deps.config.revocation.ocspRefreshSeconds);
        return {
          validitySeconds: deps.config.revocation.ocspValiditySeconds,
          refreshSeconds: deps.config.revocation.ocspRefreshSeconds,
          cas: rows,
        };
      },
    },
  ];
  const pages: Page[] = [
    {
      path: '/crls',
      access: 'crls:read',
      title: 'CRLs',
      menu: { id: 'crls', label: 'CRLs', group: 'Certificates' },
      async render({ deps, principal }) {
        const [rows, issuing] = await Promise.all([
          consoleDb.listCrls(deps.pool, { limit: 200 }),
          cas.list(deps.pool).then((l) => l.filter((c) => c.role === 'issuing')),
        ]);
        const r = deps.config.revocation;
        return html`${fields([
          ['Validity', `${r.crlValiditySeconds / 3600} h`],
          ['Renewed when older than', `${r.crlRefreshSeconds / 3600} h (and at every revocation, hold and release)`],
          ['Published at', issuing.map((c) => `${deps.config.publicHttpUrl}/crl/${c.name}.crl`).join(', ')],
        ])}
        ${
          can(principal.role, 'crls:manage')
            ? apiForm({
                method: 'POST',
                action: '/admin/api/v1/crls/generate',
                id: 'generate-crl',
                submit: 'Generate CRL now',
                body: select('ca', 'CA', [['', 'every issuing CA'], ...issuing.map((c): [string, string] => [c.name, c.name])]),
              })
            : ''
        }
        ${table(
          rows,
          ['CA', 'Number', 'This update', 'Next update', 'Entries', 'Size', 'Fresh', 'Download'],
          (c) => [
            c.caName,
            c.crlNumber,
            c.thisUpdate,
            c.nextUpdate,
            String(c.entries),
            `${c.size} B`,
            badge(freshness(deps, c) ? 'fresh' : 'stale'),
            html`${link(`/admin/api/v1/crls/${encodeURIComponent(c.caName)}/${c.crlNumber}`, 'DER')} ·
            ${link(`/admin/api/v1/crls/${encodeURIComponent(c.caName)}/${c.crlNumber}?format=pem`, 'PEM')}`,
          ],
          { id: 'crls', empty: 'No CRL yet (the worker signs the first one at start).' },
        )}`;
      },
    },
    {
      path: '/ocsp',
      access: 'crls:read',
      title: 'OCSP',
      menu: { id: 'ocsp', label: 'OCSP', group: 'Certificates' },
      async render({ deps, principal }) {
        const rows = await consoleDb.ocspFreshness(deps.pool, deps.config.revocation.ocspRefreshSeconds);
        const r = deps.config.revocation;
        return html`${fields([
            ['Responder', `${deps.config.publicHttpUrl}/ocsp`],
            ['Response validity', `${r.ocspValiditySeconds / 3600} h`],
            ['Renewed when expiring within', `${r.ocspRefreshSeconds / 3600} h (hourly schedule)`],
          ])}
          <p class="hint">
            The worker signs OCSP responses ahead of time (SHA-1 and SHA-256 certIDs) at issuance, at every status change and before they
            expire; the responder serves them without a nonce (RFC 5019).
          </p>
          ${table(
            rows,
            ['CA', 'Certificates', 'Missing or expired', 'Due soon', 'Oldest this update', 'Earliest next update', 'Fresh'],
            (o) => [
              o.caName,
              String(o.certificates),
              String(o.missingOrExpired),
              String(o.dueSoon),
              o.oldestThisUpdate,
              o.earliestNextUpdate,
              badge(o.missingOrExpired === 0 ? 'fresh' : 'stale'),
            ],
            { id: 'ocsp' },
          )}
          ${can(principal.role, 'crls:manage') ? apiForm({ method: 'POST', action: '/admin/api/v1/crls/generate', id: 'renew-ocsp', submit: 'Renew due responses now (with new CRLs)', body: html`` }) : ''}`;
      },
    },
  ];
  return { routes, pages };
}
