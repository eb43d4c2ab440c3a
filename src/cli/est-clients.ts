/**
 * `certflow est-client ...`: the administrator registers the "external applications" that
 * authenticate to EST with HTTP Basic (RFC 7030 3.2.3). Only Postgres is needed: neither a
 * worker nor Temporal. Every change is audited (actor "operator") in the transaction that
 * makes it; passwords never reach the database, the audit log or the output.
 */
import { loadManagedProfiles } from '../ra/profiles.ts';
import type { CliContext } from './context.ts';
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/index.ts';
import { checkEmailAddress } from '../config/notifications.ts';
import { CaError } from '../core/errors.ts';
import { withTransaction, type Queryable } from '../db/pool.ts';
import { audit } from '../db/repos/audit.ts';
import * as estClients from '../db/repos/est-clients.ts';
import type { EstClientRow } from '../db/repos/est-clients.ts';
import { checkClientName } from '../est/auth.ts';
import { checkPasswordPolicy, hashPassword } from '../est/password.ts';
import { printJson, table } from './output.ts';

/** What main.ts shares with these commands (its pool handling and message style). */
/** What these commands need of the CLI context (src/cli/context.ts). */
export type CliHelpers = Pick<CliContext, 'withPool' | 'say'>;

/** A client as shown to the operator: everything but the password hash. */
type ClientView = Omit<EstClientRow, 'passwordHash'>;

function view(row: EstClientRow): ClientView {
  const { passwordHash: _hidden, ...rest } = row;
  return rest;
}

/** The root label '' would print as nothing: show it as ''. No labels means all of them. */
function formatLabels(labels: string[]): string {
  return labels.length ? labels.map((l) => (l === '' ? "''" : l)).join(',') : '(all)';
}

function checkProfile(config: Config, profile: string | undefined): void {
  if (profile !== undefined && !config.profiles.has(profile)) {
    throw new CaError('notFound', `unknown certificate profile "${profile}" (configured: ${[...config.profiles.keys()].join(', ')})`, {
      rule: 'profile.unknown',
    });
  }
}

