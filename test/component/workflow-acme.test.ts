/**
 * acmeOrderWorkflow and acmeAuthzWorkflow with mocked activities on the time-skipping test
 * server (test/helpers/time-skipping.ts): expiry after days of workflow time, the
 * validation's retry backoff, the operator's retries, cancel, deactivation, and signing
 * stalled by a server fault. What the activities do against Postgres and real challenge
 * responders is the integration tests' part (test/integration/acme-*.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthzState, AuthzStatus, OrderStatus, Problem, ValidateAuthzInput, ValidationSettings } from '../../activities/acme-types.ts';
import type { IssueInput } from '../../activities/types.ts';
import {
  authzChangedSignal,
  cancelOrderUpdate,
  deactivateAuthzUpdate,
  finalizeUpdate,
  respondChallengeUpdate,
  retryUpdate,
  retryValidationUpdate,
  WORKFLOWS,
  type AuthzInput,
  type OrderInput,
  type WorkflowOf,
} from '../../workflows/api.ts';
import { eventually } from '../helpers/acme.ts';
import { ActivityScript, timeSkippingSkip, workflowTestEnv, type WorkflowTestEnv } from '../helpers/time-skipping.ts';

const DAY = 86_400_000;
const validation: ValidationSettings = {
  accountUri: 'https://ca.test/acme/acct/a1',
  caaIdentities: ['ca.test'],
  maxAttempts: 5,
  attemptTimeoutSeconds: 10,
  validLifetimeSeconds: 30 * 86_400,
};

describe('ACME workflows with mocked activities, time skipping', { skip: timeSkippingSkip() }, () => {
  let wt: WorkflowTestEnv;
  const script = new ActivityScript(() => wt.now());
  const orderProjections: Array<{ id: string; status: OrderStatus; error?: Problem; serial?: string; actor?: string }> = [];
  const authzProjections: Array<{ id: string; status: AuthzStatus }> = [];
  const failedValidations: Array<{ orderId?: string; authzId: string; error: Problem }> = [];
  /** deactivateAuthz's answer: the open orders that use the authorization. */
  const ordersUsing = new Map<string, string[]>();
  let issuedSerialAnswer: string | null = null;

  const attemptsOf = (activity: string, key: string) => script.of(activity, key);

  before(async () => {
    wt = await workflowTestEnv({
      main: {
        async validateAuthz(input: ValidateAuthzInput) {
          await script.step('validateAuthz', input.authzId);
          const now = new Date(await wt.now());
          return { validatedAt: now.toISOString(), expiresAt: new Date(+now + 30 * DAY).toISOString(), orderReady: false };
        },
        async failValidation(p: { orderId?: string; authzId: string; error: Problem }) {
          failedValidations.push(p);
        },
        async deactivateAuthz({ authzId }: { authzId: string }) {
          return { deactivated: true, orderIds: ordersUsing.get(authzId) ?? [] };
        },
        async projectOrder(p: (typeof orderProjections)[number]) {
          orderProjections.push(p);
        },
        async projectAuthz(p: { id: string; status: AuthzStatus }) {
          authzProjections.push(p);
        },
        async issuedSerial() {
          return issuedSerialAnswer;
        },
        async checkCaa() {},
      },
      signing: {
        async issueCertificate(input: IssueInput) {
          await script.step('issueCertificate', input.requestId);
          return { serial: `5e${input.requestId.length}`, caName: 'ca', certPem: '', chainPem: '', notBefore: '', notAfter: '' };
        },
      },
    });
  });
  after(async () => {
    script.release();
    await wt?.stop();
  });

  let seq = 0;
  const authz = (status: 'pending' | 'valid', validatedAt?: string): AuthzState => {
    const id = `z${++seq}`;
    return {
      id,
      identifier: { type: 'dns', value: `${id}.example.test` },
      wildcard: false,
      status,
      challenges: status === 'pending' ? [{ id: `${id}-http`, type: 'http-01', token: 'tok' }] : [],
      validatedAt,
    };
  };
  /** Starts an order with the given authorizations, expiring `expiresInMs` of server time from now. */
  async function startOrder(authzs: AuthzState[], expiresInMs = 7 * DAY) {
    const orderId = `o${++seq}`;
    const input: OrderInput = {
      orderId,
      accountId: 'a1',
      alias: '',
      identifiers: authzs.map((a) => a.identifier),
      status: authzs.every((a) => a.status === 'valid') ? 'ready' : 'pending',
      authzs,
      expiresAt: new Date((await wt.now()) + expiresInMs).toISOString(),
      profile: 'tls-server',
      validation,
      caaRecheckSeconds: 8 * 3600,
    };
    const handle = await wt.client.workflow.start<WorkflowOf<typeof WORKFLOWS.acmeOrder>>(WORKFLOWS.acmeOrder.type, {
      workflowId: WORKFLOWS.acmeOrder.id(orderId),
      taskQueue: wt.taskQueue,
      args: [input],
    });
    return { orderId, handle, expiresAt: input.expiresAt };
  }
  async function startAuthz(a: AuthzState, expiresInMs = 7 * DAY) {
    const input: AuthzInput = {
      authz: a as AuthzInput['authz'],
      accountId: 'a1',
      expiresAt: new Date((await wt.now()) + expiresInMs).toISOString(),
      validation,
    };
    return wt.client.workflow.start<WorkflowOf<typeof WORKFLOWS.acmeAuthz>>(WORKFLOWS.acmeAuthz.type, {
      workflowId: WORKFLOWS.acmeAuthz.id(a.id),
      taskQueue: wt.taskQueue,
      args: [input],
    });
  }
  const lastProjection = (orderId: string) => orderProjections.filter((p) => p.id === orderId).at(-1);
  const updateRefusal = (re: RegExp) => (e: Error) => re.test(String((e.cause as Error | undefined)?.message ?? e.message));

  describe('acmeOrderWorkflow', () => {
    it('expiry: an order nobody answers becomes invalid when it expires (7 days of workflow time); a ready one that is never finalized too', async () => {
      const pending = await startOrder([authz('pending')]);
      const ready = await startOrder([authz('valid', new Date(await wt.now()).toISOString())], 3 * DAY);
      assert.equal(await ready.handle.result(), 'invalid');
      assert.equal(await pending.handle.result(), 'invalid');
      // Times of the server (the workflows' clock): after a result, time skipping runs on until it is locked again.
      for (const order of [pending, ready]) {
        const closed = (await order.handle.describe()).closeTime!.getTime();
        const late = closed - Date.parse(order.expiresAt);
        assert.ok(late >= 0 && late < 60_000, `${order.orderId} ended ${late} ms after it expired`);
      }
      assert.match(lastProjection(pending.orderId)!.error!.detail, /expired before it was authorized/);
      assert.match(lastProjection(ready.orderId)!.error!.detail, /expired before it was finalized/);
      assert.equal(lastProjection(pending.orderId)!.status, 'invalid');
    });

    it('backoff: transient validation failures are retried 1, 2 and 4 s apart; then valid, ready, and finalize issues once', async () => {
      const a = authz('pending');
      script.plan(a.id, ['fail:connection', 'fail:connection', 'fail:connection', 'ok']);
      const { orderId, handle } = await startOrder([a]);
      const answer = handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] });
      // 10 s of server time: the backoffs pass, the order's expiry (7 days) does not.
      await script.called('validateAuthz', a.id);
      await wt.advance(10_000);
      const outcome = await answer;
      assert.equal(outcome.status, 'valid');
      const tries = attemptsOf('validateAuthz', a.id);
      assert.deepEqual(
        tries.map((t) => t.attempt),
        [1, 2, 3, 4],
      );
      const gaps = tries.slice(1).map((t, i) => t.atMs - tries[i]!.atMs);
      [1000, 2000, 4000].forEach((backoff, i) =>
        assert.ok(gaps[i]! >= backoff && gaps[i]! < backoff + 1500, `retry ${i + 1} came ${gaps[i]} ms after the attempt before`),
      );
      const done = await handle.executeUpdate(finalizeUpdate, { args: [{ csr: 'AA==' }] });
      assert.equal(done.status, 'valid');
      assert.equal(await handle.result(), 'valid');
      assert.equal(attemptsOf('issueCertificate', orderId).length, 1);
    });

    it('retry: validation that keeps failing transiently ends after maxAttempts with that problem; the order is invalid', async () => {
      const a = authz('pending');
      script.plan(a.id, Array(validation.maxAttempts + 2).fill('fail:connection'));
      const { orderId, handle } = await startOrder([a]);
      const outcome = await wt.skipping(() =>
        handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] }),
      );
      assert.equal(outcome.status, 'invalid');
      assert.equal(outcome.error?.type, 'urn:ietf:params:acme:error:connection');
      assert.equal(attemptsOf('validateAuthz', a.id).length, validation.maxAttempts);
      assert.equal(await handle.result(), 'invalid');
      const failed = failedValidations.find((f) => f.authzId === a.id)!;
      assert.equal(failed.orderId, orderId, 'challenge, authorization and order recorded invalid together');
    });

    it("retry: the operator's retryValidation cancels the backoff under way and validates afresh at once", async () => {
      const a = authz('pending');
      script.plan(a.id, Array(4).fill('fail:connection'));
      const { handle } = await startOrder([a]);
      const answer = handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] });
      // Four attempts (1, 2 and 4 s apart) in skipped time; then the retry policy waits 8 s, time locked.
      await script.called('validateAuthz', a.id);
      await wt.advance(7_500);
      await eventually('four failed attempts', 30_000, async () => (attemptsOf('validateAuthz', a.id).length >= 4 ? true : undefined));
      const before = attemptsOf('validateAuthz', a.id).at(-1)!;
      const r = await handle.executeUpdate(retryValidationUpdate, { args: [{}] });
      assert.deepEqual(r.retried, [a.id]);
      assert.equal((await answer).status, 'valid');
      const fresh = attemptsOf('validateAuthz', a.id).at(-1)!;
      assert.equal(fresh.attempt, 1, 'a new activity, not the retry policy’s fifth attempt');
      assert.ok(fresh.atMs - before.atMs < 8000, 'before the 8 s backoff was over');
      await assert.rejects(
        handle.executeUpdate(retryValidationUpdate, { args: [{}] }),
        updateRefusal(/no authorization is being validated/),
      );
      await handle.executeUpdate(cancelOrderUpdate, { args: [{ by: 'operator:test' }] });
    });

    it('cancel: an open order becomes invalid, audited with who canceled it; nothing was validated', async () => {
      const a = authz('pending');
      const { orderId, handle } = await startOrder([a]);
      const r = await handle.executeUpdate(cancelOrderUpdate, { args: [{ by: 'operator:alice', reason: 'asked by the customer' }] });
      assert.equal(r.status, 'invalid');
      assert.equal(await handle.result(), 'invalid');
      const p = lastProjection(orderId)!;
      assert.equal(p.actor, 'operator:alice');
      assert.equal(p.error?.detail, 'canceled by operator:alice: asked by the customer');
      assert.equal(attemptsOf('validateAuthz', a.id).length, 0);
    });

    it('deactivation: an authorization deactivated elsewhere (signal) makes the open order invalid (unauthorized)', async () => {
      const a = authz('pending');
      const { orderId, handle } = await startOrder([a, authz('valid', new Date().toISOString())]);
      await handle.signal(authzChangedSignal, { authzId: a.id, status: 'deactivated' });
      assert.equal(await handle.result(), 'invalid');
      const p = lastProjection(orderId)!;
      assert.equal(p.error?.type, 'urn:ietf:params:acme:error:unauthorized');
      assert.match(p.error!.detail, new RegExp(`the authorization for ${a.identifier.value} was deactivated`));
    });

    it('stall and retry: signing held up by a server fault is processing, cannot be canceled, and the retry Update signs again at once', async () => {
      const { orderId, handle } = await startOrder([authz('valid', new Date(await wt.now()).toISOString())]);
      script.plan(orderId, Array(4).fill('fail:unavailable'));
      const finalized = handle.executeUpdate(finalizeUpdate, { args: [{ csr: 'AA==' }] });
      // Four attempts (1, 2 and 4 s apart) in skipped time; then the retry policy waits 8 s, time locked.
      await script.called('issueCertificate', orderId);
      await wt.advance(7_500);
      await eventually('four failed signing attempts', 30_000, async () =>
        attemptsOf('issueCertificate', orderId).length >= 4 ? true : undefined,
      );
      await assert.rejects(
        handle.executeUpdate(cancelOrderUpdate, { args: [{ by: 'operator:x' }] }),
        updateRefusal(/the order is processing; it can no longer be canceled/),
      );
      const before = attemptsOf('issueCertificate', orderId).at(-1)!;
      assert.deepEqual(await handle.executeUpdate(retryUpdate, { args: [{ by: 'operator:x' }] }), { state: 'signing' });
      assert.equal((await finalized).status, 'valid');
      const fresh = attemptsOf('issueCertificate', orderId).at(-1)!;
      assert.equal(fresh.attempt, 1, 'a new activity, not the retry policy’s fifth attempt');
      assert.ok(fresh.atMs - before.atMs < 8000, 'before the 8 s backoff was over');
      assert.equal(await handle.result(), 'valid');
      await assert.rejects(handle.executeUpdate(retryUpdate, { args: [{ by: 'operator:x' }] }));
    });

    it('stall: a server fault that outlasts the signing budget (5 minutes) makes the order invalid with serverInternal', async () => {
      const { orderId, handle } = await startOrder([authz('valid', new Date(await wt.now()).toISOString())]);
      script.plan(orderId, Array(100).fill('fail:unavailable'));
      const r = await wt.skipping(() => handle.executeUpdate(finalizeUpdate, { args: [{ csr: 'AA==' }] }));
      assert.equal(r.status, 'invalid');
      assert.equal(r.error?.type, 'urn:ietf:params:acme:error:serverInternal');
      assert.match(r.error!.detail, /the certificate could not be issued/);
      // Retried with backoff (1 s doubling to 1 minute) until the schedule-to-close timeout.
      const tries = attemptsOf('issueCertificate', orderId);
      const span = tries.at(-1)!.atMs - tries[0]!.atMs;
      assert.ok(span >= 180_000 && span <= 300_000, `attempts over ${span / 1000} s of workflow time`);
      assert.ok(tries.length >= 8 && tries.length <= 11, `${tries.length} attempts`);
      assert.equal(lastProjection(orderId)!.status, 'invalid');
    });

    it('stall: if the certificate was stored before the fault, the order is valid with it', async () => {
      const { orderId, handle } = await startOrder([authz('valid', new Date(await wt.now()).toISOString())]);
      script.plan(orderId, Array(100).fill('fail:unavailable'));
      issuedSerialAnswer = '7777';
      try {
        const r = await wt.skipping(() => handle.executeUpdate(finalizeUpdate, { args: [{ csr: 'AA==' }] }));
        assert.deepEqual(r, { status: 'valid', serial: '7777' });
        assert.deepEqual(lastProjection(orderId), { id: orderId, status: 'valid', serial: '7777' });
      } finally {
        issuedSerialAnswer = null;
      }
    });
  });

  describe('acmeAuthzWorkflow', () => {
    it('expiry: a pre-authorization nobody answers expires at its time and is projected expired', async () => {
      const a = authz('pending');
      const handle = await startAuthz(a, 2 * DAY);
      assert.equal(await handle.result(), 'expired');
      const d = await handle.describe();
      const days = (d.closeTime!.getTime() - d.startTime.getTime()) / DAY;
      assert.ok(days >= 2 && days < 2.01, `expired ${days} days after it started`);
      assert.deepEqual(
        authzProjections.filter((p) => p.id === a.id),
        [{ id: a.id, status: 'expired' }],
      );
    });

    it('deactivation: the client deactivates a valid authorization; the open orders using it become invalid', async () => {
      const a = authz('valid', new Date().toISOString());
      const order = await startOrder([a, authz('pending')]);
      ordersUsing.set(a.id, [order.orderId, 'an-order-that-has-ended']);
      const handle = await startAuthz(a);
      assert.deepEqual(await handle.executeUpdate(deactivateAuthzUpdate, { args: [] }), { status: 'deactivated' });
      assert.equal(await handle.result(), 'deactivated');
      assert.equal(await order.handle.result(), 'invalid');
      assert.match(lastProjection(order.orderId)!.error!.detail, /was deactivated/);
    });

    it('deactivation is refused while a challenge is being validated', async () => {
      const a = authz('pending');
      script.plan(a.id, ['hold']);
      const handle = await startAuthz(a);
      const answer = handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] });
      await eventually('validation under way', 30_000, async () => (attemptsOf('validateAuthz', a.id).length ? true : undefined));
      await assert.rejects(handle.executeUpdate(deactivateAuthzUpdate, { args: [] }), updateRefusal(/being validated/));
      script.release(a.id);
      assert.equal((await answer).status, 'valid');
      assert.equal(await handle.result(), 'valid');
    });

    it("backoff and retry: transient failures are retried with backoff; the operator's retryValidation validates afresh at once", async () => {
      const a = authz('pending');
      script.plan(a.id, Array(4).fill('fail:dns'));
      const handle = await startAuthz(a);
      await assert.rejects(handle.executeUpdate(retryValidationUpdate, { args: [{}] }), updateRefusal(/is pending, not being validated/));
      const answer = handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] });
      await script.called('validateAuthz', a.id);
      await wt.advance(7_500);
      await eventually('four failed attempts', 30_000, async () => (attemptsOf('validateAuthz', a.id).length >= 4 ? true : undefined));
      const tries = attemptsOf('validateAuthz', a.id);
      [1000, 2000, 4000].forEach((b, i) => {
        const gap = tries[i + 1]!.atMs - tries[i]!.atMs;
        assert.ok(gap >= b && gap < b + 1500, `retry ${i + 1} came ${gap} ms later`);
      });
      assert.deepEqual(await handle.executeUpdate(retryValidationUpdate, { args: [{}] }), { retried: [a.id] });
      assert.equal((await answer).status, 'valid');
      assert.equal(attemptsOf('validateAuthz', a.id).at(-1)!.attempt, 1, 'a new activity, not the fifth attempt');
      assert.equal(await handle.result(), 'valid');
    });

    it('a wrong answer is final at once (no retry): invalid, recorded with the problem', async () => {
      const a = authz('pending');
      script.plan(a.id, ['final:incorrectResponse']);
      const handle = await startAuthz(a);
      const outcome = await handle.executeUpdate(respondChallengeUpdate, { args: [{ authzId: a.id, challengeId: a.challenges[0]!.id }] });
      assert.equal(outcome.status, 'invalid');
      assert.equal(outcome.error?.type, 'urn:ietf:params:acme:error:incorrectResponse');
      assert.equal(attemptsOf('validateAuthz', a.id).length, 1);
      assert.equal(await handle.result(), 'invalid');
      assert.equal(failedValidations.find((f) => f.authzId === a.id)?.error.type, 'urn:ietf:params:acme:error:incorrectResponse');
    });
  });
});
