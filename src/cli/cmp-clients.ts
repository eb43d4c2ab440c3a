/**
 * `certflow cmp-client ...`: CMP clients. A MAC client has a reference (the senderKID its
 * messages carry, openssl `-ref`) and a shared secret (openssl `-secret`), stored encrypted
 * under the CMP secrets key (src/cmp/secrets.ts); a certificate client (e.g. a registration
 * authority) is a pinned signer certificate. Only Postgres (and the secrets key) is needed.
 * Every change is audited in the transaction that makes it; secrets never reach the
 * database in clear, the audit log or the output.
 *
 * `certflow requests list|show`: issuance requests of every protocol (CMP transactions are
 * `cmp-<transactionID hex>`), from the read model.
 */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadConfig, type Config } from '../config/index.ts';
import { checkEmailAddress } from '../config/notifications.ts';
import { CaError } from '../core/errors.ts';
import { withTransaction, type Queryable } from '../db/pool.ts';
import { audit } from '../db/repos/audit.ts';
import * as cmpClients from '../db/repos/cmp-clients.ts';
import type { CmpClientRow } from '../db/repos/cmp-clients.ts';
import { encryptSecret, secretsKey } from '../cmp/secrets.ts';
import { describeCertificate, toDer } from '../pki/index.ts';
import type { CliContext } from './context.ts';
import { loadManagedProfiles } from '../ra/profiles.ts';

const MIN_SECRET_LENGTH = 8;

function checkRef(ref: string): void {
  if (!/^[\x21-\x7e]{1,128}$/.test(ref)) {
    throw new CaError('malformed', `CMP reference ${JSON.stringify(ref)} must be 1-128 printable ASCII characters without spaces`, {
      rule: 'cmpClient.ref',
    });
  }
}

function view(row: CmpClientRow) {
  const { secretEnc: _hidden, ...rest } = row;
  return { ...rest, auth: row.secretEnc ? 'secret' : 'certificate' };
}

async function readSecret(arg: string, say: (m: string) => void): Promise<Buffer> {
  let secret: Buffer;
  if (arg === '-') {
    if (process.stdin.isTTY) say('reading the secret from stdin (type it, press Enter, then Ctrl-D)');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    secret = Buffer.from(
      Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\r?\n$/, ''),
      'utf8',
    );
  } else {
    secret = Buffer.from(arg, 'utf8');
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new CaError('malformed', `the secret must have at least ${MIN_SECRET_LENGTH} bytes`, { rule: 'cmpClient.secret' });
  }
  return secret;
}

function checkAliases(config: Config, aliases: string[]): string[] {
  for (const a of aliases) {
    if (!config.cmp.aliases.has(a)) {
      throw new CaError(
        'notFound',
        `unknown CMP alias "${a}" (configured: ${[...config.cmp.aliases.keys()].map((k) => k || "''").join(', ')})`,
        { rule: 'cmp.alias.unknown' },
      );
    }
  }
  return [...new Set(aliases)];
}

