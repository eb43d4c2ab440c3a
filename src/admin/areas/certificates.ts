/**
 * Certificates: server-side search and paging, the detail page (decoded fields, PEM, the
 * request's workflow in the Temporal UI, the audit trail), and the actions — revoke,
 * hold, release, renew — each through the existing workflows (revoke-<serial>, and the
 * enrollment workflow for a renewal), never by writing the database directly.
 */
import { checkStatusChange, REVOKE_REASONS, type StatusAction } from '../../ca/status-change.ts';
import { EKU_OIDS } from '../../config/profiles.ts';
import { CaError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import * as auditLog from '../../db/repos/audit.ts';
import * as certificates from '../../db/repos/certificates.ts';
import type { CertificateRow } from '../../db/repos/certificates.ts';
import * as consoleDb from '../../db/repos/console.ts';
import * as requests from '../../db/repos/requests.ts';
import * as revocationDb from '../../db/repos/revocation.ts';
import * as cas from '../../db/repos/cas.ts';
import { describeCertificate, describeKeyKind, describePublicKey, pemEncode } from '../../pki/index.ts';
import { requestWorkflowId as workflowIdOfRequest } from '../../../workflows/api.ts';
import { issueAndWait } from '../../ra/enrollment.ts';
import { changeStatusAndWait } from '../../ra/revocation.ts';
import { Download, type AdminDeps, type ApiRequest, type ApiRoute, type Prop } from '../api.ts';
import type { Actor, Principal } from '../auth.ts';
import { apiForm, badge, fields, formatTime, html, input, link, query as qs, select, table, type Html } from '../html.ts';
import type { Page, PageRequest } from '../pages.ts';
import { can } from '../roles.ts';
import { auditTable } from './audit.ts';
import { certLink, workflowLink, workflowUrl } from './links.ts';

const EKU_NAMES = new Map(Object.entries(EKU_OIDS).map(([name, oid]) => [oid, name]));

/** How long a console action waits for its workflow. */
export const ACTION_TIMEOUT_MS = 60_000;

export function normalizeSerial(s: string): string {
  const hex = s.replace(/[:\s]/g, '').toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,64}$/.test(hex))
    throw new CaError('malformed', `"${s}" is not a hexadecimal serial number`, { rule: 'certificate.serial' });
  return hex;
}

const SEARCH_QUERY: Record<string, Prop> = {
  serial: { type: 'string', description: 'hex prefix of the serial (colons allowed)', maxLength: 100 },
  subject: { type: 'string', description: 'part of the subject DN', maxLength: 200 },
  san: { type: 'string', description: 'part of a subject alternative name', maxLength: 200 },
  state: { type: 'string', enum: consoleDb.CERT_STATES },
  profile: { type: 'string', maxLength: 100 },
  protocol: { type: 'string', enum: ['acme', 'est', 'cmp', 'operator'] },
  ca: { type: 'string', maxLength: 100 },
  requester: { type: 'string', description: 'part of the requester (ACME account, EST client, user)', maxLength: 200 },
  issuedFrom: { type: 'string', format: 'date-time' },
  issuedTo: { type: 'string', format: 'date-time' },
  expiresFrom: { type: 'string', format: 'date-time' },
  expiresTo: { type: 'string', format: 'date-time' },
  limit: { type: 'integer', minimum: 1, maximum: 1000 },
  offset: { type: 'integer', minimum: 0 },
};

const date = (v: unknown) => (typeof v === 'string' && v ? new Date(v) : undefined);

function searchFromQuery(q: Record<string, string | number | boolean | undefined>): consoleDb.CertificateSearch {
  return {
    serial: q.serial ? normalizeSerial(String(q.serial)) : undefined,
    subject: q.subject as string | undefined,
    san: q.san as string | undefined,
    state: q.state as consoleDb.CertState | undefined,
    profile: q.profile as string | undefined,
    protocol: q.protocol as string | undefined,
    ca: q.ca as string | undefined,
    requester: q.requester as string | undefined,
    issuedFrom: date(q.issuedFrom),
    issuedTo: date(q.issuedTo),
    expiresFrom: date(q.expiresFrom),
    expiresTo: date(q.expiresTo),
    limit: (q.limit as number | undefined) ?? 50,
    offset: (q.offset as number | undefined) ?? 0,
  };
}

async function getCert(deps: AdminDeps, serialArg: string): Promise<CertificateRow> {
  const serial = normalizeSerial(serialArg);
  const row = await certificates.get(deps.pool, serial);
  if (!row) throw new CaError('notFound', `no certificate with serial ${serial}`, { rule: 'certificate.unknown' });
  return row;
}

