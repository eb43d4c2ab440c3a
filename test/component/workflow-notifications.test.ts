/**
 * The notification workflows (workflows/notifications.ts) with mocked activities on the
 * time-skipping test server (test/helpers/time-skipping.ts): a delivery is retried with the
 * configured backoff (in skipped time) and dead-lettered after its last attempt; a refusal
 * is dead-lettered at once; a sweep starts one delivery per pending notice, never twice; the
 * test workflow makes at most two quick attempts. Sending mail and webhooks for real is the
 * integration tests' part (test/integration/notifications.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PERMANENT_FAILURE, type DeliveryOutcome, type SweepResult } from '../../activities/types.ts';
import { WORKFLOWS, type DeliveryRetry, type WorkflowOf } from '../../workflows/api.ts';
import { ActivityScript, timeSkippingSkip, workflowTestEnv, type WorkflowTestEnv } from '../helpers/time-skipping.ts';

describe('notification workflows with mocked activities, time skipping', { skip: timeSkippingSkip() }, () => {
  let wt: WorkflowTestEnv;
  const script = new ActivityScript(() => wt.now());
  const deadLettered: Array<{ deliveryId: string; error: string }> = [];
  let sweeps: SweepResult[] = [];
  const outcome = (deliveryId: string, status: DeliveryOutcome['status'], detail: string): DeliveryOutcome => ({
    deliveryId,
    channel: 'webhook',
    target: 'https://hooks.test/x',
    status,
    detail,
  });

  before(async () => {
    wt = await workflowTestEnv({
      main: {
        async collectNotices() {
          return sweeps.shift()!;
        },
        async deliverNotice(deliveryId: string) {
          await script.step('deliverNotice', deliveryId);
          return outcome(deliveryId, 'delivered', '200 OK');
        },
        async deadLetter(deliveryId: string, error: string) {
          deadLettered.push({ deliveryId, error });
          return outcome(deliveryId, 'dead', error);
        },
        async createTestNotice() {
          return { noticeId: 'n-test', deliveries: ['t1', 't2'], retry: { maxAttempts: 6, initialSeconds: 60, maxSeconds: 600 } };
        },
      },
      signing: {},
    });
  });
  after(async () => {
    script.release();
    await wt?.stop();
  });

  const deliver = (deliveryId: string, retry: DeliveryRetry) =>
    wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.notificationDelivery>>(WORKFLOWS.notificationDelivery.type, {
      workflowId: WORKFLOWS.notificationDelivery.id(deliveryId),
      taskQueue: wt.taskQueue,
      args: [{ deliveryId, retry }],
    });

  it('backoff: a delivery is retried 30, 60, 120 s apart (at most maxSeconds) until the receiver takes it', async () => {
    const id = `d-${randomBytes(3).toString('hex')}`;
    script.plan(id, ['fail:unavailable', 'fail:unavailable', 'fail:unavailable']);
    const r = await deliver(id, { maxAttempts: 5, initialSeconds: 30, maxSeconds: 100 });
    assert.equal(r.status, 'delivered');
    const tries = script.of('deliverNotice', id);
    assert.equal(tries.length, 4);
    [30_000, 60_000, 100_000].forEach((b, i) => {
      const gap = tries[i + 1]!.atMs - tries[i]!.atMs;
      assert.ok(gap >= b && gap < b + 1500, `retry ${i + 1} came ${gap} ms later`);
    });
    assert.ok(!deadLettered.some((d) => d.deliveryId === id));
  });

  it('retry exhausted: after maxAttempts the delivery is dead-lettered with the last error', async () => {
    const id = `d-${randomBytes(3).toString('hex')}`;
    script.plan(id, Array(5).fill('fail:unavailable'));
    const r = await deliver(id, { maxAttempts: 3, initialSeconds: 10, maxSeconds: 10 });
    assert.deepEqual([r.status, r.detail], ['dead', 'fake unavailable fault']);
    assert.equal(script.of('deliverNotice', id).length, 3);
    assert.deepEqual(
      deadLettered.filter((d) => d.deliveryId === id),
      [{ deliveryId: id, error: 'fake unavailable fault' }],
    );
  });

  it('a refusal by the receiver is dead-lettered at once, without a retry', async () => {
    const id = `d-${randomBytes(3).toString('hex')}`;
    script.plan(id, [`fail:${PERMANENT_FAILURE}`]);
    const r = await deliver(id, { maxAttempts: 5, initialSeconds: 10, maxSeconds: 10 });
    assert.equal(r.status, 'dead');
    assert.equal(script.of('deliverNotice', id).length, 1);
  });

  it('sweep: one delivery per pending notice; a sweep that runs again starts none twice', async () => {
    const ids = [`s-${randomBytes(3).toString('hex')}`, `s-${randomBytes(3).toString('hex')}`];
    const retry = { maxAttempts: 2, initialSeconds: 1, maxSeconds: 1 };
    sweeps = [
      { created: ['n1', 'n2'], pending: ids, retry },
      { created: [], pending: ids, retry },
    ];
    const sweep = () =>
      wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.notificationSweep>>(WORKFLOWS.notificationSweep.type, {
        workflowId: WORKFLOWS.notificationSweep.id(randomBytes(4).toString('hex')),
        taskQueue: wt.taskQueue,
        args: [],
      });
    assert.deepEqual(await sweep(), { created: 2, started: 2 });
    for (const id of ids) {
      const h = wt.client.workflow.getHandle<WorkflowOf<typeof WORKFLOWS.notificationDelivery>>(WORKFLOWS.notificationDelivery.id(id));
      assert.equal((await h.result()).status, 'delivered');
    }
    assert.deepEqual(await sweep(), { created: 0, started: 0 });
    for (const id of ids) assert.equal(script.of('deliverNotice', id).length, 1);
  });

  it('the test notice: at most two quick attempts per target, whatever the configuration says', async () => {
    script.plan('t1', Array(5).fill('fail:unavailable'));
    const r = await wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.notificationTest>>(WORKFLOWS.notificationTest.type, {
      workflowId: WORKFLOWS.notificationTest.id(randomBytes(4).toString('hex')),
      taskQueue: wt.taskQueue,
      args: [{ channel: 'webhook', requester: 'operator:alice' }],
    });
    assert.deepEqual(
      r.map((o) => [o.deliveryId, o.status]),
      [
        ['t1', 'dead'],
        ['t2', 'delivered'],
      ],
    );
    assert.equal(script.of('deliverNotice', 't1').length, 2);
  });
});
