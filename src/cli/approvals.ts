/** `certflow approvals list|approve|reject`: enrollments that wait for an operator. */
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { awaitingApproval, decideRequest } from '../ra/approvals.ts';
import { connectTemporal } from '../temporal/client.ts';
import type { CliContext } from './context.ts';

export function registerApprovalCommands(root: Command, cli: CliContext): void {
  const approvals = root.command('approvals').description('enrollments waiting for an operator (EST labels or clients with approval)');
  approvals
    .command('list')
    .description('list the requests awaiting approval')
    .action(async () => {
      await cli.withPool(async (pool) => {
        const view = (await awaitingApproval(pool, 100)).map(({ createdAt, workflowId: _, ...r }) => ({ ...r, created: createdAt }));
        if (cli.json()) cli.printJson(view);
        else
          process.stdout.write(
            cli.table(
              view.map((r) => ({ ...r, sans: r.sans.join(' ') })),
              ['id', 'protocol', 'label', 'kind', 'requester', 'profile', 'subject', 'sans', 'keyType', 'created'],
            ),
          );
      });
    });
  const decision = (approve: boolean) => async (id: string, opts: { reason?: string }) => {
    const config = loadConfig();
    const temporal = await connectTemporal(config, 5000);
    try {
      const state = await cli
        .withPool((pool) =>
          decideRequest({ pool, temporal: temporal.client, config }, id, {
            approve,
            by: `operator:${userInfo().username}`,
            reason: opts.reason,
          }),
        )
        .catch((e: unknown) => {
          throw CaError.is(e, 'notFound') ? new CaError('notFound', `${e.message} (see \`certflow approvals list\`)`, { rule: e.rule }) : e;
        });
      if (cli.json()) cli.printJson({ id, state });
      else cli.say(approve ? `approved ${id}: the certificate is issued now; the device gets it on its next request` : `rejected ${id}`);
    } finally {
      await temporal.close();
    }
  };
  approvals.command('approve <id>').description('approve a request: it is signed at once').action(decision(true));
  approvals
    .command('reject <id>')
    .description('reject a request')
    .option('--reason <text>', 'why (shown to the requester)')
    .action(decision(false));
}
