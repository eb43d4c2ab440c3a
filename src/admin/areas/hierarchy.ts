/** CA hierarchy (tree, validity, key algorithm and backend, certificate and chain downloads) and the key stores. */
import { CaError } from '../../core/errors.ts';
import * as cas from '../../db/repos/cas.ts';
import type { CaRow } from '../../db/repos/cas.ts';
import * as audit from '../../db/repos/audit.ts';
import * as consoleDb from '../../db/repos/console.ts';
import { describeCertificate, pemEncode } from '../../pki/index.ts';
import { Download, type AdminDeps, type ApiRoute } from '../api.ts';
import { badge, fields, html, link, table, type Html } from '../html.ts';
import type { Page } from '../pages.ts';

function caView(ca: CaRow) {
  const d = describeCertificate(ca.certDer);
  return {
    name: ca.name,
    role: ca.role,
    parent: ca.parent,
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

function tree(all: CaRow[], parent: string | null): Html {
  const children = all.filter((c) => c.parent === parent);
  if (!children.length) return html``;
  return html`<ul class="tree">
    ${children.map((ca) => {
      const v = caView(ca);
      return html`<li data-ca="${ca.name}">
        <strong>${ca.name}</strong> ${badge(ca.role)} ${badge(v.valid ? 'valid' : 'expired')}
        ${fields([
          ['Subject', ca.subject],
          ['Validity', html`${ca.notBefore} – ${ca.notAfter}`],
          ['Key', html`${ca.keyAlg} in the ${ca.keyBackend} key store (id <code>${ca.keyId}</code>)`],
          ['Serial', html`<code>${ca.serial}</code>`],
          ['SHA-256', html`<code>${v.fingerprintSha256}</code>`],
          [
            'Download',
            html`${link(`/admin/api/v1/cas/${encodeURIComponent(ca.name)}/certificate`, 'certificate (PEM)')} ·
            ${link(`/admin/api/v1/cas/${encodeURIComponent(ca.name)}/certificate?format=der`, 'DER')} ·
            ${link(`/admin/api/v1/cas/${encodeURIComponent(ca.name)}/chain`, 'chain (PEM)')}`,
          ],
        ])}${tree(all, ca.name)}
      </li>`;
    })}
  </ul>`;
}

export function hierarchyArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/cas',
      access: 'hierarchy:read',
      tag: 'hierarchy',
      summary: 'The CAs: role, parent, subject, validity, key algorithm and backend',
      handler: async ({ deps }) => (await cas.list(deps.pool)).map(caView),
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
      async render({ deps }) {
        const all = await cas.list(deps.pool);
        return html`<div id="ca-tree">${tree(all, null)}</div>`;
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
