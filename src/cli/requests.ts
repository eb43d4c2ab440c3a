/**
 * `certflow requests list|show|retry`: issuance requests of the enrollment workflow (EST,
 * CMP, operator `cert issue`). A request that a server fault keeps from being signed (HSM
 * gone, CA key missing, database down) is `stalled`: it stays open, shows its last error
 * here and in the Temporal UI (CertflowLastError), is tried again with backoff, and
 * `requests retry` signs it at once once the fault is fixed.
 */
import { Option, type Command } from 'commander';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as requests from '../db/repos/requests.ts';
import { retryStalledRequest } from '../ra/approvals.ts';
import { connectTemporal } from '../temporal/client.ts';
import type { CliContext } from './context.ts';
import { describeDn } from '../pki/describe.ts';

const STATES = [
  'pending',
  'awaiting-approval',
  'signing',
  'stalled',
  'issued',
  'confirmed',
  'revoked',
  'failed',
  'rejected',
  'abandoned',
] as const;
/** Pending or signing for longer than this counts as stuck. */
const STUCK_AFTER_SECONDS = 120;

export function registerRequestCommands(root: Command, cli: CliContext): void {
  const cmd = root
    .command('requests')
    .description('issuance requests of every protocol (operator, EST, CMP), from the read model: find stuck ones, look inside, retry');
  cmd
    .command('list')
    .description('list requests, newest first')
    .addOption(new Option('--state <state>', 'only this state').choices([...STATES]))
    .addOption(new Option('--protocol <protocol>', 'only this protocol').choices(['est', 'cmp', 'operator']))
    .option(
      '--stuck',
      `only requests that should have moved on: stalled by a server fault, or pending/signing for over ${STUCK_AFTER_SECONDS} s`,
    )
    .addOption(new Option('--limit <n>', 'at most n').default(100).argParser(Number))
    .action(async (opts: { state?: requests.RequestState; protocol?: string; stuck?: boolean; limit: number }) => {
      await cli.withPool(async (pool) => {
        const rows = await requests.list(pool, {
          state: opts.state,
          protocol: opts.protocol,
          stuckAfterSeconds: opts.stuck ? STUCK_AFTER_SECONDS : undefined,
          limit: opts.limit,
        });
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
    .description('sign a stalled request now (after the server fault that stalled it was fixed)')
    .action(async (id: string) => {
      const config = loadConfig();
      const temporal = await connectTemporal(config, 5000);
      try {
        await cli.withPool((pool) =>
          retryStalledRequest({ temporal: temporal.client, config, pool }, id, `operator:${userInfo().username}`),
        );
        cli.say(`request ${id}: signing again now`);
      } finally {
        await temporal.close();
      }
    });
}
