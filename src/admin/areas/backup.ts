/**
 * Backup (Operator): create an encrypted archive on the console's host
 * ($CERTFLOW_HOME/backups), list and download them. The same code as `certflow backup
 * create`; restoring is a command-line step (`certflow backup restore`), since it needs
 * an empty state directory and database.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { CaError } from '../../core/errors.ts';
import { backupDir, createBackup, listBackups, MIN_BACKUP_PASSPHRASE } from '../backup.ts';
import { Download, type ApiRoute } from '../api.ts';
import { record } from '../auth.ts';
import { apiForm, html, input, link, table } from '../html.ts';
import type { Page } from '../pages.ts';
import { can } from '../roles.ts';
import { certflowVersion } from '../version.ts';

function backupName(): string {
  return `certflow-${new Date().toISOString().replace(/[:.]/g, '-')}.cfbk`;
}

export function backupArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/backups',
      access: 'backup:read',
      tag: 'backup',
      summary: 'Backups in the backup directory of the console host, newest first',
      handler: async ({ deps }) => listBackups(deps.config),
    },
    {
      method: 'POST',
      path: '/backups',
      access: 'backup:manage',
      tag: 'backup',
      summary: 'Create an encrypted backup (database, CA key material, configuration, trust files) in the backup directory',
      status: 201,
      body: {
        properties: { passphrase: { type: 'string', format: 'password', minLength: MIN_BACKUP_PASSPHRASE, maxLength: 1024 } },
        required: ['passphrase'],
      },
      async handler({ deps, who, body }) {
        const file = join(backupDir(deps.config), backupName());
        try {
          const r = await createBackup(deps.config, deps.pool, file, body.passphrase, certflowVersion());
          await record(deps.pool, who, 'backup.create', file, {
            size: r.size,
            certificates: r.summary.certificates,
            auditHead: r.summary.auditHead.seq,
          });
          return {
            name: file.split('/').pop(),
            size: r.size,
            certificates: r.summary.certificates,
            tables: r.summary.tables,
            message: `backup written: ${file}`,
          };
        } catch (e) {
          await record(deps.pool, who, 'backup.create', file, { error: (e as Error).message }, 'failed');
          throw e;
        }
      },
    },
    {
      method: 'GET',
      path: '/backups/{name}',
      access: 'backup:manage',
      tag: 'backup',
      summary: 'Download a backup (encrypted; restore with `certflow backup restore`)',
      produces: 'application/octet-stream',
      async handler({ deps, who, params }) {
        const name = params.name!;
        const all = await listBackups(deps.config);
        if (!all.some((b) => b.name === name)) throw new CaError('notFound', `no backup named "${name}"`, { rule: 'backup.unknown' });
        await record(deps.pool, who, 'backup.download', name);
        return new Download('application/octet-stream', createReadStream(join(backupDir(deps.config), name)), name);
      },
    },
  ];
  const pages: Page[] = [
    {
      path: '/backup',
      access: 'backup:read',
      title: 'Backup',
      menu: { id: 'backup', label: 'Backup', group: 'Administration' },
      async render({ deps, principal }) {
        const manage = can(principal.role, 'backup:manage');
        const all = await listBackups(deps.config);
        return html`<p class="hint">
            A backup holds the database (one consistent snapshot), the CA key material (software keys stay encrypted under their passphrase;
            PKCS#11 keys stay in the token and are referenced), the configuration and the trust files, encrypted (AES-256-GCM) under the
            passphrase you give. It does not hold Temporal's workflow histories. Restore into an empty state directory with
            <code>certflow backup restore FILE</code>.
          </p>
          ${
            manage
              ? apiForm({
                  method: 'POST',
                  action: '/admin/api/v1/backups',
                  id: 'create-backup',
                  submit: 'Create backup now',
                  body: input(
                    'passphrase',
                    `Passphrase (${MIN_BACKUP_PASSPHRASE}+ characters; keep it: the backup cannot be opened without it)`,
                    { type: 'password', required: true, autocomplete: 'new-password' },
                  ),
                })
              : ''
          }
          <p>Backup directory: <code>${backupDir(deps.config)}</code></p>
          ${table(all, ['Backup', 'Size', 'Created'], (b) => [manage ? link(`/admin/api/v1/backups/${encodeURIComponent(b.name)}`, b.name) : b.name, `${(b.size / 1024).toFixed(1)} KiB`, b.createdAt], { id: 'backups', empty: 'No backups yet.' })}`;
      },
    },
  ];
  return { routes, pages };
}
