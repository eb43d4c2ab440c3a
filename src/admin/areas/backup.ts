/**
 * Backup (Operator): create an encrypted archive on the console's host
 * ($CERTFLOW_HOME/backups), list and download them. The archive is encrypted to the backup
 * recipient key a CA Administrator sets here (or with `certflow backup recipient set`), so
 * the Operator who makes and downloads it cannot open it. The same code as `certflow backup
 * create`; restoring is a command-line step (`certflow backup restore --key`), since it
 * needs an empty state directory and database, and the recipient's private key.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { CaError } from '../../core/errors.ts';
import { backupDir, createBackup, listBackups } from '../backup.ts';
import { currentRecipient, setRecipient } from '../backup-recipient.ts';
import { Download, type ApiRoute } from '../api.ts';
import { record } from '../auth.ts';
import { apiForm, fields, html, link, table } from '../html.ts';
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
      method: 'GET',
      path: '/backup/recipient',
      access: 'backup:read',
      tag: 'backup',
      summary: 'The backup recipient key backups are encrypted to (null when none is set)',
      handler: async ({ deps }) => (await currentRecipient(deps.config.home)) ?? null,
    },
    {
      method: 'PUT',
      path: '/backup/recipient',
      access: 'backup:recipient',
      tag: 'backup',
      summary: 'Set the backup recipient public key (PEM: RSA 3072+, EC P-256/P-384/P-521, X25519); every backup is encrypted to it',
      body: { properties: { publicKey: { type: 'string', maxLength: 8192 } }, required: ['publicKey'] },
      async handler({ deps, who, body }) {
        const previous = await currentRecipient(deps.config.home);
        const r = await setRecipient(deps.config.home, body.publicKey);
        await record(deps.pool, who, 'backup.recipient.set', r.fingerprint, { type: r.type, previous: previous?.fingerprint ?? null });
        return { ...r, message: `backups are now encrypted to ${r.type} key ${r.fingerprint}` };
      },
    },
    {
      method: 'POST',
      path: '/backups',
      access: 'backup:manage',
      tag: 'backup',
      summary:
        'Create a backup (database, CA key files, secrets key, configuration, trust and audit files) encrypted to the recipient key, in the backup directory',
      status: 201,
      async handler({ deps, who }) {
        const file = join(backupDir(deps.config), backupName());
        try {
          const r = await createBackup(deps.config, deps.pool, file, { version: certflowVersion() });
          await record(deps.pool, who, 'backup.create', file, {
            size: r.size,
            certificates: r.summary.certificates,
            auditHead: r.summary.auditHead.seq,
            recipient: r.meta.recipient?.fingerprint,
          });
          return {
            name: file.split('/').pop(),
            size: r.size,
            certificates: r.summary.certificates,
            tables: r.summary.tables,
            recipient: r.meta.recipient,
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
      summary: 'Download a backup (encrypted to the recipient key; restore with `certflow backup restore --key`)',
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
        const [all, recipient] = await Promise.all([listBackups(deps.config), currentRecipient(deps.config.home)]);
        return html`<p class="hint">
            A backup holds the database (one consistent snapshot), the CA key files (software keys stay encrypted under their passphrase,
            which is never in a backup; PKCS#11 keys stay in the token and are referenced), the secrets key, the configuration, the trust
            files and the audit checkpoints. It is encrypted to the recipient key below: whoever makes a backup cannot open it; restoring
            needs the recipient's private key (<code>certflow backup restore FILE --key KEY.pem</code>) and the key passphrase.
          </p>
          ${fields([
            [
              'Recipient key',
              recipient
                ? html`<span id="recipient">${recipient.type}, SHA-256 <code>${recipient.fingerprint}</code></span>`
                : html`<span id="recipient" class="warning">none set: no backup can be made until a CA Administrator sets one</span>`,
            ],
          ])}
          ${
            can(principal.role, 'backup:recipient')
              ? apiForm({
                  method: 'PUT',
                  action: '/admin/api/v1/backup/recipient',
                  id: 'set-recipient',
                  submit: recipient ? 'Replace the recipient key' : 'Set the recipient key',
                  body: html`<label
                    >Public key (PEM; keep its private key offline, where restores happen)<textarea
                      name="publicKey"
                      rows="6"
                      required
                    ></textarea>
                  </label>`,
                })
              : ''
          }
          ${
            manage && recipient
              ? apiForm({ method: 'POST', action: '/admin/api/v1/backups', id: 'create-backup', submit: 'Create backup now', body: html`` })
              : ''
          }
          <p>Backup directory: <code>${backupDir(deps.config)}</code></p>
          ${table(all, ['Backup', 'Size', 'Created'], (b) => [manage ? link(`/admin/api/v1/backups/${encodeURIComponent(b.name)}`, b.name) : b.name, `${(b.size / 1024).toFixed(1)} KiB`, b.createdAt], { id: 'backups', empty: 'No backups yet.' })}`;
      },
    },
  ];
  return { routes, pages };
}