/** The workflow that issued a certificate (ACME orders are not in issuance_requests). */
async function requestWorkflowId(deps: AdminDeps, row: CertificateRow): Promise<string> {
  const request = await requests.get(deps.pool, row.requestId);
  if (request) return request.workflowId;
  return workflowIdOfRequest(row.protocol, row.requestId);
}

function consoleState(row: CertificateRow): consoleDb.CertState {
  if (row.status === 'signing') return 'signing';
  if (row.status === 'revoked') return 'revoked';
  if (row.notAfter.getTime() <= Date.now()) return 'expired';
  return row.status === 'hold' ? 'suspended' : 'active';
}

function allowedActions(principal: Principal, row: CertificateRow): string[] {
  if (!can(principal.role, 'certificates:manage')) return [];
  const state = consoleState(row);
  if (state === 'active') return ['revoke', 'hold', 'renew'];
  if (state === 'suspended') return ['revoke', 'release'];
  if (state === 'expired') return ['renew'];
  return [];
}

async function certificateDetail(deps: AdminDeps, principal: Principal, serialArg: string) {
  const row = await getCert(deps, serialArg);
  const d = row.certDer ? describeCertificate(row.certDer) : undefined;
  const workflowId = await requestWorkflowId(deps, row);
  const [trail, ocsp] = await Promise.all([
    auditLog.list(deps.pool, { object: row.serial, limit: 200 }),
    revocationDb.getOcsp(deps.pool, row.serial, 'sha256'),
  ]);
  let publicKey: string | undefined;
  try {
    publicKey = d ? describeKeyKind(describePublicKey(d.spki)) : undefined;
  } catch {
    publicKey = undefined;
  }
  return {
    serial: row.serial,
    state: consoleState(row),
    status: row.status,
    subject: row.subject,
    issuer: d?.issuer ?? null,
    sans: row.sans,
    profile: row.profile,
    ca: row.caName,
    protocol: row.protocol,
    requester: row.requester,
    requestId: row.requestId,
    replaces: row.replaces,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    issuedAt: row.issuedAt,
    revokedAt: row.revokedAt,
    revocationReason: row.revocationReason,
    publicKey: publicKey ?? null,
    keyUsage: d?.keyUsage ?? [],
    extKeyUsage: (d?.extKeyUsage ?? []).map((oid) => EKU_NAMES.get(oid) ?? oid),
    crlUrls: d?.crlUrls ?? [],
    ocspUrls: d?.ocspUrls ?? [],
    fingerprintSha256: d?.fingerprintSha256 ?? null,
    ocsp: ocsp ? { status: ocsp.certStatus, thisUpdate: ocsp.thisUpdate, nextUpdate: ocsp.nextUpdate } : null,
    workflowId,
    workflowUrl: workflowUrl(deps.config, workflowId) ?? null,
    pem: row.certDer ? pemEncode('CERTIFICATE', row.certDer) : null,
    actions: allowedActions(principal, row),
    audit: trail,
  };
}

/** Revoke / hold / release through the revocation workflow; waits for the new CRL and OCSP responses. */
async function changeStatus(deps: AdminDeps, who: Actor, serialArg: string, action: StatusAction, reason?: string) {
  const row = await getCert(deps, serialArg);
  checkStatusChange(row, action);
  const r = await changeStatusAndWait(
    deps,
    { serial: row.serial, action, reason: action === 'revoke' ? (reason ?? 'unspecified') : undefined, requester: who.actor },
    ACTION_TIMEOUT_MS,
  );
  return { ...r, message: `${r.serial} is ${r.status}${r.reason ? ` (${r.reason})` : ''}; CRL ${r.crlNumber} of ${r.caName} published` };
}

/** A new certificate for the same CSR, profile and CA through the enrollment workflow, linked to the old one. */
async function renew(deps: AdminDeps, who: Actor, serialArg: string) {
  const row = await getCert(deps, serialArg);
  if (row.status !== 'valid')
    throw new CaError('conflict', `certificate ${row.serial} is ${row.status}; only valid certificates are renewed`, {
      rule: 'certificate.status',
    });
  const requestId = `renew-${newId()}`;
  const result = await issueAndWait(
    deps,
    {
      requestId,
      protocol: 'operator',
      csr: row.csrDer.toString('base64'),
      profile: row.profile,
      caName: row.caName,
      requester: who.actor,
      replaces: row.serial,
      kind: 'renew',
    },
    ACTION_TIMEOUT_MS,
  );
  if (result.status === 'rejected') throw new CaError('policy', `renewal refused: ${result.message}`, { rule: 'certificate.renew' });
  return {
    serial: result.serial,
    replaces: row.serial,
    notAfter: result.notAfter,
    workflowId: result.workflowId,
    message: `renewed as ${result.serial}`,
  };
}

