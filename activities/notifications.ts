/**
 * Notification activities (main task queue; no CA key involved): the sweep finds what is
 * worth telling and records it once (src/notifications/sources.ts), a delivery sends one
 * notice to one target and records the attempt, the last failed attempt dead-letters it.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { certflowVersion } from '../src/admin/version.ts';
import type { Config } from '../src/config/index.ts';
import { errorMessage } from '../src/core/errors.ts';
import { newId } from '../src/core/ids.ts';
import type { Logger } from '../src/core/logger.ts';
import * as repo from '../src/db/repos/notifications.ts';
import { PermanentFailure, postWebhook, sendEmail } from '../src/notifications/channels.ts';
import { nothingToTest, testNotice } from '../src/notifications/notices.ts';
import { dueNotices, notificationsConfigured } from '../src/notifications/sources.ts';
import { heartbeatWhileRunning } from './heartbeat.ts';
import { PERMANENT_FAILURE, type DeliveryOutcome, type NotificationActivities } from './types.ts';

export function createNotificationActivities(deps: { config: Config; pool: Pool; log: Logger }): NotificationActivities {
  const { config, pool, log } = deps;
  const retry = config.notifications.retry;
  const userAgent = `certflow/${certflowVersion()}`;
  return {
    async collectNotices() {
      const created = notificationsConfigured(config) ? await repo.recordNotices(pool, await dueNotices({ config, pool })) : [];
      if (created.length) log.info({ notices: created }, 'new notices');
      return { created, pending: await repo.pendingDeliveryIds(pool, 200), retry };
    },

    async deliverNotice(deliveryId) {
      const found = await repo.getDelivery(pool, deliveryId);
      if (!found) throw ApplicationFailure.nonRetryable(`no notification delivery ${deliveryId}`, PERMANENT_FAILURE);
      const { delivery: d, notice } = found;
      const outcome = (status: DeliveryOutcome['status'], detail: string): DeliveryOutcome => ({
        deliveryId,
        channel: d.channel,
        target: d.target,
        status,
        detail,
      });
      // Delivered once (a retried attempt after a crash that had recorded it): never again.
      if (d.status === 'delivered') return outcome('delivered', 'delivered earlier');
      if (d.status === 'dead') return outcome('dead', d.lastError ?? 'dead-lettered');
      const stop = heartbeatWhileRunning();
      try {
        let detail: string;
        if (d.channel === 'webhook') {
          const hook = config.notifications.webhooks.find((w) => w.url === d.target);
          if (!hook) throw new PermanentFailure(`the webhook ${d.target} is no longer configured`);
          detail = await postWebhook(hook.url, hook.secret, notice, deliveryId, userAgent);
        } else {
          if (!config.notifications.smtp) throw new PermanentFailure('no mail server is configured (notifications.smtp)');
          detail = await sendEmail(config.notifications.smtp, d.target, notice, deliveryId);
        }
        await repo.recordAttempt(pool, deliveryId, { ok: true, detail });
        log.info({ notice: notice.id, channel: d.channel, target: d.target, detail }, 'notification delivered');
        return outcome('delivered', detail);
      } catch (e) {
        const detail = errorMessage(e);
        await repo
          .recordAttempt(pool, deliveryId, { ok: false, detail })
          .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'attempt not recorded'));
        log.warn({ notice: notice.id, channel: d.channel, target: d.target, err: detail }, 'notification attempt failed');
        if (e instanceof PermanentFailure) throw ApplicationFailure.nonRetryable(detail, PERMANENT_FAILURE);
        throw ApplicationFailure.retryable(detail, 'NotificationFailed');
      } finally {
        stop();
      }
    },

    async deadLetter(deliveryId, error) {
      await repo.markDead(pool, deliveryId, error);
      const found = await repo.getDelivery(pool, deliveryId);
      log.warn({ deliveryId, err: error }, 'notification dead-lettered after its last attempt');
      return {
        deliveryId,
        channel: found?.delivery.channel ?? 'webhook',
        target: found?.delivery.target ?? '',
        status: 'dead',
        detail: error,
      };
    },

    async createTestNotice(input) {
      const notice = testNotice(config.notifications, input.channel, newId(), input.requester, new Date());
      const none = nothingToTest(config.notifications, input.channel);
      if (none) throw ApplicationFailure.nonRetryable(none, 'config', { rule: 'notifications.none' });
      await repo.recordNotices(pool, [notice]);
      return { noticeId: notice.id, deliveries: notice.deliveries.map((x) => repo.deliveryId(notice.id, x.channel, x.target)), retry };
    },
  };
}
