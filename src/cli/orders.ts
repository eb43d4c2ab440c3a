/** `certflow orders list|show|retry|cancel`: find and fix ACME orders from the command line. */
import { Option, type Command } from 'commander';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as orders from '../db/repos/acme-orders.ts';
import { authzWorkflowId, WORKFLOWS } from '../../workflows/api.ts';
import { connectTemporal } from '../temporal/client.ts';
import { cancelOrder } from '../ra/acme.ts';
import { retryRequest } from '../ra/approvals.ts';
import type { CliContext } from './context.ts';
import { printConditions } from './stuck.ts';

export function registerOrderCommands(root: Command, cli: CliContext): void {
  const cmd = root.command('orders').description('ACME orders: find stuck ones, look inside, retry validation, cancel');
  cmd
    .command('list')
    .description('list orders, most recently changed first; --stuck / --waiting: longest first')
    .addOption(new Option('--state <state>', 'only this state').choices(['pending', 'ready', 'processing', 'valid', 'invalid']))
    .addOption(
      new Option(
        '--stuck',
        'only stuck orders (as `requests list --stuck`): validating past the retry window, processing past the signing bound, open past expiry',
      ).conflicts('waiting'),
    )
    .option('--waiting', 'only orders that wait for their client (a challenge answer, finalize), with how long')
    .addOption(new Option('--limit <n>', 'at most n').default(100).argParser(Number))
    .action(async (opts: { state?: string; stuck?: boolean; waiting?: boolean; limit: number }) => {
      if (opts.stuck || opts.waiting) return printConditions(cli, opts.stuck ? 'stuck' : 'waiting', { ...opts, protocol: 'acme' });
      await cli.withPool(async (pool) => {
        const rows = await orders.findOrders(pool, { status: opts.state, limit: opts.limit });
        const view = rows.map((o) => ({
          id: o.id,
          status: o.status,
          identifiers: o.identifiers.map((i) => i.value),
          account: o.accountId,
          updated: o.updatedAt,
          expires: o.expiresAt,
          error: o.error?.detail,
          workflow: WORKFLOWS.acmeOrder.id(o.id),
        }));
        if (cli.json()) cli.printJson(view);
        else process.stdout.write(cli.table(view, ['id', 'status', 'identifiers', 'account', 'updated', 'expires', 'error']));
      });
    });
  cmd
    .command('show <id>')
    .description('an order with its authorizations and challenges')
    .action(async (id: string) => {
      await cli.withPool(async (pool) => {
        const o = await orders.getOrder(pool, id);
        if (!o) throw new CaError('notFound', `no order ${id}`);
        const authzs = await orders.getAuthzs(pool, o.authzIds);
        const view = {
          ...o,
          workflowId: WORKFLOWS.acmeOrder.id(o.id),
          authorizations: authzs.map((a) => ({ ...a, workflowId: authzWorkflowId(o.id, a) })),
        };
        if (cli.json()) return cli.printJson(view);
        const line = (k: string, v: unknown) =>
          process.stdout.write(`${k.padEnd(14)} ${v instanceof Date ? v.toISOString() : (v ?? '-')}\n`);
        line('order', o.id);
        line('status', o.status);
        line('identifiers', o.identifiers.map((i) => `${i.type}:${i.value}`).join(', '));
        line('account', o.accountId);
        line('profile', o.profile);
        line('expires', o.expiresAt);
        line('certificate', o.serial);
        line('error', o.error ? `${o.error.type.split(':').at(-1)}: ${o.error.detail}` : undefined);
        line('workflow', view.workflowId);
        for (const a of authzs) {
          process.stdout.write(
            `\nauthorization ${a.id} (${a.identifier.type}:${a.wildcard ? '*.' : ''}${a.identifier.value}) ${a.status}, expires ${a.expiresAt.toISOString()}\n`,
          );
          for (const c of a.challenges) {
            process.stdout.write(`  ${c.type.padEnd(12)} ${c.status}${c.error ? ` — ${c.error.detail}` : ''}\n`);
          }
        }
      });
    });
  cmd
    .command('retry <id>')
    .description('sign a processing order again now (a server fault fixed), or validate its challenges that wait for their next retry now')
    .action(async (id: string) => {
      const temporal = await connectTemporal(loadConfig(), 5000);
      try {
        const done = await cli.withPool((pool) =>
          retryRequest({ temporal: temporal.client }, pool, { id, kind: 'order' }, `operator:${userInfo().username}`),
        );
        if (cli.json()) return cli.printJson(done);
        for (const authzId of done.authorizations ?? []) cli.say(`authorization ${authzId}: validating again now`);
        if (!done.authorizations) cli.say(done.message);
      } finally {
        await temporal.close();
      }
    });
  cmd
    .command('cancel <id>')
    .description('make an unfinished order invalid')
    .option('--reason <text>', 'shown to the client in the order error')
    .action(async (id: string, opts: { reason?: string }) => {
      const temporal = await connectTemporal(loadConfig(), 5000);
      try {
        await cancelOrder({ temporal: temporal.client }, id, `operator:${userInfo().username}`, opts.reason);
        cli.say(`order ${id} canceled`);
      } finally {
        await temporal.close();
      }
    });
}
