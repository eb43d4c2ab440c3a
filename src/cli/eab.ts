/**
 * `certflow eab create|list`: external account binding keys (RFC 8555 7.3.4) that the
 * operator hands to a customer out of band. A key binds one ACME account of one alias,
 * once. Only Postgres is needed. The MAC key is shown once, at creation, and never again.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { withTransaction } from '../db/pool.ts';
import * as eabKeys from '../db/repos/acme-eab.ts';
import { audit } from '../db/repos/audit.ts';
import { newEabKey } from '../acme/eab.ts';
import type { CliContext } from './context.ts';

/** The alias as typed: '' (or nothing) is the default directory /acme/directory. */
function aliasLabel(alias: string): string {
  return alias === '' ? "''" : alias;
}

function checkAlias(alias: string): void {
  const config = loadConfig();
  if (!config.acme.aliases.has(alias)) {
    const configured = [...config.acme.aliases.keys()].map(aliasLabel).join(', ');
    throw new CaError('notFound', `unknown ACME alias ${aliasLabel(alias)} (configured: ${configured})`, { rule: 'acme.alias.unknown' });
  }
}

function createCommand(group: Command, cli: CliContext): void {
  group
    .command('create')
    .description('create a key id and MAC key for one new ACME account (printed once)')
    .option('--alias <acme-alias>', "the ACME directory it is for ('' = /acme/directory)", '')
    .action(async (opts: { alias: string }) => {
      checkAlias(opts.alias);
      const { kid, hmacKey, hmacKeyEnc } = await newEabKey(loadConfig());
      const row = await cli.withPool((pool) =>
        withTransaction(pool, async (tx) => {
          const stored = await eabKeys.insert(tx, { kid, alias: opts.alias, hmacKeyEnc });
          // The audit entry names the key id only: the MAC key is a secret.
          await audit(tx, { actor: 'operator', action: 'acme.eab.create', object: kid, details: { alias: opts.alias } });
          return stored;
        }),
      );
      const key = hmacKey.toString('base64url');
      if (cli.json()) {
        cli.printJson({ kid, hmacKey: key, alias: row.alias, createdAt: row.createdAt });
        return;
      }
      process.stdout.write(`key id:   ${kid}\nhmac key: ${key}\n`);
      cli.say(
        `EAB key for ACME alias ${aliasLabel(row.alias)} created; it binds one account, once (e.g. certbot --eab-kid ... --eab-hmac-key ...)`,
      );
    });
}

function listCommand(group: Command, cli: CliContext): void {
  group
    .command('list')
    .description('list EAB keys: id, alias, the account that used it (never the MAC keys)')
    .option('--alias <acme-alias>', 'only keys for this alias')
    .action(async (opts: { alias?: string }) => {
      const rows = await cli.withPool((pool) => eabKeys.list(pool, { alias: opts.alias }));
      const view = rows.map((r) => ({ kid: r.kid, alias: r.alias, account: r.accountId, created: r.createdAt, used: r.usedAt }));
      if (cli.json()) cli.printJson(view);
      else
        process.stdout.write(
          cli.table(
            view.map((v) => ({ ...v, alias: aliasLabel(v.alias) })),
            ['kid', 'alias', 'account', 'created', 'used'],
          ),
        );
    });
}

/** Adds `certflow eab create|list` to the program. */
export function registerEabCommands(root: Command, cli: CliContext): void {
  const group = root.command('eab').description('external account binding keys for ACME (RFC 8555 7.3.4)');
  createCommand(group, cli);
  listCommand(group, cli);
}
