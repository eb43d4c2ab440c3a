/**
 * `certflow requests list|show|retry`: issuance requests of the enrollment workflow (EST,
 * CMP, operator `cert issue`). A request that a server fault keeps from being signed (HSM
 * gone, CA key missing, database down) is `stalled`: it stays open, shows its last error
 * here and in the Temporal UI (CertflowLastError), is tried again with backoff, and
 * `requests retry` signs it at once once the fault is fixed. `list --stuck` and
 * `list --waiting` show every protocol's requests (ACME orders too) by the one definition
 * of src/db/repos/stuck.ts.
 */
import { Option, type Command } from 'commander';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as requests from '../db/repos/requests.ts';
import { PROTOCOLS } from '../db/repos/stuck.ts';
import { connectTemporal } from '../temporal/client.ts';
import { retryRequest } from '../ra/approvals.ts';
import type { CliContext } from './context.ts';
import { describeDn } from '../pki/describe.ts';
import { printConditions } from './stuck.ts';

export function registerRequestCommands(root: Command, cli: CliContext): void {
  const cmd = root
    .command('requests')
    .description('issuance requests of every protocol (operator, EST, CMP), from the read model: find stuck ones, look inside, retry');
  cmd
    .command('list')
    .description('list requests, newest first; --stuck / --waiting: those of every protocol (ACME orders too), longest first')
    .addOption(new Option('--state <state>', 'only this state').choices([...requests.REQUEST_STATES]))
    .addOption(new Option('--protocol <protocol>', 'only this protocol (acme: with --stuck or --waiting)').choices([...PROTOCOLS]))
    .addOption(
      new Option(
        '--stuck',
        'only stuck requests: stalled by a server fault, or without progress past the bound of their state (config "stuck")',
      ).conflicts('waiting'),
    )
    .option('--waiting', 'only requests that wait for a person (approval) or for their client, with how long')
    .addOption(new Option('--limit <n>', 'at most n').default(100).argParser(Number))
    .action(async (opts: { state?: requests.RequestState; protocol?: string; stuck?: boolean; waiting?: boolean; limit: number }) => {
      if (opts.stuck || opts.waiting) return printConditions(cli, opts.stuck ? 'stuck' : 'waiting', opts);
      if (opts.protocol === 'acme')
        throw new CaError('malformed', 'ACME orders are listed by `certflow orders list`', { rule: 'cli.protocol' });
      await cli.withPool(async (pool) => {
        const rows = await requests.list(pool, { state: opts.state, protocol: opts.protocol, limit: opts.limit });
        const view = rows.map((r) => ({
          id: r.id,
          protocol: r.protocol,
          state: r.state,
          label: r.label,
          kind: r.kind,
          requester: r.requester,
          profile: r.profile,
          subject: describeDn(r.csrDer),
          serial: r.serial,
          updated: r.updatedAt,
          error: r.error,
          workflow: r.workflowId,
        }));
        if (cli.json()) cli.printJson(view);
        else process.stdout.write(cli.table(view, ['id', 'protocol', 'state', 'label', 'requester', 'profile', 'updated', 'error']));
      });
    });
  cmd
    .command('show <id>')
    .description('one request')
    .action(async (id: string) => {
      await cli.withPool(async (pool) => {
        const r = await requests.get(pool, id);
        if (!r) throw new CaError('notFound', `no request ${id} (see \`certflow requests list\`)`);
        const view = { ...r, subject: describeDn(r.csrDer), csrDer: undefined };
        if (cli.json()) return cli.printJson(view);
        for (const [k, v] of Object.entries(view)) {
          if (v === undefined) continue;
          process.stdout.write(`${k.padEnd(12)} ${v instanceof Date ? v.toISOString() : (v ?? '-')}\n`);
        }
      });
    });
  cmd
    .command('retry <id>')
    .description('sign a stalled request now, once the server fault that stalled it is fixed (an ACME order: as `orders retry`)')
    .action(async (id: string) => {
      const temporal = await connectTemporal(loadConfig(), 5000);
      try {
        const done = await cli.withPool((pool) =>
          retryRequest({ temporal: temporal.client }, pool, { id }, `operator:${userInfo().username}`),
        );
        if (cli.json()) cli.printJson(done);
        else cli.say(done.message);
      } finally {
        await temporal.close();
      }
    });
}
