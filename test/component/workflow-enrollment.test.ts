/**
 * The enrollment workflow and the error contract (issue 11, item 2), with mocked activities
 * on the time-skipping test server (test/helpers/time-skipping.ts): a server fault (config,
 * unavailable, internal) never fails the workflow: the request is `stalled` (projected, with
 * its error) until the operator's `retry` Update or the backoff timer (30 s doubling, in
 * skipped time); requester mistakes end it as `failed`; an approval nobody gives expires;
 * an abandoned serverkeygen request ends `abandoned` and the certificate signed meanwhile
 * is revoked. CERTFLOW_RECORD_HISTORIES=1 writes histories for the replay tests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { IssuedCertificate, RequestProjection, StatusChangeInput } from '../../activities/types.ts';
import { REQUEST_ENDING_KINDS, SERVER_FAULT_KINDS } from '../../src/core/errors.ts';
import {
  abandonUpdate,
  decideUpdate,
  retryUpdate,
  WORKFLOWS,
  type EnrollmentInput,
  type EnrollmentResult,
  type WorkflowOf,
} from '../../workflows/api.ts';
import { REQUESTER_ERROR_TYPES } from '../../workflows/options.ts';
import { eventually } from '../helpers/acme.ts';
import { ActivityScript, timeSkippingSkip, workflowTestEnv, type Step, type WorkflowTestEnv } from '../helpers/time-skipping.ts';

const DAY = 86_400_000;
/** The signing activity's own retry policy: 4 attempts, 1 + 2 + 4 s apart. */
const fourTimes = (kind: string): Step[] => Array(4).fill(`fail:${kind}`);

