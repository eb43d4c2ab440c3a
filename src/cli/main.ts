/**
 * The `certflow` command. Every subcommand has --help; --json prints machine-readable output.
 * Exit codes: 0 success, 1 internal error, 2 bad input or request refused, 3 a service
 * (Postgres, Temporal, a worker) did not answer.
 */
import { debugEnabled } from '../config/env.ts';
import { Command, CommanderError, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import type { Pool } from 'pg';
import { getProfile, loadConfig, type Config } from '../config/index.ts';
import { CaError, isRequestEnding } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { createLogger } from '../core/logger.ts';
import { createRuntimeLogin, databaseUrl, migrateDatabase, ownerDatabaseUrl } from '../db/open.ts';
import { createPool, waitForDatabase } from '../db/pool.ts';
import * as cas from '../db/repos/cas.ts';
import * as certificates from '../db/repos/certificates.ts';
import { describeCertificate, parseCsr, pemEncode } from '../pki/index.ts';
import { checkStatusChange, REVOKE_REASONS } from '../ca/status-change.ts';
import { cannotSign, issuingCaName } from '../ca/authority.ts';
import { loadManagedProfiles } from '../ra/profiles.ts';
import { connectTemporal } from '../temporal/client.ts';
import { issueAndWait } from '../ra/enrollment.ts';
import { changeStatusAndWait, refreshAndWait } from '../ra/revocation.ts';
import { registerApprovalCommands } from './approvals.ts';
import { registerClusterCommands } from './cluster.ts';
import { registerTlsCommands } from './tls.ts';
import { registerNotificationCommands } from './notifications.ts';
import { registerOrderCommands } from './orders.ts';
import { registerRequestCommands } from './requests.ts';
import { cliContext } from './context.ts';
import { notifyReady } from './node-child.ts';
import { registerEstClientCommands } from './est-clients.ts';
import { registerEabCommands } from './eab.ts';
import { registerKeyCommands } from './keys.ts';
import { registerConsoleCommands } from './console.ts';
import { registerCmpClientCommands } from './cmp-clients.ts';
import { registerCaCommands } from './ca.ts';
import { registerProfileCommands } from './profiles.ts';
import { certflowVersion } from '../admin/version.ts';
import { normalizeSerial, printJson, table, writeFileAtomic } from './output.ts';

const say = (msg: string) => process.stderr.write(`certflow: ${msg}\n`);

interface GlobalOpts {
  json?: boolean;
}

/** A pool for read-only CLI commands: fails fast with a hint when no database answers. */
async function cliPool(config: Config): Promise<Pool> {
  const url = databaseUrl(config);
  try {
    await waitForDatabase(url, 3000);
  } catch (e) {
    throw new CaError('unavailable', `${(e as Error).message}\nIs the dev stack running (\`npm start\`), or is DATABASE_URL set?`);
  }
  return createPool(url);
}

async function withPool<T>(fn: (pool: Pool, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const pool = await cliPool(config);
  try {
    return await fn(pool, config);
  } finally {
    await pool.end();
  }
}

/** The whole command tree (bin/certflow.js runs it; the docs test lists it against docs/cli.md). */
export function program(): Command {
  const root = new Command('certflow')
    .description('certflow: a certificate authority whose issuance is durable (ACME, EST, CMP on Temporal)')
    .option('--json', 'print machine-readable JSON')
    .version(certflowVersion(), '-V, --version', "print certflow's version")
    .showHelpAfterError()
    .exitOverride();

  root
    .command('start')
    .description('run the whole stack in dev mode: embedded Postgres, Temporal dev server, worker, server')
    .action(async () => {
      const { startDevStack } = await import('./start.ts');
      const config = loadConfig();
      // Progress goes to the console through `say`; the supervisor's own log only carries warnings.
      await startDevStack(config, createLogger('supervisor', 'warn'), { say });
      await new Promise(() => {}); // runs until a signal stops it
    });

  root
    .command('server')
    .description('run the HTTPS and HTTP listeners (needs DATABASE_URL and TEMPORAL_ADDRESS in production)')
    .action(async () => {
      const { startServer } = await import('../http/server.ts');
      const config = loadConfig();
      const log = createLogger('server', config.logLevel);
      const server = await startServer(config, log);
      notifyReady({ acmeDirectoryUrl: server.acmeDirectoryUrl, httpsUrl: server.httpsUrl, httpUrl: server.httpUrl });
      log.info({ acmeDirectory: server.acmeDirectoryUrl }, 'certflow server ready');
      await onSignal(async () => server.close());
    });

  root
    .command('worker')
    .description('run a Temporal worker for both task queues (holds the CA keys)')
    .action(async () => {
      const { startWorker } = await import('../temporal/worker.ts');
      const config = loadConfig();
      const log = createLogger('worker', config.logLevel);
      const worker = await startWorker(config, log);
      notifyReady();
      await worker.done;
    });

  root
    .command('migrate')
    .description(
      'apply pending database migrations as the owner login (CERTFLOW_DATABASE_OWNER_URL, else DATABASE_URL) and grant the runtime login (DATABASE_URL) its privileges',
    )
    .option(
      '--create-runtime-login',
      "first create the runtime login of DATABASE_URL (name and password from the URL) with the owner login, or set its password (docker-compose.yml's migrate job)",
    )
    .action(async (opts: { createRuntimeLogin?: boolean }) => {
      const config = loadConfig();
      if (opts.createRuntimeLogin) say(`runtime login "${await createRuntimeLogin(config)}" is in place`);
      await waitForDatabase(ownerDatabaseUrl(config) ?? databaseUrl(config), 10_000);
      const applied = await migrateDatabase(config, say);
      if (root.opts<GlobalOpts>().json) printJson({ applied });
      else say(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
    });

  const cert = root.command('cert').description('certificates');
  cert
    .command('issue')
    .description('issue a certificate for a PKCS#10 CSR through the issuance workflow')
    .requiredOption('--csr <file>', 'PKCS#10 request, PEM or DER')
    .option('--profile <name>', 'certificate profile (default: the configured default, tls-server)')
    .option('--ca <name>', "issuing CA (default: the profile's or the default issuing CA)")
    .option('--out <file>', 'write the certificate (PEM) here instead of stdout')
    .option('--chain-out <file>', 'also write the issuing CA chain (PEM) here')
    .option('--request-id <id>', 'idempotency key: the same id never yields a second certificate')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the certificate').default('60').argParser(Number))
    .action(
      async (opts: {
        csr: string;
        profile?: string;
        ca?: string;
        out?: string;
        chainOut?: string;
        requestId?: string;
        timeout: number;
      }) => {
        const config = loadConfig();
        const input = await readFile(opts.csr).catch((e: NodeJS.ErrnoException) => {
          throw new CaError('malformed', `cannot read ${opts.csr}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        });
        const csr = parseCsr(input); // a malformed CSR fails here, before any workflow starts
        await withPool((pool) => loadManagedProfiles(config, pool));
        const profile = getProfile(config, opts.profile);
        // An unknown CA, or one that cannot sign (revoked, expired), is the operator's mistake
        // here; inside the workflow it would be a server fault.
        await withPool(async (pool) => {
          const name = issuingCaName(config, opts.ca, profile);
          const ca = await cas.get(pool, name);
          if (!ca || ca.role !== 'issuing')
            throw new CaError('notFound', `no issuing CA named "${name}" (see \`certflow ca list\`)`, { rule: 'ca.unknown' });
          const why = cannotSign(ca, new Date());
          if (why) throw new CaError('conflict', why.message, { rule: why.rule });
        });
        const temporal = await connectTemporal(config, 5000);
        try {
          const requestId = opts.requestId ?? newId();
          const result = await issueAndWait(
            { temporal: temporal.client, config: config },
            {
              requestId,
              protocol: 'operator',
              csr: Buffer.from(csr.der).toString('base64'),
              profile: profile.name,
              caName: opts.ca,
              requester: 'operator',
            },
            opts.timeout * 1000,
          );
          if (result.status === 'rejected') {
            throw new CaError(result.kind as never, `request refused: ${result.message}`);
          }
          if (opts.out) await writeFileAtomic(opts.out, result.certPem);
          if (opts.chainOut) await writeFileAtomic(opts.chainOut, result.chainPem);
          if (root.opts<GlobalOpts>().json) {
            printJson({
              requestId,
              workflowId: result.workflowId,
              serial: result.serial,
              ca: result.caName,
              notBefore: result.notBefore,
              notAfter: result.notAfter,
              certificate: result.certPem,
            });
          } else if (opts.out) {
            say(`issued ${result.serial} (profile ${profile.name}, CA ${result.caName}, valid until ${result.notAfter}) -> ${opts.out}`);
          } else {
            process.stdout.write(result.certPem);
          }
        } finally {
          await temporal.close();
        }
      },
    );
  cert
    .command('list')
    .description('list certificates')
    .addOption(new Option('--status <status>', 'only this status').choices(['signing', 'valid', 'revoked', 'hold']))
    .option('--profile <name>', 'only this profile')
    .addOption(new Option('--limit <n>', 'at most n rows').default(100).argParser(Number))
    .addOption(new Option('--offset <n>', 'skip n rows').default(0).argParser(Number))
    .action(async (opts: { status?: string; profile?: string; limit: number; offset: number }) => {
      await withPool(async (pool) => {
        const rows = await certificates.list(pool, {
          status: opts.status as never,
          profile: opts.profile,
          limit: opts.limit,
          offset: opts.offset,
        });
        if (root.opts<GlobalOpts>().json) printJson(rows);
        else process.stdout.write(table(rows as never, ['serial', 'status', 'profile', 'subject', 'notAfter', 'protocol']));
      });
    });
  cert
    .command('show <serial>')
    .description('show one certificate (hex serial, colons allowed)')
    .option('--pem', 'print only the certificate in PEM')
    .action(async (serialArg: string, opts: { pem?: boolean }) => {
      await withPool(async (pool) => {
        const serial = normalizeSerial(serialArg);
        const row = await certificates.get(pool, serial);
        if (!row) throw new CaError('notFound', `no certificate with serial ${serial}`);
        if (opts.pem) {
          if (!row.certDer) throw new CaError('conflict', `certificate ${serial} is still being signed`);
          process.stdout.write(pemEncode('CERTIFICATE', row.certDer));
          return;
        }
        const details = row.certDer ? describeCertificate(row.certDer) : undefined;
        const view = {
          serial: row.serial,
          status: row.status,
          profile: row.profile,
          ca: row.caName,
          protocol: row.protocol,
          requestId: row.requestId,
          requester: row.requester,
          subject: row.subject,
          sans: row.sans,
          notBefore: row.notBefore,
          notAfter: row.notAfter,
          issuedAt: row.issuedAt,
          revokedAt: row.revokedAt,
          revocationReason: row.revocationReason,
          keyUsage: details?.keyUsage,
          extKeyUsage: details?.extKeyUsage,
          fingerprintSha256: details?.fingerprintSha256,
          certificate: row.certDer ? pemEncode('CERTIFICATE', row.certDer) : null,
        };
        if (root.opts<GlobalOpts>().json) printJson(view);
        else {
          for (const [k, v] of Object.entries(view)) {
            if (k === 'certificate') continue;
            process.stdout.write(`${k.padEnd(18)} ${v instanceof Date ? v.toISOString() : Array.isArray(v) ? v.join(', ') : (v ?? '-')}\n`);
          }
          if (view.certificate) process.stdout.write(view.certificate);
        }
      });
    });
  const statusCommand = (name: 'revoke' | 'hold' | 'release', description: string) => {
    const c = cert
      .command(`${name} <serial>`)
      .description(description)
      .addOption(new Option('--timeout <seconds>', 'how long to wait for the worker').default('60').argParser(Number));
    if (name === 'revoke') {
      c.addOption(new Option('--reason <name>', 'RFC 5280 reason').default('unspecified').choices([...REVOKE_REASONS]));
    }
    c.action(async (serialArg: string, opts: { reason?: string; timeout: number }) => {
      const serial = normalizeSerial(serialArg);
      const current = await withPool((pool) => certificates.get(pool, serial));
      if (!current) throw new CaError('notFound', `no certificate with serial ${serial}`);
      checkStatusChange(current, name);
      const config = loadConfig();
      const temporal = await connectTemporal(config, 5000);
      try {
        const r = await changeStatusAndWait(
          { temporal: temporal.client, config: config },
          { serial, action: name, reason: opts.reason, requester: 'operator' },
          opts.timeout * 1000,
        );
        if (root.opts<GlobalOpts>().json) printJson(r);
        else say(`${serial} is ${r.status}${r.reason ? ` (${r.reason})` : ''}; CRL ${r.crlNumber} of ${r.caName} published`);
      } finally {
        await temporal.close();
      }
    });
  };
  const context = cliContext(root, withPool, say);
  registerEstClientCommands(root, context);
  registerApprovalCommands(root, context);
  registerEabCommands(root, context);
  registerOrderCommands(root, context);
  registerRequestCommands(root, context);
  registerKeyCommands(root, context);
  registerConsoleCommands(root, context);
  registerClusterCommands(root, context);
  registerTlsCommands(root, context);
  registerNotificationCommands(root, context);
  registerCmpClientCommands(root, context);
  registerCaCommands(root, context);
  registerProfileCommands(root, context);

  statusCommand('revoke', 'revoke a certificate (publishes a new CRL and OCSP response)');
  statusCommand('hold', 'suspend a certificate (certificateHold); undo with release');
  statusCommand('release', 'release a certificate from hold');

  root
    .command('crl')
    .description('certificate revocation lists')
    .command('generate [ca-name]')
    .description('sign a new CRL now (every issuing CA, or the one named) and renew due OCSP responses')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the worker').default('60').argParser(Number))
    .action(async (caName: string | undefined, opts: { timeout: number }) => {
      const config = loadConfig();
      const temporal = await connectTemporal(config, 5000);
      try {
        const r = await refreshAndWait(
          { temporal: temporal.client, config: config },
          { force: true, caName, requester: 'operator' },
          opts.timeout * 1000,
        );
        if (root.opts<GlobalOpts>().json) printJson(r);
        else
          for (const c of r.crls)
            say(`CRL ${c.crlNumber} of ${c.caName}: ${c.entries} entries -> ${config.publicHttpUrl}/crl/${c.caName}.crl`);
      } finally {
        await temporal.close();
      }
    });
  return root;
}

async function onSignal(fn: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const h = () => resolve();
    process.once('SIGINT', h);
    process.once('SIGTERM', h);
  });
  await fn();
  process.exit(0);
}

function exitCodeFor(e: CaError): number {
  if (e.kind === 'unavailable') return 3;
  // A configuration the operator must fix is "bad input" to the command as well.
  return isRequestEnding(e.kind) || e.kind === 'config' ? 2 : 1;
}

export async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    if (e instanceof CaError) {
      say(`error: ${e.message}${e.rule ? ` [rule ${e.rule}]` : ''}`);
      if (e.kind === 'internal' || debugEnabled()) console.error(e.cause ?? e);
      process.exit(exitCodeFor(e));
    }
    say(`error: ${(e as Error)?.message ?? String(e)}`);
    if (debugEnabled()) console.error(e);
    process.exit(1);
  }
}