const serialParam = (req: ApiRequest) => req.params.serial!;

export function certificatesArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/certificates',
      access: 'certificates:read',
      tag: 'certificates',
      summary: 'Search certificates (server-side paging)',
      query: SEARCH_QUERY,
      async handler({ deps, query }) {
        const search = searchFromQuery(query);
        const { total, rows } = await consoleDb.searchCertificates(deps.pool, search);
        return { total, limit: search.limit, offset: search.offset, items: rows };
      },
    },
    {
      method: 'GET',
      path: '/certificates/{serial}',
      access: 'certificates:read',
      tag: 'certificates',
      summary: 'One certificate: decoded fields, OCSP status, its request workflow, audit trail, the actions the caller may take',
      handler: async (req) => certificateDetail(req.deps, req.principal, serialParam(req)),
    },
    {
      method: 'GET',
      path: '/certificates/{serial}/pem',
      access: 'certificates:read',
      tag: 'certificates',
      summary: 'The certificate in PEM (with its chain when chain=true)',
      produces: 'application/x-pem-file',
      query: { chain: { type: 'boolean' } },
      async handler({ deps, params, query }) {
        const row = await getCert(deps, params.serial!);
        if (!row.certDer) throw new CaError('conflict', `certificate ${row.serial} is still being signed`);
        const chain = query.chain
          ? (await cas.issuingChain(deps.pool, row.caName, { generation: row.caGeneration }))
              .map((der) => pemEncode('CERTIFICATE', der))
              .join('')
          : '';
        return new Download('application/x-pem-file', pemEncode('CERTIFICATE', row.certDer) + chain, `${row.serial}.pem`);
      },
    },
    {
      method: 'POST',
      path: '/certificates/{serial}/revoke',
      access: 'certificates:manage',
      tag: 'certificates',
      summary: 'Revoke (revocation workflow; returns once the new CRL and OCSP responses are published)',
      body: { properties: { reason: { type: 'string', enum: REVOKE_REASONS } } },
      handler: async (req) => changeStatus(req.deps, req.who, serialParam(req), 'revoke', req.body.reason),
    },
    {
      method: 'POST',
      path: '/certificates/{serial}/hold',
      access: 'certificates:manage',
      tag: 'certificates',
      summary: 'Suspend (certificateHold) through the revocation workflow',
      handler: async (req) => changeStatus(req.deps, req.who, serialParam(req), 'hold'),
    },
    {
      method: 'POST',
      path: '/certificates/{serial}/release',
      access: 'certificates:manage',
      tag: 'certificates',
      summary: 'Release from hold through the revocation workflow',
      handler: async (req) => changeStatus(req.deps, req.who, serialParam(req), 'release'),
    },
    {
      method: 'POST',
      path: '/certificates/{serial}/renew',
      access: 'certificates:manage',
      tag: 'certificates',
      summary: 'Issue a new certificate for the same request (CSR, profile, CA) through the enrollment workflow',
      status: 201,
      handler: async (req) => renew(req.deps, req.who, serialParam(req)),
    },
  ];

  const pages: Page[] = [
    {
      path: '/certificates',
      access: 'certificates:read',
      title: 'Certificates',
      menu: { id: 'certificates', label: 'Certificates', group: 'Certificates' },
      render: searchPage,
    },
    {
      path: '/certificates/:serial',
      access: 'certificates:read',
      title: (req) => `Certificate ${req.params.serial}`,
      render: detailPage,
    },
  ];
  return { routes, pages };
}

