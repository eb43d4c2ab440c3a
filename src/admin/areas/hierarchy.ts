/** CA hierarchy (tree, validity, key algorithm and backend, certificate and chain downloads) and the key stores. */
import { CaError } from '../../core/errors.ts';
import * as cas from '../../db/repos/cas.ts';
import type { CaRow } from '../../db/repos/cas.ts';
import * as audit from '../../db/repos/audit.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { describeCertificate, pemEncode } from '../../pki/index.ts';
import { Download, type AdminDeps, type ApiRoute } from '../api.ts';
import { apiForm, badge, fields, html, input, link, listInput, select, table, textarea, type Html } from '../html.ts';
import { can } from '../roles.ts';
import { caExpiryReport, type CaExpiry } from '../../ra/ca-expiry.ts';
import { REVOKE_REASONS } from '../../ca/status-change.ts';
import { KEY_ALGS } from '../../keys/types.ts';
import { runCaOperation, type CaOperation } from '../../ra/cas.ts';
import type { Page } from '../pages.ts';

function caView(ca: CaRow, expiry?: CaExpiry) {
  const d = describeCertificate(ca.certDer);
  return {
    name: ca.name,
    role: ca.role,
    parent: ca.parent,
    status: ca.status,
    external: ca.external,
    generation: ca.generation,
    revokedAt: ca.revokedAt,
    revocationReason: ca.revocationReason,
    nameConstraints: d.nameConstraints ?? null,
    expiry: expiry ?? null,
    subject: ca.subject,
    serial: ca.serial,
    notBefore: ca.notBefore,
    notAfter: ca.notAfter,
    keyAlg: ca.keyAlg,
    keyBackend: ca.keyBackend,
    keyId: ca.keyId,
    pathLen: d.pathLen ?? null,
    fingerprintSha256: d.fingerprintSha256,
    valid: ca.notBefore.getTime() <= Date.now() && ca.notAfter.getTime() > Date.now(),
  };
}

/** Every CA with its expiry warning, and the pending ones (waiting for an outside CA's certificate). */
async function hierarchyView(deps: AdminDeps) {
  const [all, pending, expiry] = await Promise.all([
    cas.list(deps.pool),
    cas.listPending(deps.pool),
    caExpiryReport(deps.pool, deps.config),
  ]);
  const warned = new Map(expiry.map((w) => [w.ca, w]));
  return {
    cas: all.map((c) => caView(c, warned.get(c.name))),
    pending: pending.map((p) => ({
      name: p.name,
      generation: p.generation,
      subject: p.key.subject,
      keyAlg: p.key.keyAlg,
      hasRequest: Boolean(p.key.csrDer),
    })),
    expiry,
  };
}

