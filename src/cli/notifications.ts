/**
 * `certflow notifications list|test|sweep|retry`: what certflow told whom (every delivery,
 * its attempts, the dead letters), a test through every configured target of a channel
 * (exit code 1 when a delivery fails), a sweep now, and another go at a dead letter.
 */
import { Option, type Command } from 'commander';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import * as repo from '../db/repos/notifications.ts';
import { nothingToTest } from '../notifications/notices.ts';
import { connectTemporal } from '../temporal/client.ts';
import { retryDelivery, sweepAndWait, testAndWait } from '../ra/notifications.ts';
import type { CliContext } from './context.ts';

const operator = () => `operator:${userInfo().username}`;

async function withTemporal<T>(fn: (client: Awaited<ReturnType<typeof connectTemporal>>['client']) => Promise<T>): Promise<T> {
  const temporal = await connectTemporal(loadConfig(), 5000);
  try {
    return await fn(temporal.client);
  } finally {
    await temporal.close();
  }
}

export function registerNotificationCommands(root: Command, cli: CliContext): void {
  const cmd = root
    .command('notifications')
    .description('notices by e-mail and webhook: expiring certificates, CAs and CRLs, stuck requests, audit verification failures');
  cmd
    .command('list')
    .description('deliveries, newest first: to whom, how it went, the dead letters (--status dead)')
    .addOption(new Option('--status <status>', 'only this status').choices(['pending', 'delivered', 'dead']))
    .addOption(new Option('--channel <channel>', 'only this channel').choices(['email', 'webhook']))
    .addOption(new Option('--limit <n>', 'at most n').default(50).argParser(Number))
    .action(async (opts: { status?: repo.DeliveryStatus; channel?: repo.Channel; limit: number }) => {
      const config = loadConfig();
      const n = config.notifications;
      if (!cli.json()) {
        cli.say(
          `channels: ${n.smtp ? `e-mail via ${new URL(n.smtp.url).host} to ${n.email.join(', ') || '(requesters only)'}` : 'no e-mail'}; ` +
            `${n.webhooks.length} webhook(s); every ${n.intervalMinutes} min; certificates at ${n.expiringDays.join('/')} days`,
        );
      }
      const rows = await cli.withPool((pool) => repo.listDeliveries(pool, opts));
      const view = rows.map((r) => ({
        id: r.id,
        notice: r.noticeId,
        type: r.type,
        channel: r.channel,
        target: r.target,
        status: r.status,
        attempts: r.attempts,
        updated: r.updatedAt,
        error: r.lastError,
        subject: r.subject,
      }));
      if (cli.json()) cli.printJson(view);
      else process.stdout.write(cli.table(view, ['id', 'type', 'channel', 'target', 'status', 'attempts', 'updated', 'error']));
    });
  cmd
    .command('test <channel>')
    .description('send one test notice through every configured target of a channel (email or webhook); exit code 1 if one fails')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the outcomes').default(120).argParser(Number))
    .action(async (channel: string, opts: { timeout: number }) => {
      if (channel !== 'email' && channel !== 'webhook')
        throw new CaError('malformed', `channel must be "email" or "webhook", not "${channel}"`);
      // Exit code 2 (configuration), not 1: nothing was tried.
      const none = nothingToTest(loadConfig().notifications, channel);
      if (none) throw new CaError('config', none, { rule: 'notifications.none' });
      const outcomes = await withTemporal((temporal) =>
        testAndWait({ temporal, config: loadConfig() }, { channel, requester: operator() }, opts.timeout * 1000),
      );
      if (cli.json()) cli.printJson(outcomes);
      else for (const o of outcomes) cli.say(`${o.status === 'delivered' ? 'ok    ' : 'FAILED'} ${o.channel} ${o.target}: ${o.detail}`);
      if (outcomes.some((o) => o.status !== 'delivered')) process.exitCode = 1;
    });
  cmd
    .command('sweep')
    .description('look now (as the schedule does every notifications.intervalMinutes): record new notices and deliver them')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the sweep').default(120).argParser(Number))
    .action(async (opts: { timeout: number }) => {
      const r = await withTemporal((temporal) => sweepAndWait({ temporal, config: loadConfig() }, opts.timeout * 1000));
      if (cli.json()) cli.printJson(r);
      else cli.say(`${r.created} new notice(s); ${r.started} deliver${r.started === 1 ? 'y' : 'ies'} started`);
    });
  cmd
    .command('retry <deliveryId>')
    .description('try a dead-lettered delivery again (after fixing the receiver or the mail settings)')
    .action(async (deliveryId: string) => {
      const config = loadConfig();
      const r = await withTemporal((temporal) => cli.withPool((pool) => retryDelivery({ temporal, pool, config }, deliveryId)));
      if (cli.json()) cli.printJson(r);
      else cli.say(`delivery ${deliveryId} is pending again (workflow ${r.workflowId})`);
    });
}