async function searchPage(req: PageRequest): Promise<Html> {
  const { deps, query } = req;
  const search = searchFromQuery({ ...query, limit: Number(query.limit) || 50, offset: Number(query.offset) || 0 });
  const { total, rows } = await consoleDb.searchCertificates(deps.pool, search);
  const profiles = [...deps.config.profiles.keys()];
  const caNames = (await cas.list(deps.pool)).filter((c) => c.role === 'issuing').map((c) => c.name);
  const page = (offset: number) => `/certificates${qs({ ...query, offset })}`;
  const end = Math.min(search.offset! + rows.length, total);
  return html`<form class="filters" method="get" action="/certificates" id="search">
      ${input('serial', 'Serial', { value: query.serial })}${input('subject', 'Subject', { value: query.subject })}${input('san', 'SAN', { value: query.san })}
      ${select('state', 'State', [['', 'any'], ...consoleDb.CERT_STATES.map((s): [string, string] => [s, s])], query.state)}
      ${select('profile', 'Profile', [['', 'any'], ...profiles.map((p): [string, string] => [p, p])], query.profile)}
      ${select(
        'protocol',
        'Protocol',
        [
          ['', 'any'],
          ['acme', 'ACME'],
          ['est', 'EST'],
          ['cmp', 'CMP'],
          ['operator', 'operator'],
        ],
        query.protocol,
      )}
      ${select('ca', 'CA', [['', 'any'], ...caNames.map((c): [string, string] => [c, c])], query.ca)}
      ${input('requester', 'Requester', { value: query.requester })}
      ${input('issuedFrom', 'Issued from', { type: 'date', value: query.issuedFrom })}${input('issuedTo', 'Issued before', { type: 'date', value: query.issuedTo })}
      ${input('expiresFrom', 'Expires from', { type: 'date', value: query.expiresFrom })}${input('expiresTo', 'Expires before', { type: 'date', value: query.expiresTo })}
      <button type="submit">Search</button>
    </form>
    <p id="result-count">${total} certificate${total === 1 ? '' : 's'}${total ? html`, showing ${search.offset! + 1}–${end}` : ''}</p>
    ${table(
      rows,
      ['Serial', 'State', 'Subject', 'SANs', 'Profile', 'Protocol', 'Requester', 'Issued', 'Expires'],
      (c) => [certLink(c.serial), badge(c.state), c.subject, c.sans.join(', '), c.profile, c.protocol, c.requester, c.issuedAt, c.notAfter],
      { id: 'certificates' },
    )}
    <p class="pager">
      ${search.offset! > 0 ? link(page(Math.max(0, search.offset! - search.limit!)), '← previous') : ''}
      ${end < total ? link(page(end), 'next →') : ''}
    </p>`;
}

async function detailPage(req: PageRequest): Promise<Html> {
  const c = await certificateDetail(req.deps, req.principal, req.params.serial!);
  const actions: Html[] = [];
  const api = `/admin/api/v1/certificates/${c.serial}`;
  if (c.actions.includes('revoke')) {
    actions.push(
      apiForm({
        method: 'POST',
        action: `${api}/revoke`,
        id: 'revoke',
        submit: 'Revoke',
        danger: true,
        confirm: `Revoke certificate ${c.serial}? This cannot be undone.`,
        body: select('reason', 'Reason', [...REVOKE_REASONS], 'unspecified'),
      }),
    );
  }
  if (c.actions.includes('hold'))
    actions.push(apiForm({ method: 'POST', action: `${api}/hold`, id: 'hold', submit: 'Hold (suspend)', body: html`` }));
  if (c.actions.includes('release'))
    actions.push(apiForm({ method: 'POST', action: `${api}/release`, id: 'release', submit: 'Release from hold', body: html`` }));
  if (c.actions.includes('renew'))
    actions.push(apiForm({ method: 'POST', action: `${api}/renew`, id: 'renew', submit: 'Renew', then: 'show', body: html`` }));
  return html`<p>${badge(c.state)} <span id="cert-state">${c.state}</span></p>
    ${fields([
      ['Serial', html`<code id="serial">${c.serial}</code>`],
      ['Subject', c.subject],
      ['Issuer', c.issuer],
      ['Subject alternative names', c.sans.join(', ')],
      ['Validity', html`${formatTime(c.notBefore)} – ${formatTime(c.notAfter)}`],
      ['Public key', c.publicKey],
      ['Key usage', c.keyUsage.join(', ')],
      ['Extended key usage', c.extKeyUsage.join(', ')],
      ['Profile', c.profile],
      ['CA', c.ca],
      ['Protocol', c.protocol],
      ['Requester', c.requester],
      ['Request', html`<code>${c.requestId}</code>`],
      ['Workflow', workflowLink(req.deps.config, c.workflowId)],
      ['Renews', certLink(c.replaces)],
      ['Revoked', c.revokedAt ? html`${formatTime(c.revokedAt)} (${c.revocationReason})` : '-'],
      [
        'OCSP response',
        c.ocsp ? html`${c.ocsp.status}, this update ${formatTime(c.ocsp.thisUpdate)}, next ${formatTime(c.ocsp.nextUpdate)}` : '-',
      ],
      ['CRL / OCSP URLs', [...c.crlUrls, ...c.ocspUrls].join(', ')],
      ['SHA-256 fingerprint', html`<code>${c.fingerprintSha256}</code>`],
      ['Download', c.pem ? html`${link(`${api}/pem`, 'PEM')} · ${link(`${api}/pem?chain=true`, 'PEM with chain')}` : '-'],
    ])}
    ${
      actions.length
        ? html`<h2>Actions</h2>
            <div class="actions" id="actions">${actions}</div>`
        : ''
    }
    ${
      c.pem
        ? html`<details>
            <summary>PEM</summary>
            <pre>${c.pem}</pre>
          </details>`
        : ''
    }
    <h2>Audit trail</h2>
    ${auditTable(c.audit)}`;
}