const CA_NAME_PROP = { type: 'string', minLength: 1, maxLength: 48, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
const PEM_PROP = { type: 'string', minLength: 1, maxLength: 65_536, description: 'PEM' } as const;
const KEY_ALG_PROP = { type: 'string', enum: KEY_ALGS } as const;

/** Runs a CA operation's workflow for a console user; the answer carries the result (and its message). */
async function caOperation(deps: AdminDeps, operation: CaOperation) {
  return runCaOperation(deps, operation, CA_ACTION_TIMEOUT_MS);
}

/** Key generation in an HSM and the parent's signature take a while. */
const CA_ACTION_TIMEOUT_MS = 120_000;

async function getCa(deps: AdminDeps, name: string): Promise<CaRow> {
  const ca = await cas.get(deps.pool, name);
  if (!ca) throw new CaError('notFound', `no CA named "${name}"`, { rule: 'ca.unknown' });
  return ca;
}

async function chainPem(deps: AdminDeps, name: string): Promise<string> {
  return (await cas.issuingChain(deps.pool, name, { includeRoot: true })).map((d) => pemEncode('CERTIFICATE', d)).join('');
}

async function keyStores(deps: AdminDeps) {
  const [caRows, others] = await Promise.all([cas.list(deps.pool), consoleDb.serviceKeys(deps.pool)]);
  const pkcs11 = deps.config.keys.pkcs11;
  return {
    configuredBackend: deps.config.keys.backend,
    pkcs11: deps.config.keys.backend === 'pkcs11' ? { module: pkcs11.module, tokenLabel: pkcs11.tokenLabel } : null,
    keys: [
      ...caRows.map((c) => ({
        keyId: c.keyId,
        purpose: `CA ${c.name} (${c.role})`,
        alg: c.keyAlg,
        backend: c.keyBackend,
        createdAt: c.createdAt,
      })),
      ...others,
    ],
  };
}

/** The actions a CA Administrator has on one CA (rollover, revoke, a subordinate below it). */
function caActions(ca: CaRow): Html {
  if (ca.external || ca.status !== 'active') return html``;
  const path = `/admin/api/v1/cas/${encodeURIComponent(ca.name)}`;
  return html`<details class="ca-actions">
    <summary>Actions</summary>
    ${apiForm({
      method: 'POST',
      action: `${path}/rollover`,
      id: `rollover-${ca.name}`,
      submit: 'Roll over',
      confirm: `Make a new key and certificate for ${ca.name}?`,
      body: html`${input('activateAt', 'Issuance moves at (ISO time, empty: at once)', { placeholder: '2030-01-01T00:00:00Z' })}
      ${input('subject', 'Subject of the new certificate (empty: unchanged)', { placeholder: ca.subject })}`,
    })}
    ${apiForm({
      method: 'POST',
      action: `${path}/revoke`,
      id: `revoke-ca-${ca.name}`,
      submit: 'Revoke this CA',
      danger: true,
      confirm: `Revoke CA ${ca.name} and every certificate it issued? It never signs again.`,
      body: select(
        'reason',
        'Reason',
        REVOKE_REASONS.map((r) => r),
        'cACompromise',
      ),
    })}
  </details>`;
}

function tree(all: CaRow[], parent: string | null, manage: boolean, warnings: Map<string, CaExpiry>): Html {
  const children = all.filter((c) => c.parent === parent);
  if (!children.length) return html``;
  return html`<ul class="tree">
    ${children.map((ca) => {
      const v = caView(ca, warnings.get(ca.name));
      const base = `/admin/api/v1/cas/${encodeURIComponent(ca.name)}`;
      return html`<li data-ca="${ca.name}">
        <strong>${ca.name}</strong> ${badge(ca.role)} ${badge(ca.status === 'revoked' ? 'revoked' : v.valid ? 'valid' : 'expired')}
        ${ca.external ? badge('outside certflow') : ''} ${v.expiry ? badge(`expiry ${v.expiry.level}`, 'warn') : ''}
        ${fields([
          ['Subject', ca.subject],
          ['Validity', html`${ca.notBefore} – ${ca.notAfter}`],
          [
            'Key',
            ca.external
              ? 'held outside certflow'
              : html`${ca.keyAlg} in the ${ca.keyBackend} key store (id <code>${ca.keyId}</code>), generation ${String(ca.generation)}`,
          ],
          ['Serial', html`<code>${ca.serial}</code>`],
          ['SHA-256', html`<code>${v.fingerprintSha256}</code>`],
          ['Path length', v.pathLen === null ? '-' : String(v.pathLen)],
          [
            'Name constraints',
            v.nameConstraints
              ? `permitted ${v.nameConstraints.permitted.join(', ') || '-'}; excluded ${v.nameConstraints.excluded.join(', ') || '-'}`
              : '-',
          ],
          ['Revoked', ca.revokedAt ? html`${ca.revokedAt} (${ca.revocationReason ?? 'unspecified'})` : undefined],
          ['Expiry', v.expiry?.message],
          [
            'Download',
            html`${link(`${base}/certificate`, 'certificate (PEM)')} · ${link(`${base}/certificate?format=der`, 'DER')} ·
            ${link(`${base}/chain`, 'chain (PEM)')}`,
          ],
        ])}${manage ? caActions(ca) : ''}${tree(all, ca.name, manage, warnings)}
      </li>`;
    })}
  </ul>`;
}

/** The CA Administrator's forms: create a CA, import one with its key in the token. */
function createForms(all: CaRow[]): Html {
  const parents = all.filter((c) => !c.external && c.status === 'active').map((c): [string, string] => [c.name, `below ${c.name}`]);
  return html`<section id="ca-create">
    <h2>Create a CA</h2>
    ${apiForm({
      method: 'POST',
      action: '/admin/api/v1/cas',
      id: 'create-ca',
      submit: 'Create',
      then: 'show',
      body: html`${input('name', 'Name', { required: true })}
        ${select('parent', 'Parent', [['', '(none: a root or external)'], ...parents])}
        <label><input type="checkbox" name="external" /> external: its request is signed outside certflow</label>
        <label><input type="checkbox" name="root" /> a new self-signed root</label>
        ${input('subject', 'Subject', { placeholder: 'CN=Devices CA,O=Example' })}
        ${select('keyAlg', 'Key algorithm', [['', 'default'], ...KEY_ALGS.map((a): [string, string] => [a, a])])}
        ${input('validityDays', 'Validity (days)', { type: 'number' })} ${input('pathLen', 'Path length', { type: 'number' })}
        ${listInput('permitted', 'Permitted names', 'dns:example.com, ip:10.0.0.0/8')}
        ${listInput('excluded', 'Excluded names', 'dns:secret.example.com')}`,
    })}
    <h2>Import a CA whose key is in the worker's key store</h2>
    ${apiForm({
      method: 'POST',
      action: '/admin/api/v1/cas/import',
      id: 'import-ca',
      submit: 'Import',
      body: html`${input('name', 'Name', { required: true })}
      ${input('key', 'Key (PKCS#11 label or pkcs11: URI)', { required: true, placeholder: 'pkcs11:token=ca;object=issuing-2019' })}
      ${textarea('certificate', 'Certificate (PEM)', { required: true })}
      ${textarea('chain', 'Chain to a trust anchor (PEM, if any)', { rows: 4 })}`,
    })}
    <p class="hint">
      A PKCS#8 key file is imported with <code>certflow ca import --key</code> where the worker's key store is: keys never travel through
      the console.
    </p>
  </section>`;
}

function pendingList(pending: Awaited<ReturnType<typeof hierarchyView>>['pending'], manage: boolean): Html {
  if (!pending.length) return html``;
  return html`<section id="ca-pending">
    <h2>Waiting for an outside CA</h2>
    ${table(
      pending,
      ['CA', 'Subject', 'Key', 'Request', manage ? 'Certificate' : ''],
      (p) => [
        p.name,
        p.subject,
        p.keyAlg,
        p.hasRequest ? link(`/admin/api/v1/cas/${encodeURIComponent(p.name)}/csr`, 'download CSR') : '-',
        manage
          ? apiForm({
              method: 'POST',
              action: `/admin/api/v1/cas/${encodeURIComponent(p.name)}/certificate`,
              id: `import-cert-${p.name}`,
              submit: 'Activate',
              body: html`${textarea('certificate', 'Certificate (PEM)', { required: true, rows: 4 })}
              ${textarea('chain', 'Chain (PEM)', { rows: 3 })}`,
            })
          : '',
      ],
      { id: 'pending-cas' },
    )}
  </section>`;
}

export function hierarchyArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/cas',
      access: 'hierarchy:read',
      tag: 'hierarchy',
      summary: 'The CAs: role, parent, status, subject, validity, key algorithm and backend, expiry warnings; and the pending ones',
      handler: async ({ deps }) => hierarchyView(deps),
    },
    {
      method: 'GET',
      path: '/cas/{name}/certificate',
      access: 'hierarchy:read',
      tag: 'hierarchy',
      summary: "A CA's certificate (PEM, or DER with format=der)",
      produces: 'application/x-pem-file',
      query: { format: { type: 'string', enum: ['pem', 'der'] } },
      async handler({ deps, params, query }) {
        const ca = await getCa(deps, params.name!);
        return query.format === 'der'
          ? new Download('application/pkix-cert', Buffer.from(ca.certDer), `${ca.name}.crt`)
          : new Download('application/x-pem-file', pemEncode('CERTIFICATE', ca.certDer), `${ca.name}.pem`);
      },
    },
    {
      method: 'GET',
      path: '/cas/{name}/chain',
      access: 'hierarchy:read',
      tag: 'hierarchy',
      summary: "A CA's chain up to and including the root (PEM)",
      produces: 'application/x-pem-file',
      async handler({ deps, params }) {
        const ca = await getCa(deps, params.name!);
        return new Download('application/x-pem-file', await chainPem(deps, ca.name), `${ca.name}-chain.pem`);
      },
    },
    {
      method: 'GET',
      path: '/cas/{name}/csr',
      access: 'hierarchy:read',
      tag: 'hierarchy',
      summary: "A pending (external) CA's PKCS#10 request, to be signed by the outside CA (PEM)",
      produces: 'application/pkcs10',
      async handler({ deps, params }) {
        const pending = (await cas.keys(deps.pool, params.name!)).find((k) => k.csrDer && !k.certDer);
        if (!pending) throw new CaError('notFound', `CA "${params.name}" has no pending request`, { rule: 'ca.import.notPending' });
        return new Download('application/pkcs10', pemEncode('CERTIFICATE REQUEST', pending.csrDer!), `${params.name}.csr`);
      },
    },
    {
      method: 'POST',
      path: '/cas',
      access: 'cas:manage',
      tag: 'hierarchy',
      summary: 'Create a CA: a subordinate of `parent`, a new `root`, or `external` (its request for an outside CA to sign, in csrPem)',
      status: 201,
      body: {
        properties: {
          name: CA_NAME_PROP,
          parent: { type: 'string', maxLength: 48, description: 'the certflow CA that signs it' },
          root: { type: 'boolean', description: 'a new self-signed root' },
          external: { type: 'boolean', description: 'signed outside certflow: the answer carries the PKCS#10 request' },
          subject: { type: 'string', maxLength: 512, description: 'subject DN (default CN=<name>)' },
          keyAlg: KEY_ALG_PROP,
          validityDays: { type: 'integer', minimum: 1, maximum: 36_500 },
          pathLen: { type: 'integer', minimum: 0, maximum: 16 },
          permitted: {
            type: 'array',
            maxItems: 64,
            maxLength: 256,
            description: 'name constraints, permitted subtrees: dns:…, ip:…/n, email:…, uri:…',
          },
          excluded: { type: 'array', maxItems: 64, maxLength: 256, description: 'name constraints, excluded subtrees' },
          crlProfile: { type: 'string', maxLength: 64 },
        },
        required: ['name'],
      },
      handler: async ({ deps, body, who }) =>
        caOperation(deps, {
          op: 'create',
          input: {
            name: body.name,
            parent: body.parent || undefined,
            root: body.root || undefined,
            external: body.external || undefined,
            subject: body.subject,
            keyAlg: body.keyAlg,
            validityDays: body.validityDays,
            pathLen: body.pathLen,
            nameConstraints:
              body.permitted?.length || body.excluded?.length
                ? { permitted: (body.permitted ?? []).filter(Boolean), excluded: (body.excluded ?? []).filter(Boolean) }
                : undefined,
            crlProfile: body.crlProfile,
            requester: who.actor,
          },
        }),
    },
    {
      method: 'POST',
      path: '/cas/{name}/certificate',
      access: 'cas:manage',
      tag: 'hierarchy',
      summary:
        "Activate a pending (external) CA with the certificate the outside CA issued; it must match the CA's key and chain to a trust anchor",
      body: { properties: { certificate: PEM_PROP, chain: { ...PEM_PROP, minLength: 0 } }, required: ['certificate'] },
      handler: async ({ deps, params, body, who }) =>
        caOperation(deps, {
          op: 'import',
          input: { name: params.name!, certPem: body.certificate, chainPem: body.chain || undefined, requester: who.actor },
        }),
    },
    {
      method: 'POST',
      path: '/cas/import',
      access: 'cas:manage',
      tag: 'hierarchy',
      summary:
        "Import an existing CA whose key is in the worker's key store: a PKCS#11 key by label or RFC 7512 pkcs11: URI (it never leaves the token), or a key store id. PKCS#8 key files: `certflow ca import --key` where the key store is",
      status: 201,
      body: {
        properties: {
          name: CA_NAME_PROP,
          certificate: PEM_PROP,
          chain: { ...PEM_PROP, minLength: 0 },
          key: { type: 'string', minLength: 1, maxLength: 1024, description: "pkcs11:token=…;object=<label>, or the key's label / id" },
        },
        required: ['name', 'certificate', 'key'],
      },
      handler: async ({ deps, body, who }) =>
        caOperation(deps, {
          op: 'import',
          input: {
            name: body.name,
            certPem: body.certificate,
            chainPem: body.chain || undefined,
            key: String(body.key).startsWith('pkcs11:') ? { pkcs11Uri: body.key } : { keyId: body.key },
            requester: who.actor,
          },
        }),
    },
    {
      method: 'POST',
      path: '/cas/{name}/rollover',
      access: 'cas:manage',
      tag: 'hierarchy',
      summary: 'A new key and certificate for the CA; issuance moves to it at activateAt (default: at once)',
      body: {
        properties: {
          activateAt: { type: 'string', format: 'date-time', maxLength: 40 },
          keyAlg: KEY_ALG_PROP,
          validityDays: { type: 'integer', minimum: 1, maximum: 36_500 },
          subject: { type: 'string', maxLength: 512 },
        },
      },
      handler: async ({ deps, params, body, who }) =>
        caOperation(deps, {
          op: 'rollover',
          input: {
            name: params.name!,
            activateAt: body.activateAt ? new Date(body.activateAt).toISOString() : undefined,
            keyAlg: body.keyAlg,
            validityDays: body.validityDays,
            subject: body.subject,
            requester: who.actor,
          },
        }),
    },
    {
      method: 'POST',
      path: '/cas/{name}/revoke',
      access: 'cas:manage',
      tag: 'hierarchy',
      summary: "Revoke a CA: its parent's CRL lists it, its certificates are revoked with it, it never signs again",
      body: { properties: { reason: { type: 'string', enum: REVOKE_REASONS } } },
      handler: async ({ deps, params, body, who }) =>
        caOperation(deps, { op: 'revoke', input: { name: params.name!, reason: body.reason, requester: who.actor } }),
    },
    {
      method: 'GET',
      path: '/keys',
      access: 'keys:read',
      tag: 'hierarchy',
      summary: 'Key stores: which keys exist (CA, key archive, audit), their algorithm and backend',
      handler: async ({ deps }) => keyStores(deps),
    },
  ];
  const pages: Page[] = [
    {
      path: '/hierarchy',
      access: 'hierarchy:read',
      title: 'CA hierarchy',
      menu: { id: 'hierarchy', label: 'CA hierarchy', group: 'Overview' },
      async render({ deps, principal }) {
        const [all, view] = await Promise.all([cas.list(deps.pool), hierarchyView(deps)]);
        const manage = can(principal.role, 'cas:manage');
        const warnings = new Map(view.expiry.map((w) => [w.ca, w]));
        return html`${view.expiry.length ? html`<div class="warning" id="ca-expiry">${view.expiry.map((w) => html`<p>${w.message}</p>`)}</div>` : ''}
          <div id="ca-tree">${tree(all, null, manage, warnings)}</div>
          ${pendingList(view.pending, manage)} ${manage ? createForms(all) : ''}`;
      },
    },
    {
      path: '/keys',
      access: 'keys:read',
      title: 'Key stores',
      menu: { id: 'keys', label: 'Key stores', group: 'Overview' },
      async render({ deps }) {
        const k = await keyStores(deps);
        const head = await audit.head(deps.pool);
        return html`${fields([
            ['Configured backend', k.configuredBackend],
            ['PKCS#11 module', k.pkcs11?.module],
            ['PKCS#11 token', k.pkcs11?.tokenLabel],
            ['Audit chain head', `#${head.seq}`],
          ])}
          <p class="hint">
            Private keys never leave the key store of the worker: software keys are encrypted PKCS#8 files, PKCS#11 keys are generated in
            the token and not extractable.
          </p>
          ${table(k.keys, ['Key id', 'Purpose', 'Algorithm', 'Backend', 'Created'], (x) => [html`<code>${x.keyId}</code>`, x.purpose, x.alg, x.backend, x.createdAt], { id: 'keys' })}`;
      },
    },
  ];
  return { routes, pages };
}
