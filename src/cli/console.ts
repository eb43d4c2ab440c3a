/**
 * The console's command-line side: `certflow users …` and `certflow tokens …` (who may use
 * the console), `certflow audit verify|list|checkpoint` (the hash-chained audit log), and
 * `certflow backup create|restore`. Changes are audited as operator:<os user>.
 */
import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { paths, loadConfig, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import * as users from '../db/repos/admin-users.ts';
import * as tokens from '../db/repos/admin-tokens.ts';
import * as auditLog from '../db/repos/audit.ts';
import { databaseUrl, migrateDatabase, ownerDatabaseUrl } from '../db/open.ts';
import { createPool, waitForDatabase } from '../db/pool.ts';
import { preparePostgres, spawnPostgres } from '../db/embedded.ts';
import { assertEmptyHome, authenticateArchive, createBackup, restoreBackup, type BackupMeta, type BackupOpener } from '../admin/backup.ts';
import { currentRecipient, setRecipient } from '../admin/backup-recipient.ts';
import {
  bindCertificate,
  createToken,
  createUser,
  resetPassword,
  revokeToken,
  setUserEnabled,
  setUserRole,
  TOKEN_DEFAULT_DAYS,
  TOKEN_MAX_DAYS,
  tokenView,
  userView,
  type Actor,
} from '../admin/auth.ts';
import { ROLES } from '../admin/roles.ts';
import { verifyAuditLog } from '../admin/audit-verify.ts';
import { certflowVersion } from '../admin/version.ts';
import { pemDecodeAll, describeCertificate } from '../pki/index.ts';
import { connectTemporal } from '../temporal/client.ts';
import { checkpointAndWait } from '../ra/audit.ts';
import type { CliContext } from './context.ts';
import { readPassword } from './est-clients.ts';
import { normalizeSerial } from './output.ts';

function operator(): Actor {
  return { actor: `operator:${userInfo().username}`, role: 'cli' };
}

/** A serial, or the serial of a certificate file (PEM or DER). */
async function serialOf(arg: string): Promise<string> {
  if (!existsSync(arg)) return normalizeSerial(arg);
  const bytes = await readFile(arg);
  const der = bytes.includes('-----BEGIN') ? pemDecodeAll(bytes.toString('utf8'))[0]?.der : bytes;
  if (!der) throw new CaError('malformed', `${arg} holds no certificate`);
  return describeCertificate(der).serialHex;
}

function registerUsers(root: Command, cli: CliContext): void {
  const group = root.command('users').description('console users (roles: ca-admin, admin, officer, auditor, operator)');
  group
    .command('add')
    .description('create a console user')
    .requiredOption('--name <name>', 'user name')
    .addOption(new Option('--role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .option('--password <password>', 'password (12+ characters); "-" reads it from stdin')
    .option('--cert <file|serial>', 'a client certificate of this CA that logs in as this user')
    .option('--temporary', 'the user must change the password at the first login')
    .action(async (opts: { name: string; role: string; password?: string; cert?: string; temporary?: boolean }) => {
      const password = opts.password === undefined ? undefined : await readPassword(opts.password, cli.say);
      const certSerial = opts.cert ? await serialOf(opts.cert) : undefined;
      const row = await cli.withPool((pool) =>
        createUser(pool, operator(), {
          name: opts.name,
          role: opts.role,
          password,
          certSerial,
          mustChangePassword: Boolean(opts.temporary),
        }),
      );
      if (cli.json()) cli.printJson(userView(row));
      else cli.say(`user "${row.name}" created (${row.role}${row.certSerial ? `, certificate ${row.certSerial}` : ''})`);
    });
  group
    .command('list')
    .description('list console users (never their password hashes)')
    .action(async () => {
      const rows = (await cli.withPool((pool) => users.list(pool))).map(userView);
      if (cli.json()) cli.printJson(rows);
      else
        process.stdout.write(
          cli.table(rows, ['name', 'role', 'enabled', 'passwordLogin', 'certificateSerial', 'lastLoginAt', 'createdBy']),
        );
    });
  for (const enabled of [false, true]) {
    const verb = enabled ? 'enable' : 'disable';
    group
      .command(`${verb} <name>`)
      .description(enabled ? 'let a disabled user log in again' : 'refuse a user (their sessions end at once)')
      .action(async (name: string) => {
        await cli.withPool((pool) => setUserEnabled(pool, operator(), name, enabled));
        if (cli.json()) cli.printJson({ name, enabled });
        else cli.say(`user "${name}" ${verb}d`);
      });
  }
  group
    .command('passwd <name>')
    .description("set a user's password (their sessions end)")
    .requiredOption('--password <password>', 'the new password; "-" reads it from stdin')
    .option('--temporary', 'the user must change it at the next login')
    .action(async (name: string, opts: { password: string; temporary?: boolean }) => {
      const password = await readPassword(opts.password, cli.say);
      await cli.withPool((pool) => resetPassword(pool, operator(), name, password, { temporary: Boolean(opts.temporary) }));
      cli.say(`password of "${name}" set`);
    });
  group
    .command('role <name> <role>')
    .description("change a user's role")
    .action(async (name: string, role: string) => {
      await cli.withPool((pool) => setUserRole(pool, operator(), name, role));
      cli.say(`"${name}" is now ${role}`);
    });
  group
    .command('bind-cert <name> <file|serial>')
    .description('bind a client certificate of this CA to a user ("none" unbinds)')
    .action(async (name: string, cert: string) => {
      const serial = cert === 'none' ? null : await serialOf(cert);
      await cli.withPool((pool) => bindCertificate(pool, operator(), name, serial));
      cli.say(serial ? `certificate ${serial} bound to "${name}"` : `"${name}" has no certificate`);
    });
}

function registerTokens(root: Command, cli: CliContext): void {
  const group = root.command('tokens').description('API tokens of the admin API, each belonging to a console user and bound to one role');
  group
    .command('create')
    .description('create a token for a console user (printed once); it works while that user is enabled and holds its role')
    .requiredOption('--name <name>', 'what it is for')
    .requiredOption('--user <name>', 'the console user the token belongs to')
    .addOption(new Option('--role <role>', "role (default: the user's; at most the user's permissions)").choices([...ROLES]))
    .addOption(
      new Option('--expires-days <n>', `valid for n days (default ${TOKEN_DEFAULT_DAYS}, at most ${TOKEN_MAX_DAYS})`).argParser(Number),
    )
    .action(async (opts: { name: string; user: string; role?: string; expiresDays?: number }) => {
      const { token, row } = await cli.withPool((pool) =>
        createToken(pool, operator(), { name: opts.name, owner: opts.user, role: opts.role, expiresDays: opts.expiresDays }),
      );
      if (cli.json()) cli.printJson({ ...tokenView(row), token });
      else {
        process.stdout.write(`${token}\n`);
        cli.say(`token ${row.id} (${row.role}) created; it is not shown again. Use it as "Authorization: Bearer <token>"`);
      }
    });
  group
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async () => {
      const rows = (await cli.withPool((pool) => tokens.list(pool))).map(tokenView);
      if (cli.json()) cli.printJson(rows);
      else process.stdout.write(cli.table(rows, ['id', 'name', 'role', 'owner', 'active', 'createdBy', 'expiresAt', 'lastUsedAt']));
    });
  group
    .command('revoke <id>')
    .description('revoke a token')
    .action(async (id: string) => {
      await cli.withPool((pool) => revokeToken(pool, operator(), id));
      cli.say(`token ${id} revoked`);
    });
}

function registerAudit(root: Command, cli: CliContext): void {
  const group = root.command('audit').description('the append-only, hash-chained audit log');
  group
    .command('verify')
    .description(
      'recompute the hash chain; check the signed checkpoints against the pinned audit key and the checkpoints kept outside the database (exit code 4 when the log was altered)',
    )
    .option('--key <file>', 'PEM public key of the audit key (default: the pinned $CERTFLOW_HOME/ca/audit-key.pem)')
    .option('--checkpoints <file>', 'the checkpoints kept outside the database (default: $CERTFLOW_HOME/audit/checkpoints.jsonl)')
    .action(async (opts: { key?: string; checkpoints?: string }) => {
      const r = await cli.withPool((pool, config) =>
        verifyAuditLog(pool, config.home, { keyFile: opts.key, checkpointFile: opts.checkpoints }),
      );
      if (cli.json()) cli.printJson(r);
      else if (r.ok) {
        const cp = r.latestVerifiedCheckpoint;
        const outside = r.latestOutsideCheckpoint;
        cli.say(
          `audit log OK: ${r.entries} entries, head #${r.head.seq} ${r.head.hash}; ${r.checkpoints.length} signed checkpoint(s) verified${cp ? `, the newest at #${cp.seq} (${cp.signedAt.toISOString()})` : ''}` +
            (outside
              ? `; the newest kept outside the database: #${outside.seq} in ${outside.file}`
              : '; no checkpoint outside the database yet'),
        );
      } else {
        if (r.firstBroken)
          cli.say(
            `audit log BROKEN at entry #${r.firstBroken.seq}${r.firstBroken.id !== undefined ? ` (id ${r.firstBroken.id})` : ''}: ${r.firstBroken.reason}`,
          );
        for (const p of r.problems.slice(0, 20)) cli.say(`  ${p}`);
        if (r.problems.length > 20) cli.say(`  … and ${r.problems.length - 20} more`);
      }
      if (!r.ok) process.exitCode = 4;
    });
  group
    .command('list')
    .description('audit entries, newest first')
    .option('--actor <actor>', 'exact actor, or a prefix ending in ":"')
    .option('--action <action>', 'exact action, or a prefix ending in "."')
    .option('--target <target>', 'the object (serial, user, CA, request)')
    .addOption(new Option('--limit <n>', 'at most n').default(50).argParser(Number))
    .action(async (opts: { actor?: string; action?: string; target?: string; limit: number }) => {
      const rows = await cli.withPool((pool) =>
        auditLog.list(pool, { actor: opts.actor, action: opts.action, object: opts.target, limit: opts.limit }),
      );
      if (cli.json()) cli.printJson(rows);
      else
        process.stdout.write(
          cli.table(
            rows.map((r) => ({ ...r, target: r.object, details: JSON.stringify(r.details) })),
            ['seq', 'at', 'actor', 'role', 'action', 'target', 'result', 'details'],
          ),
        );
    });
  group
    .command('checkpoint')
    .description(
      'have the worker sign a checkpoint of the chain head now, in the database and outside it (it does so every audit.checkpointMinutes by itself)',
    )
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the worker').default('60').argParser(Number))
    .action(async (opts: { timeout: number }) => {
      const config = loadConfig();
      const temporal = await connectTemporal(config, 5000);
      try {
        const r = await checkpointAndWait({ temporal: temporal.client, config }, opts.timeout * 1000);
        if (cli.json()) cli.printJson(r);
        else
          cli.say(
            r.seq
              ? `checkpoint of entry #${r.seq} signed by ${r.keyId}${r.created ? '' : ' (it existed)'}`
              : 'the audit log is empty: nothing to sign',
          );
      } finally {
        await temporal.close();
      }
    });
}

/** A secret given as "-" (stdin) or a file, never on the command line; undefined when neither. */
async function secretOption(value: string | undefined, file: string | undefined, what: string, say: (m: string) => void) {
  if (file) return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  if (value === '-') return readPassword('-', say);
  if (value !== undefined) throw new CaError('malformed', `give ${what} as - (stdin) or in a file, never on the command line`);
  return undefined;
}

/** The backup passphrase: --passphrase-file, --passphrase - (stdin), or CERTFLOW_BACKUP_PASSPHRASE; undefined when none. */
async function backupPassphrase(opts: { passphrase?: string; passphraseFile?: string }, say: (m: string) => void) {
  return (await secretOption(opts.passphrase, opts.passphraseFile, 'the passphrase', say)) ?? loadConfig().backupPassphrase;
}

interface RestoreOpts {
  passphrase?: string;
  passphraseFile?: string;
  key?: string;
  keyPassphrase?: string;
  keyPassphraseFile?: string;
}

/** What opens the archive: the recipient's private key (--key), or the passphrase. */
async function backupOpener(opts: RestoreOpts, say: (m: string) => void): Promise<BackupOpener> {
  if (opts.key) {
    return {
      privateKeyPem: await readFile(opts.key, 'utf8'),
      keyPassphrase: await secretOption(opts.keyPassphrase, opts.keyPassphraseFile, "the private key's passphrase", say),
    };
  }
  const passphrase = await backupPassphrase(opts, say);
  if (!passphrase)
    throw new CaError(
      'malformed',
      "give the recipient's private key (--key FILE) or, for a passphrase backup, --passphrase - (stdin), --passphrase-file FILE or CERTFLOW_BACKUP_PASSPHRASE",
      { rule: 'backup.passphrase' },
    );
  return { passphrase };
}

function registerBackup(root: Command, cli: CliContext): void {
  const group = root
    .command('backup')
    .description(
      'encrypted backups (to the backup recipient key, or under a passphrase): database, CA key files, secrets key, configuration, trust and audit files',
    );
  const passOpts = (c: Command) =>
    c
      .option('--passphrase <->', 'read the passphrase from stdin ("-")')
      .option('--passphrase-file <file>', 'read the passphrase from a file (or set CERTFLOW_BACKUP_PASSPHRASE)');
  passOpts(
    group
      .command('create')
      .description(
        "write a consistent, encrypted backup, to the backup recipient key if one is set, else under a passphrase (run where the worker's key directory is, for software keys)",
      )
      .requiredOption('--out <file>', 'the archive to write (must not exist)'),
  ).action(async (opts: { out: string; passphrase?: string; passphraseFile?: string }) => {
    const passphrase = await backupPassphrase(opts, cli.say);
    const r = await cli.withPool(async (pool, config) => {
      const result = await createBackup(config, pool, opts.out, { passphrase, version: certflowVersion() });
      await auditLog.audit(pool, {
        ...operator(),
        action: 'backup.create',
        object: opts.out,
        details: {
          size: result.size,
          certificates: result.summary.certificates,
          auditHead: result.summary.auditHead.seq,
          recipient: result.meta.recipient?.fingerprint ?? null,
        },
      });
      return result;
    });
    if (cli.json())
      cli.printJson({
        out: opts.out,
        size: r.size,
        ...r.summary,
        keyBackend: r.meta.keyBackend,
        keyIds: r.meta.keyIds,
        recipient: r.meta.recipient,
      });
    else {
      cli.say(
        `backup written to ${opts.out} (${(r.size / 1024).toFixed(1)} KiB): ${r.summary.certificates} certificates, ${r.summary.tables.length} tables, audit head #${r.summary.auditHead.seq}, ` +
          (r.meta.keyBackend === 'software'
            ? `${r.summary.files.filter((f) => f.endsWith('.key.pem')).length} key files (encrypted; their passphrase is not in the backup)`
            : `PKCS#11 keys referenced in token "${r.meta.pkcs11?.tokenLabel}"`) +
          (r.meta.recipient
            ? `; encrypted to the recipient key ${r.meta.recipient.fingerprint} (${r.meta.recipient.type})`
            : '; encrypted under the passphrase'),
      );
    }
  });
  passOpts(
    group
      .command('restore <file>')
      .description('restore a backup into an empty CERTFLOW_HOME (and an empty DATABASE_URL database, or a new embedded Postgres)')
      .option('--key <file>', "the backup recipient's private key (PEM) for a backup encrypted to it")
      .option('--key-passphrase <->', 'read the private key\'s passphrase from stdin ("-")')
      .option('--key-passphrase-file <file>', "read the private key's passphrase from a file"),
  ).action(async (file: string, opts: RestoreOpts) => {
    const opener = await backupOpener(opts, cli.say);
    const config = loadConfig();
    let pg: Awaited<ReturnType<typeof spawnPostgres>> | undefined;
    assertEmptyHome(config);
    // Nothing is written (not even a new Postgres) before the whole archive is authenticated.
    const authenticated = await authenticateArchive(file, opener);
    if (!config.databaseUrl) {
      if (existsSync(paths(config).pgData))
        throw new CaError('conflict', `${paths(config).pgData} exists: restore into an empty CERTFLOW_HOME`, {
          rule: 'backup.homeNotEmpty',
        });
      cli.say(`starting a new embedded Postgres in ${paths(config).pgData} (port ${config.embeddedPostgresPort}) for the restore`);
      await preparePostgres(config, { log: cli.say });
      pg = await spawnPostgres(config, {
        port: config.embeddedPostgresPort,
        logFile: join(config.home, 'restore-postgres.log'),
        log: cli.say,
      });
    }
    let pool: Pool | undefined;
    try {
      // The owner login loads the tables; the runtime login gets its privileges afterwards.
      const url = ownerDatabaseUrl(config) ?? databaseUrl(config);
      await waitForDatabase(url, 30_000);
      pool = createPool(url);
      const r = await restoreBackup(file, opener, { config, pool, log: cli.say, authenticated });
      await migrateDatabase(config, cli.say);
      await auditLog.audit(pool, {
        ...operator(),
        action: 'backup.restore',
        object: file,
        details: { createdAt: r.meta.createdAt, from: `${r.meta.host}:${r.meta.home}`, certificates: r.summary.certificates },
      });
      if (cli.json())
        cli.printJson({
          file,
          meta: r.meta,
          summary: r.summary,
          audit: { ok: r.audit.ok, entries: r.audit.entries, problems: r.audit.problems },
        });
      else {
        cli.say(
          `restored ${r.summary.certificates} certificates, ${r.summary.tables.length} tables and ${r.summary.files.length} files into ${config.home}`,
        );
        cli.say(
          r.audit.ok
            ? `audit log verified: ${r.audit.entries} entries`
            : `WARNING: the restored audit log does not verify: ${r.audit.problems[0]}`,
        );
        cli.say(restoreNeeds(r.meta, config));
        cli.say('requests that were in flight when the backup was made are not resumed (Temporal histories are not in backups)');
      }
    } finally {
      await pool?.end().catch(() => {});
      await pg?.stop();
    }
  });
  const recipient = group
    .command('recipient')
    .description('the backup recipient key: backups are encrypted to it (set by a CA Administrator)');
  recipient
    .command('set <public-key.pem>')
    .description('set (or replace) the recipient public key: RSA 3072+, EC P-256/P-384/P-521 or X25519, PEM')
    .action(async (pemFile: string) => {
      const r = await cli.withPool(async (pool, config) => {
        const previous = await currentRecipient(config.home);
        const set = await setRecipient(config.home, await readFile(pemFile, 'utf8'));
        await auditLog.audit(pool, {
          ...operator(),
          action: 'backup.recipient.set',
          object: set.fingerprint,
          details: { type: set.type, previous: previous?.fingerprint ?? null },
        });
        return set;
      });
      if (cli.json()) cli.printJson(r);
      else cli.say(`backups are now encrypted to ${r.type} key ${r.fingerprint}: keep its private key (and only it) where restores happen`);
    });
  recipient
    .command('show')
    .description('the recipient public key backups are encrypted to')
    .action(async () => {
      const r = await currentRecipient(loadConfig().home);
      if (cli.json()) cli.printJson(r ?? null);
      else if (!r) cli.say('no backup recipient is set: backups need a passphrase (CLI only)');
      else {
        process.stdout.write(r.pem);
        cli.say(`${r.type}, SHA-256 ${r.fingerprint}`);
      }
    });
}

/** What the restored installation needs besides the archive (the README's "restore" list). */
function restoreNeeds(meta: BackupMeta, config: Config): string {
  if (meta.keyBackend === 'pkcs11')
    return `the CA keys stay in PKCS#11 token "${meta.pkcs11?.tokenLabel}": point CERTFLOW_PKCS11_* at it (the PIN is not in backups)`;
  const where =
    meta.keyPassphrase === 'file' ? `the passphrase file keys/passphrase of ${meta.host}:${meta.home}` : 'CERTFLOW_KEY_PASSPHRASE';
  return config.keys.passphrase
    ? 'the CA key files are encrypted as before: CERTFLOW_KEY_PASSPHRASE is set, start as usual'
    : `the CA key files are encrypted under their passphrase, which is never in a backup: set CERTFLOW_KEY_PASSPHRASE to it (it was ${where}), or copy that file to ${join(paths(config).keysDir, 'passphrase')}, before the worker starts`;
}

export function registerConsoleCommands(root: Command, cli: CliContext): void {
  root
    .command('admin')
    .description('run the operator console and admin API (HTTPS, CERTFLOW_ADMIN_BIND:CERTFLOW_ADMIN_PORT, default 127.0.0.1:8444)')
    .action(async () => {
      const { startAdmin } = await import('../admin/server.ts');
      const { notifyReady } = await import('./node-child.ts');
      const config = loadConfig();
      const log = createLogger('admin', config.logLevel);
      const admin = await startAdmin(config, log);
      notifyReady({ adminUrl: admin.url });
      log.info({ url: admin.url }, 'certflow admin console ready');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await admin.close();
      process.exit(0);
    });
  registerUsers(root, cli);
  registerTokens(root, cli);
  registerAudit(root, cli);
  registerBackup(root, cli);
}