describe('enrollment workflow: server faults keep the request, requester mistakes end it', { skip: timeSkippingSkip() }, () => {
  let wt: WorkflowTestEnv;
  const script = new ActivityScript(() => wt.now());
  const projections: RequestProjection[] = [];
  const revoked: StatusChangeInput[] = [];

  const cert = (requestId: string): IssuedCertificate => ({
    serial: `5e${Buffer.from(requestId).toString('hex').slice(0, 16)}`,
    caName: 'test-ca',
    certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
    chainPem: '',
    notBefore: new Date().toISOString(),
    notAfter: new Date(Date.now() + DAY).toISOString(),
  });

  before(async () => {
    wt = await workflowTestEnv({
      main: { projectRequest: async (p: RequestProjection) => void projections.push(p) },
      signing: {
        async issueCertificate(input: { requestId: string }) {
          await script.step('issueCertificate', input.requestId);
          return cert(input.requestId);
        },
        async changeCertificateStatus(input: StatusChangeInput) {
          revoked.push(input);
          return {
            serial: input.serial,
            status: 'revoked',
            reason: input.reason ?? null,
            revokedAt: new Date().toISOString(),
            caName: 'test-ca',
            crlNumber: '2',
          };
        },
      },
    });
  });
  after(async () => {
    script.release();
    await wt?.stop();
  });

  function start(requestId: string, extra: Partial<EnrollmentInput> = {}) {
    return wt.client.workflow.start<WorkflowOf<typeof WORKFLOWS.enrollment>>(WORKFLOWS.enrollment.type, {
      workflowId: WORKFLOWS.enrollment.id('est', requestId),
      taskQueue: wt.taskQueue,
      args: [
        {
          requestId,
          protocol: 'est',
          csr: 'AA==',
          profile: 'device',
          faultRetrySeconds: { initial: 3600, max: 3600 },
          ...extra,
        } satisfies EnrollmentInput,
      ],
    });
  }

  const stateOf = (requestId: string) => projections.filter((p) => p.id === requestId).at(-1);
  const signings = (requestId: string) => script.of('issueCertificate', requestId);
  const updateRefusal = (re: RegExp) => (e: Error) => re.test(String((e.cause as Error | undefined)?.message ?? e.message));

  async function record(handle: WorkflowHandle, name: string): Promise<void> {
    if (!process.env.CERTFLOW_RECORD_HISTORIES) return;
    const file = fileURLToPath(new URL(`../replay/histories/${name}.json`, import.meta.url));
    await writeFile(file, historyToJSON(await handle.fetchHistory()) + '\n');
  }

  it('the contract: requester kinds end a request, server kinds never do; workflows use the same list', () => {
    assert.deepEqual([...REQUESTER_ERROR_TYPES].sort(), [...REQUEST_ENDING_KINDS].sort());
    assert.ok(REQUEST_ENDING_KINDS.includes('unauthorized') && REQUEST_ENDING_KINDS.includes('forbidden'));
    assert.deepEqual([...SERVER_FAULT_KINDS].sort(), ['config', 'internal', 'unavailable']);
  });

  for (const kind of ['config', 'unavailable', 'internal']) {
    it(`stall and retry: a ${kind} fault stalls the request (projected with its error) until the retry Update, then issued`, async () => {
      const id = `stall-${kind}-${randomBytes(3).toString('hex')}`;
      // 4 attempts inside the activity (its retry policy), then the workflow stalls for an hour.
      script.plan(id, fourTimes(kind));
      const handle = await start(id);
      await script.called('issueCertificate', id);
      await wt.advance(10_000);
      const stalled = await eventually('stalled', 30_000, async () => (stateOf(id)?.state === 'stalled' ? stateOf(id) : undefined));
      assert.match(stalled.error!, new RegExp(`${kind}: fake ${kind} fault`));
      assert.equal(signings(id).length, 4);
      const described = await handle.describe();
      assert.equal(described.status.name, 'RUNNING');
      const r = await handle.executeUpdate(retryUpdate, { args: [{ by: 'operator:test' }] });
      assert.equal(r.state, 'signing');
      const result = (await handle.result()) as EnrollmentResult;
      assert.equal(result.status, 'issued');
      assert.equal(stateOf(id)?.state, 'issued');
      const retried = signings(id)[4]!;
      assert.ok(retried.atMs - signings(id)[3]!.atMs < 3_600_000, 'signed again on the Update, not after the hour');
      if (kind === 'config') await record(handle, 'enrollment-stalled-config-operator-retry');
    });
  }

  it('the retry Update is refused unless the request is stalled', async () => {
    const id = `noretry-${randomBytes(3).toString('hex')}`;
    script.plan(id, ['hold']);
    const handle = await start(id);
    await eventually('signing', 30_000, async () => (stateOf(id)?.state === 'signing' ? true : undefined));
    await assert.rejects(handle.executeUpdate(retryUpdate, { args: [{ by: 'x' }] }), updateRefusal(/is signing, not stalled/));
    script.release(id);
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'issued');
  });

  it('backoff: a stalled request is signed again by itself after 30 s, then 60 s, then at most `max`', async () => {
    const id = `timer-${randomBytes(3).toString('hex')}`;
    script.plan(id, [...fourTimes('unavailable'), ...fourTimes('unavailable'), ...fourTimes('unavailable')]);
    const handle = await start(id, { faultRetrySeconds: { initial: 30, max: 60 } });
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'issued');
    assert.equal(projections.filter((p) => p.id === id && p.state === 'stalled').length, 3);
    // From the last attempt of one signing activity to the first of the next: the stall's backoff.
    const tries = signings(id);
    assert.equal(tries.length, 13);
    const waits = [4, 8, 12].map((i) => Math.round((tries[i]!.atMs - tries[i - 1]!.atMs) / 1000));
    waits.forEach((w, i) => assert.ok(w >= [30, 60, 60][i]! && w <= [30, 60, 60][i]! + 3, `stall ${i + 1} lasted ${w} s`));
  });

  it('a requester mistake ends the request as failed, with the kind, without a retry', async () => {
    const id = `policy-${randomBytes(3).toString('hex')}`;
    script.plan(id, ['final:forbidden']);
    const result = (await (await start(id)).result()) as EnrollmentResult;
    assert.deepEqual(result, { status: 'rejected', kind: 'forbidden', message: 'fake forbidden fault' });
    assert.equal(stateOf(id)?.state, 'failed');
    assert.equal(signings(id).length, 1);
  });

  it('expiry: an approval nobody gives is rejected by timeout after the approval period (2 days of workflow time)', async () => {
    const id = `approval-${randomBytes(3).toString('hex')}`;
    const handle = await start(id, { requireApproval: true, approvalTimeout: '2 days' });
    const result = (await handle.result()) as EnrollmentResult;
    assert.deepEqual(result, {
      status: 'rejected',
      kind: 'forbidden',
      message: 'rejected by timeout: no decision within the approval period',
    });
    const d = await handle.describe();
    const days = (d.closeTime!.getTime() - d.startTime.getTime()) / DAY;
    assert.ok(days >= 2 && days < 2.01, `rejected ${days} days after the request`);
    assert.deepEqual(
      projections.filter((p) => p.id === id).map((p) => [p.state, p.decidedBy]),
      [
        ['awaiting-approval', undefined],
        ['rejected', 'timeout'],
      ],
    );
    assert.equal(signings(id).length, 0);
  });

  it('an approval: only a waiting request takes a decision; approved, it is signed', async () => {
    const id = `approve-${randomBytes(3).toString('hex')}`;
    const handle = await start(id, { requireApproval: true });
    await eventually('awaiting approval', 30_000, async () => (stateOf(id)?.state === 'awaiting-approval' ? true : undefined));
    assert.deepEqual(await handle.executeUpdate(decideUpdate, { args: [{ approve: true, by: 'alice' }] }), { state: 'signing' });
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'issued');
    assert.equal(stateOf(id)?.decidedBy, 'alice');
    script.plan(`${id}-b`, ['hold']);
    const other = await start(`${id}-b`);
    await eventually('signing', 30_000, async () => (stateOf(`${id}-b`)?.state === 'signing' ? true : undefined));
    await assert.rejects(
      other.executeUpdate(decideUpdate, { args: [{ approve: true, by: 'alice' }] }),
      updateRefusal(/is signing, not awaiting approval/),
    );
    script.release(`${id}-b`);
    await other.result();
  });

  it('cancel (abandoned while signing): ends abandoned and revokes the certificate signed meanwhile', async () => {
    const id = `abandon-${randomBytes(3).toString('hex')}`;
    script.plan(id, ['hold']);
    const handle = await start(id, { kind: 'serverkeygen' });
    await eventually('signing', 30_000, async () => (stateOf(id)?.state === 'signing' ? true : undefined));
    await handle.executeUpdate(abandonUpdate, { args: [{ reason: 'the key was not handed out in time' }] });
    script.release(id);
    const result = (await handle.result()) as EnrollmentResult;
    assert.equal(result.status, 'rejected');
    assert.equal(stateOf(id)?.state, 'abandoned');
    assert.deepEqual(
      revoked.filter((r) => r.serial === cert(id).serial).map((r) => [r.action, r.reason]),
      [['revoke', 'cessationOfOperation']],
    );
    await record(handle, 'enrollment-serverkeygen-abandoned');
  });

  it('cancel (abandoned while stalled): ends at once, nothing to revoke; refused once it has ended', async () => {
    const id = `abandon2-${randomBytes(3).toString('hex')}`;
    script.plan(id, fourTimes('unavailable'));
    const handle = await start(id);
    await script.called('issueCertificate', id);
    await wt.advance(10_000);
    await eventually('stalled', 30_000, async () => (stateOf(id)?.state === 'stalled' ? true : undefined));
    await handle.executeUpdate(abandonUpdate, { args: [{ reason: 'gave up' }] });
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'rejected');
    assert.equal(stateOf(id)?.state, 'abandoned');
    assert.ok(!revoked.some((r) => r.serial === cert(id).serial));
    await assert.rejects(handle.executeUpdate(abandonUpdate, { args: [{ reason: 'again' }] }));
  });
});