/** Labels must be configured (config.est.labels); duplicates are dropped, order kept. */
function checkLabels(config: Config, labels: string[]): string[] {
  for (const label of labels) {
    if (!config.est.labels.has(label)) {
      throw new CaError(
        'notFound',
        `unknown EST label ${label === '' ? "''" : `"${label}"`} (configured: ${formatLabels([...config.est.labels.keys()])})`,
        {
          rule: 'est.label.unknown',
        },
      );
    }
  }
  return [...new Set(labels)];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The password of --password: the argument itself, or with "-" stdin (so that it appears
 * neither in `ps` nor in the shell history), without the one trailing newline that
 * `echo` or a here-string adds.
 */
export async function readPassword(arg: string, say: (msg: string) => void): Promise<string> {
  if (arg !== '-') return arg;
  if (process.stdin.isTTY) say('reading the password from stdin (type it, press Enter, then Ctrl-D)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let text: string;
  try {
    text = utf8.decode(Buffer.concat(chunks));
  } catch {
    throw new CaError('malformed', 'the password on stdin is not UTF-8', { rule: 'estClient.password.encoding' });
  }
  return text.replace(/\r?\n$/, '');
}

/** Reads, checks and hashes a new password (the policy error comes before any database work). */
async function newPasswordHash(arg: string, say: (msg: string) => void): Promise<string> {
  const password = await readPassword(arg, say);
  checkPasswordPolicy(password);
  return hashPassword(password);
}

function notFound(name: string): CaError {
  return new CaError('notFound', `no EST client named "${name}" (see \`certflow est-client list\`)`, { rule: 'estClient.unknown' });
}

/**
 * Runs `change` (which reports whether the client existed) and its audit entry in one
 * transaction: an audit entry without its change, or the reverse, cannot happen.
 */
async function changeClient(
  helpers: CliHelpers,
  name: string,
  action: string,
  change: (db: Queryable) => Promise<boolean>,
  details: Record<string, unknown> = {},
): Promise<void> {
  await helpers.withPool((pool) =>
    withTransaction(pool, async (tx) => {
      if (!(await change(tx))) throw notFound(name);
      await audit(tx, { actor: 'operator', action, object: name, details });
    }),
  );
}

function addCommand(group: Command, root: Command, helpers: CliHelpers): void {
  group
    .command('add')
    .description('register a client that authenticates to EST with HTTP Basic')
    .requiredOption('--name <name>', 'user name of the client (letters, digits, ".", "_", "@", "-")')
    .requiredOption('--password <password>', `its password (at least 12 characters); "-" reads it from stdin`)
    .option('--profile <name>', "certificate profile for its enrollments (default: the label's profile)")
    .option(
      '--label <label>',
      "an EST label it may use (repeatable; '' is /.well-known/est/; default: all labels)",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--require-approval', 'its enrollments always wait for `certflow approvals approve` (default: the label decides)')
    .option('--email <address>', 'where notices about its certificates go (expiry; docs/notifications.md)')
    .action(
      async (opts: { name: string; password: string; profile?: string; label?: string[]; requireApproval?: boolean; email?: string }) => {
        checkClientName(opts.name);
        if (opts.email !== undefined) checkEmailAddress(opts.email);
        const config = loadConfig();
        if (opts.profile) await helpers.withPool((pool) => loadManagedProfiles(config, pool));
        checkProfile(config, opts.profile);
        const labels = checkLabels(config, opts.label ?? []);
        const passwordHash = await newPasswordHash(opts.password, helpers.say);
        const row = await helpers.withPool((pool) =>
          withTransaction(pool, async (tx) => {
            const stored = await estClients.insert(tx, {
              name: opts.name,
              passwordHash,
              profile: opts.profile ?? null,
              labels,
              requireApproval: Boolean(opts.requireApproval),
              email: opts.email,
            });
            await audit(tx, {
              actor: 'operator',
              action: 'estClient.add',
              object: opts.name,
              details: { profile: stored.profile, labels, requireApproval: stored.requireApproval, email: stored.email },
            });
            return stored;
          }),
        );
        if (root.opts<{ json?: boolean }>().json) printJson(view(row));
        else {
          helpers.say(
            `EST client "${row.name}" added (profile: ${row.profile ?? "the label's"}, labels: ${formatLabels(row.labels)}, approval: ${row.requireApproval ? 'always' : 'as the label says'})`,
          );
        }
      },
    );
}

function listCommand(group: Command, root: Command, helpers: CliHelpers): void {
  group
    .command('list')
    .description('list the registered clients (never their passwords or hashes)')
    .action(async () => {
      const rows = await helpers.withPool((pool) => estClients.list(pool));
      if (root.opts<{ json?: boolean }>().json) {
        printJson(rows.map(view));
        return;
      }
      const shown = rows.map((r) => ({ ...view(r), profile: r.profile ?? '(label)', labels: formatLabels(r.labels) }));
      process.stdout.write(
        table(shown as never, ['name', 'enabled', 'profile', 'labels', 'requireApproval', 'email', 'createdAt', 'updatedAt']),
      );
    });
}

/** remove, enable, disable and passwd: change one existing client, then confirm. */
function changeCommands(group: Command, root: Command, helpers: CliHelpers): void {
  const confirm = (name: string, what: string) => {
    if (root.opts<{ json?: boolean }>().json) printJson({ name, result: what });
    else helpers.say(`EST client "${name}" ${what}`);
  };
  group
    .command('remove <name>')
    .description('delete a client: its credentials stop working at once')
    .action(async (name: string) => {
      await changeClient(helpers, name, 'estClient.remove', (db) => estClients.remove(db, name));
      confirm(name, 'removed');
    });
  for (const enabled of [false, true]) {
    const verb = enabled ? 'enable' : 'disable';
    group
      .command(`${verb} <name>`)
      .description(enabled ? 'let a disabled client authenticate again' : 'refuse the client (403) without deleting it')
      .action(async (name: string) => {
        await changeClient(helpers, name, `estClient.${verb}`, (db) => estClients.setEnabled(db, name, enabled));
        confirm(name, `${verb}d`);
      });
  }
  group
    .command('passwd <name>')
    .description("replace a client's password")
    .requiredOption('--password <password>', 'the new password (at least 12 characters); "-" reads it from stdin')
    .action(async (name: string, opts: { password: string }) => {
      const passwordHash = await newPasswordHash(opts.password, helpers.say);
      await changeClient(helpers, name, 'estClient.passwd', (db) => estClients.setPassword(db, name, passwordHash));
      confirm(name, 'has a new password');
    });
}

/** Adds `certflow est-client add|list|remove|enable|disable|passwd` to the program. */
export function registerEstClientCommands(root: Command, helpers: CliHelpers): void {
  const group = root.command('est-client').description('clients that authenticate to EST with HTTP Basic (RFC 7030 3.2.3)');
  addCommand(group, root, helpers);
  listCommand(group, root, helpers);
  changeCommands(group, root, helpers);
}
