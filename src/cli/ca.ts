/**
 * `certflow ca ...`: the CAs and their lifecycle. Listing and export read the database; every
 * change (create, import-cert, import, rollover, revoke) runs the operation's workflow
 * (src/ra/cas.ts, workflows/ca.ts), which the worker holding the CA keys carries out,
 * and waits for its result. `ca import --key <file>` runs where the worker's software key
 * store is (like `certflow keys recover`): the key is put into the store here and never
 * travels through Temporal.
 */
import { Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { CaCreateInput, CaOperationResult } from '../../activities/types.ts';
import { caExpiryReport } from '../ra/ca-expiry.ts';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as cas from '../db/repos/cas.ts';
import { KEY_ALGS } from '../keys/types.ts';
import { importKeyFile } from './ca-key-import.ts';
import { pemEncode } from '../pki/index.ts';
import { REVOKE_REASONS } from '../ca/status-change.ts';
import { connectTemporal } from '../temporal/client.ts';
import { runCaOperation, type CaOperation } from '../ra/cas.ts';
import type { CliContext } from './context.ts';
import { writeFileAtomic } from './output.ts';

const operator = () => `operator:${userInfo().username}`;

async function readText(file: string, what: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new CaError('malformed', `cannot read ${what} ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
}

const timeoutOption = () => new Option('--timeout <seconds>', 'how long to wait for the worker').default('120').argParser(Number);

/** Runs the operation's workflow and prints its result. */
async function run(ctx: CliContext, operation: CaOperation, timeoutS: number): Promise<CaOperationResult> {
  const config = loadConfig();
  const temporal = await connectTemporal(config, 5000);
  try {
    const r = await runCaOperation({ temporal: temporal.client, config }, operation, timeoutS * 1000);
    if (ctx.json()) ctx.printJson(r);
    else ctx.say(r.message);
    return r;
  } finally {
    await temporal.close();
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerCaCommands(root: Command, ctx: CliContext): void {
  const ca = root.command('ca').description('certificate authorities: list, export, create, import, roll over, revoke');

  ca.command('list')
    .description('list the CAs, pending ones, and warnings about CAs that expire too soon')
    .action(async () => {
      await ctx.withPool(async (pool, config) => {
        const [rows, pending, expiry] = await Promise.all([cas.list(pool), cas.listPending(pool), caExpiryReport(pool, config)]);
        const warned = new Map(expiry.map((w) => [w.ca, w]));
        const view = [
          ...rows.map((r) => ({ ...r, expiry: warned.get(r.name) ?? null })),
          ...pending
            .filter((p) => !rows.some((r) => r.name === p.name))
            .map((p) => ({
              name: p.name,
              role: p.role,
              parent: null,
              status: 'pending',
              generation: p.generation,
              keyAlg: p.key.keyAlg,
              keyBackend: p.key.keyBackend,
              subject: p.key.subject,
              notAfter: null,
              expiry: null,
            })),
        ];
        if (ctx.json()) ctx.printJson(view);
        else {
          const text = view.map((v) => ({ ...v, expiry: v.expiry?.level ?? null }));
          process.stdout.write(
            ctx.table(text as never, [
              'name',
              'role',
              'parent',
              'status',
              'generation',
              'keyAlg',
              'keyBackend',
              'subject',
              'notAfter',
              'expiry',
            ]),
          );
          for (const w of expiry) ctx.say(`${w.level}: ${w.message}`);
        }
      });
    });

  ca.command('export <name>')
    .description(
      "print a CA's certificate (PEM, or DER with --der); --chain adds its chain up to the root, --csr prints a pending CA's request",
    )
    .option('--out <file>', 'write to a file instead of stdout')
    .option('--der', 'DER instead of PEM')
    .option('--chain', 'the certificate and every CA above it, up to and including the root (PEM)')
    .option('--csr', "a pending (external) CA's PKCS#10 request (PEM)")
    .addOption(new Option('--generation <n>', 'a key generation other than the active one').argParser(Number))
    .action(async (name: string, opts: { out?: string; der?: boolean; chain?: boolean; csr?: boolean; generation?: number }) => {
      await ctx.withPool(async (pool) => {
        let out: string | Buffer;
        if (opts.csr) {
          const pending = (await cas.keys(pool, name)).find((k) => k.csrDer && !k.certDer);
          if (!pending) throw new CaError('notFound', `CA "${name}" has no pending request`);
          out = pemEncode('CERTIFICATE REQUEST', pending.csrDer!);
        } else {
          const row = await cas.get(pool, name);
          if (!row) throw new CaError('notFound', `no CA named "${name}" (see \`certflow ca list\`)`);
          const generation = opts.generation ?? row.generation;
          const chain = await cas.issuingChain(pool, name, { includeRoot: true, generation });
          if (!chain.length) throw new CaError('notFound', `CA "${name}" has no key generation ${generation}`);
          out = opts.der
            ? Buffer.from(chain[0]!)
            : (opts.chain ? chain : chain.slice(0, 1)).map((d) => pemEncode('CERTIFICATE', d)).join('');
        }
        if (opts.out) await writeFileAtomic(opts.out, out);
        else process.stdout.write(out);
      });
    });

  ca.command('create')
    .description('create a CA: a subordinate of --parent, a new --root, or --external (a CSR for an outside CA to sign)')
    .requiredOption('--name <name>', 'the new CA name (letters, digits, ".", "_", "-")')
    .option('--parent <ca>', 'the certflow CA that signs its certificate')
    .option('--root', 'a new self-signed root CA')
    .option('--external', 'signed outside certflow: write a PKCS#10 request (--csr-out), then `ca import-cert`')
    .option('--csr-out <file>', 'where --external writes the request (PEM)')
    .option('--subject <dn>', 'subject DN, e.g. "CN=Devices CA,O=Example" (default CN=<name>)')
    .addOption(new Option('--key-alg <alg>', 'key algorithm (default CERTFLOW_CA_KEY_ALG)').choices([...KEY_ALGS]))
    .addOption(new Option('--validity-days <d>', "validity in days (capped at the parent's)").argParser(Number))
    .addOption(
      new Option('--path-len <n>', 'how many CA levels may follow below it (default 0: it issues end-entity certificates only)').argParser(
        Number,
      ),
    )
    .option(
      '--permit <name>',
      'name constraint, permitted subtree: dns:example.com, ip:10.0.0.0/8, email:example.com, uri:example.com (repeat)',
      collect,
    )
    .option('--exclude <name>', 'name constraint, excluded subtree (same forms; repeat)', collect)
    .option('--crl-profile <name>', 'a managed CRL profile for its CRLs')
    .addOption(timeoutOption())
    .action(
      async (opts: {
        name: string;
        parent?: string;
        root?: boolean;
        external?: boolean;
        csrOut?: string;
        subject?: string;
        keyAlg?: string;
        validityDays?: number;
        pathLen?: number;
        permit?: string[];
        exclude?: string[];
        crlProfile?: string;
        timeout: number;
      }) => {
        if (opts.external && !opts.csrOut) throw new CaError('malformed', '--external needs --csr-out <file> for the request');
        const input: CaCreateInput = {
          name: opts.name,
          parent: opts.parent,
          root: opts.root,
          external: opts.external,
          subject: opts.subject,
          keyAlg: opts.keyAlg,
          validityDays: opts.validityDays,
          pathLen: opts.pathLen,
          nameConstraints: opts.permit || opts.exclude ? { permitted: opts.permit ?? [], excluded: opts.exclude ?? [] } : undefined,
          crlProfile: opts.crlProfile,
          requester: operator(),
        };
        const r = await run(ctx, { op: 'create', input }, opts.timeout);
        if (opts.csrOut && r.csrPem) {
          await writeFileAtomic(opts.csrOut, r.csrPem);
          if (!ctx.json()) ctx.say(`request written to ${opts.csrOut}`);
        }
      },
    );

  ca.command('import-cert')
    .description(
      'activate a pending (external) CA with the certificate the outside CA issued for its request; it must chain to a trust anchor (ca.trustAnchors)',
    )
    .requiredOption('--name <name>', 'the pending CA')
    .requiredOption('--cert <file>', 'its certificate (PEM)')
    .option('--chain <file>', 'CA certificates between it and the trust anchor (PEM)')
    .addOption(timeoutOption())
    .action(async (opts: { name: string; cert: string; chain?: string; timeout: number }) => {
      const certPem = await readText(opts.cert, 'certificate');
      const chainPem = opts.chain ? await readText(opts.chain, 'chain') : undefined;
      await run(ctx, { op: 'import', input: { name: opts.name, certPem, chainPem, requester: operator() } }, opts.timeout);
    });

  ca.command('import')
    .description(
      'bring an existing CA into certflow: its certificate and its key (a PKCS#8 file, or a PKCS#11 key that stays in the token)',
    )
    .requiredOption('--name <name>', 'the name it gets in certflow')
    .requiredOption('--cert <file>', 'its certificate (PEM)')
    .option('--chain <file>', 'CA certificates between it and a trust anchor (PEM), for a subordinate CA')
    .option('--key <file>', "its private key, PKCS#8 (PEM or DER, encrypted or not); run this where the worker's key store is")
    .option('--key-passphrase-file <file>', 'passphrase of an encrypted --key')
    .option('--pkcs11-uri <uri>', "its key in the worker's token: an RFC 7512 URI (pkcs11:token=…;object=<label>) or just the key's label")
    .addOption(timeoutOption())
    .action(
      async (opts: {
        name: string;
        cert: string;
        chain?: string;
        key?: string;
        keyPassphraseFile?: string;
        pkcs11Uri?: string;
        timeout: number;
      }) => {
        if (Boolean(opts.key) === Boolean(opts.pkcs11Uri))
          throw new CaError('malformed', 'give the key as exactly one of --key <pkcs8 file> or --pkcs11-uri <uri>');
        const certPem = await readText(opts.cert, 'certificate');
        const chainPem = opts.chain ? await readText(opts.chain, 'chain') : undefined;
        let key: { keyId: string } | { pkcs11Uri: string };
        if (opts.pkcs11Uri) {
          key = {
            pkcs11Uri: opts.pkcs11Uri.startsWith('pkcs11:') ? opts.pkcs11Uri : `pkcs11:object=${encodeURIComponent(opts.pkcs11Uri)}`,
          };
        } else {
          key = { keyId: await importKeyFile(opts.name, certPem, opts.key!, opts.keyPassphraseFile) };
          if (!ctx.json()) ctx.say(`the key is in the software key store as "${opts.name}"`);
        }
        await run(ctx, { op: 'import', input: { name: opts.name, certPem, chainPem, key, requester: operator() } }, opts.timeout);
      },
    );

  ca.command('rollover <name>')
    .description(
      'a new key and certificate for the CA; issuance moves to it at --activate-at (default: at once); the old key keeps signing CRLs and OCSP for its certificates',
    )
    .option('--activate-at <time>', 'ISO 8601 time at which new certificates come from the new key')
    .addOption(new Option('--key-alg <alg>', 'key algorithm of the new key (default: the current one)').choices([...KEY_ALGS]))
    .addOption(new Option('--validity-days <d>', 'validity of the new certificate in days').argParser(Number))
    .option('--subject <dn>', 'subject DN of the new certificate (default: the current one)')
    .addOption(timeoutOption())
    .action(
      async (name: string, opts: { activateAt?: string; keyAlg?: string; validityDays?: number; subject?: string; timeout: number }) => {
        if (opts.activateAt !== undefined && Number.isNaN(Date.parse(opts.activateAt))) {
          throw new CaError('malformed', `--activate-at "${opts.activateAt}" is not an ISO 8601 time (e.g. 2030-01-01T00:00:00Z)`);
        }
        const activateAt = opts.activateAt ? new Date(opts.activateAt).toISOString() : undefined;
        await run(
          ctx,
          {
            op: 'rollover',
            input: { name, activateAt, keyAlg: opts.keyAlg, validityDays: opts.validityDays, subject: opts.subject, requester: operator() },
          },
          opts.timeout,
        );
      },
    );

  ca.command('revoke <name>')
    .description("revoke a CA: its parent's CRL lists it, every certificate it issued is revoked with it, and it never signs again")
    .addOption(new Option('--reason <name>', 'RFC 5280 reason').default('cACompromise').choices([...REVOKE_REASONS]))
    .addOption(timeoutOption())
    .action(async (name: string, opts: { reason: string; timeout: number }) => {
      await run(ctx, { op: 'revoke', input: { name, reason: opts.reason, requester: operator() } }, opts.timeout);
    });
}