export function registerCmpClientCommands(root: Command, cli: CliContext): void {
  const group = root.command('cmp-client').description('CMP clients: shared secrets (MAC protection) and registered signer certificates');
  group
    .command('add')
    .description('register a CMP client')
    .requiredOption(
      '--ref <reference>',
      'reference: the senderKID of its MAC-protected messages (openssl cmp -ref), or a name for a --cert client',
    )
    .option('--secret <secret>', `shared secret (at least ${MIN_SECRET_LENGTH} bytes); "-" reads it from stdin`)
    .option('--cert <file>', 'instead of a secret: the signer certificate (PEM or DER) of a client, e.g. a registration authority')
    .option('--profile <name>', "certificate profile of its requests (default: the alias's)")
    .option(
      '--alias <name>',
      "a CMP alias it may use (repeatable; '' is /.well-known/cmp; default: all)",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--ra', 'a registration authority: may send raVerified proof of possession and revoke certificates issued through its aliases')
    .option('--require-approval', 'its certificate requests always wait for `certflow approvals approve`')
    .option('--email <address>', 'where notices about its certificates go (expiry; docs/notifications.md)')
    .action(
      async (opts: {
        ref: string;
        secret?: string;
        cert?: string;
        profile?: string;
        alias?: string[];
        ra?: boolean;
        requireApproval?: boolean;
        email?: string;
      }) => {
        checkRef(opts.ref);
        if (opts.email !== undefined) checkEmailAddress(opts.email);
        if (Boolean(opts.secret) === Boolean(opts.cert))
          throw new CaError('malformed', 'give exactly one of --secret and --cert', { rule: 'cmpClient.auth' });
        const config = loadConfig();
        if (opts.profile) await cli.withPool((pool) => loadManagedProfiles(config, pool));
        if (opts.profile && !config.profiles.has(opts.profile))
          throw new CaError('notFound', `unknown certificate profile "${opts.profile}"`, { rule: 'profile.unknown' });
        const aliases = checkAliases(config, opts.alias ?? []);
        let secretEnc: string | undefined;
        let certSha256: string | undefined;
        if (opts.secret) secretEnc = encryptSecret(await secretsKey(config), opts.ref, await readSecret(opts.secret, cli.say));
        else {
          const der = toDer(await readFile(opts.cert!), ['CERTIFICATE']);
          describeCertificate(der);
          certSha256 = createHash('sha256').update(der).digest('hex');
        }
        const row = await cli.withPool((pool) =>
          withTransaction(pool, async (tx) => {
            const stored = await cmpClients.insert(tx, {
              ref: opts.ref,
              secretEnc,
              certSha256,
              profile: opts.profile,
              aliases,
              ra: opts.ra,
              requireApproval: opts.requireApproval,
              email: opts.email,
            });
            await audit(tx, {
              actor: 'operator',
              action: 'cmpClient.add',
              object: opts.ref,
              details: {
                auth: secretEnc ? 'secret' : 'certificate',
                certSha256,
                profile: stored.profile,
                aliases,
                ra: stored.ra,
                requireApproval: stored.requireApproval,
                email: stored.email,
              },
            });
            return stored;
          }),
        );
        if (cli.json()) cli.printJson(view(row));
        else
          cli.say(
            `CMP client "${row.ref}" added (${secretEnc ? 'shared secret' : `certificate ${certSha256}`}, profile: ${row.profile ?? "the alias's"}, aliases: ${aliases.length ? aliases.map((a) => a || "''").join(',') : '(all)'}${row.ra ? ', RA' : ''})`,
          );
      },
    );
  group
    .command('list')
    .description('list CMP clients (never their secrets)')
    .action(async () => {
      const rows = await cli.withPool((pool) => cmpClients.list(pool));
      if (cli.json()) return cli.printJson(rows.map(view));
      const shown = rows.map((r) => ({
        ...view(r),
        profile: r.profile ?? '(alias)',
        aliases: r.aliases.length ? r.aliases.map((a) => a || "''") : ['(all)'],
      }));
      process.stdout.write(
        cli.table(shown as never, ['ref', 'auth', 'enabled', 'profile', 'aliases', 'ra', 'requireApproval', 'email', 'createdAt']),
      );
    });
  const change = (name: string, description: string, action: string, fn: (db: Queryable, ref: string) => Promise<boolean>, done: string) =>
    group
      .command(`${name} <ref>`)
      .description(description)
      .action(async (ref: string) => {
        await cli.withPool((pool) =>
          withTransaction(pool, async (tx) => {
            if (!(await fn(tx, ref)))
              throw new CaError('notFound', `no CMP client "${ref}" (see \`certflow cmp-client list\`)`, { rule: 'cmpClient.unknown' });
            await audit(tx, { actor: 'operator', action, object: ref });
          }),
        );
        if (cli.json()) cli.printJson({ ref, result: done });
        else cli.say(`CMP client "${ref}" ${done}`);
      });
  change(
    'remove',
    'delete a client: its secret or certificate stops working at once',
    'cmpClient.remove',
    (db, ref) => cmpClients.remove(db, ref),
    'removed',
  );
  change(
    'disable',
    'refuse the client (notAuthorized) without deleting it',
    'cmpClient.disable',
    (db, ref) => cmpClients.setEnabled(db, ref, false),
    'disabled',
  );
  change('enable', 'let a disabled client in again', 'cmpClient.enable', (db, ref) => cmpClients.setEnabled(db, ref, true), 'enabled');
  group
    .command('secret <ref>')
    .description("replace a MAC client's shared secret")
    .requiredOption('--secret <secret>', 'the new secret; "-" reads it from stdin')
    .action(async (ref: string, opts: { secret: string }) => {
      const enc = encryptSecret(await secretsKey(loadConfig()), ref, await readSecret(opts.secret, cli.say));
      await cli.withPool((pool) =>
        withTransaction(pool, async (tx) => {
          if (!(await cmpClients.setSecret(tx, ref, enc)))
            throw new CaError('notFound', `no MAC client "${ref}"`, { rule: 'cmpClient.unknown' });
          await audit(tx, { actor: 'operator', action: 'cmpClient.secret', object: ref });
        }),
      );
      if (cli.json()) cli.printJson({ ref, result: 'has a new secret' });
      else cli.say(`CMP client "${ref}" has a new secret`);
    });
}
