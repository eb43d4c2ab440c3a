/**
 * cmpWorkflow and the revocation, CRL, audit checkpoint and key recovery workflows with
 * mocked activities on the time-skipping test server (test/helpers/time-skipping.ts): the
 * confirmation period's expiry (and its restart on delivery), approvals that expire,
 * signing stalled and retried with backoff, the signing activities' retry policies. What
 * the activities do against Postgres, the CA keys and real clients is the integration and
 * security tests' part (test/integration/cmp.test.ts, test/security/*).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import type { CheckpointInput, RefreshInput, RefreshResult, RequestProjection, StatusChangeInput } from '../../activities/types.ts';
import {
  certConfUpdate,
  certDeliveredUpdate,
  cmpRequestUpdate,
  retryUpdate,
  WORKFLOWS,
  type CmpInput,
  type CmpOutcome,
  type KeyRecoveryInput,
  type WorkflowOf,
} from '../../workflows/api.ts';
import { eventually } from '../helpers/acme.ts';
import { ActivityScript, timeSkippingSkip, workflowTestEnv, type Step, type WorkflowTestEnv } from '../helpers/time-skipping.ts';

const MINUTE = 60_000;
const fourTimes = (kind: string): Step[] => Array(4).fill(`fail:${kind}`);

describe('CMP and revocation workflows with mocked activities, time skipping', { skip: timeSkippingSkip() }, () => {
  let wt: WorkflowTestEnv;
  const script = new ActivityScript(() => wt.now());
  const projections: Array<RequestProjection & { atMs: number }> = [];
  const statusChanges: StatusChangeInput[] = [];
  /** refreshRevocationData's answers: whether more is due after each round. */
  let refreshMore: boolean[] = [];

  before(async () => {
    wt = await workflowTestEnv({
      main: { projectRequest: async (p: RequestProjection) => void projections.push({ ...p, atMs: await wt.now() }) },
      signing: {
        async issueCertificate(input: { requestId: string }) {
          await script.step('issueCertificate', input.requestId);
          return { serial: `5e${input.requestId.slice(-6)}`, caName: 'ca', certPem: '', chainPem: '', notBefore: '', notAfter: '' };
        },
        async changeCertificateStatus(input: StatusChangeInput) {
          await script.step('changeCertificateStatus', input.serial);
          statusChanges.push(input);
          return { serial: input.serial, status: 'revoked', reason: input.reason ?? null, revokedAt: '', caName: 'ca', crlNumber: '7' };
        },
        async refreshRevocationData(input: RefreshInput): Promise<RefreshResult> {
          await script.step('refreshRevocationData', input.requester ?? 'round');
          return { crls: [{ caName: 'ca', crlNumber: '1', entries: 0 }], ocspSigned: 10, more: refreshMore.shift() ?? false };
        },
        async signAuditCheckpoint(input: CheckpointInput) {
          await script.step('signAuditCheckpoint', input.requester ?? 'system');
          return { seq: 42, hash: 'h', keyId: 'k', created: true, expired: 0 };
        },
        async recoverKeyForRecipient(input: KeyRecoveryInput) {
          await script.step('recoverKeyForRecipient', input.serial);
          return { serial: input.serial, requestId: 'r', wrappedKey: 'w', iv: 'i', ciphertext: 'c', tag: 't' };
        },
      },
    });
  });
  after(async () => {
    script.release();
    await wt?.stop();
  });

  /** Starts a transaction; `plan`: its signing activity's steps. */
  async function startCmp(extra: Partial<CmpInput> = {}, plan?: Step[]) {
    const tid = randomBytes(8).toString('hex');
    const input: CmpInput = {
      requestId: WORKFLOWS.cmp.id(tid),
      transactionId: tid,
      alias: 'ra',
      bodyType: 'ir',
      request: 'AA==',
      requestFormat: 'crmf',
      requestHash: 'ab',
      profile: 'device',
      requester: 'ref:client1',
      revokeReplaced: false,
      requireApproval: false,
      implicitConfirm: false,
      confirmTimeout: '5 minutes',
      ...extra,
    };
    if (plan) script.plan(input.requestId, plan);
    const handle = await wt.client.workflow.start<WorkflowOf<typeof WORKFLOWS.cmp>>(WORKFLOWS.cmp.type, {
      workflowId: input.requestId,
      taskQueue: wt.taskQueue,
      args: [input],
    });
    return { id: input.requestId, handle };
  }
  const stateOf = (id: string) => projections.filter((p) => p.id === id).at(-1);
  const waitFor = (id: string, state: string) =>
    eventually(state, 30_000, async () => (stateOf(id)?.state === state ? stateOf(id) : undefined));
  const revocationsOf = (serial: string) => statusChanges.filter((c) => c.serial === serial).map((c) => [c.action, c.reason]);
  const updateRefusal = (re: RegExp) => (e: Error) => re.test(String((e.cause as Error | undefined)?.message ?? e.message));

  describe('cmpWorkflow', () => {
    it('expiry: a certificate not confirmed within confirmTimeout is revoked; a delivery on pollReq restarts the period', async () => {
      const { id, handle } = await startCmp();
      const issued = await waitFor(id, 'issued');
      // 4 of the 5 minutes pass, then the certificate is handed out again: 5 more minutes from there.
      await wt.advance(4 * MINUTE);
      assert.deepEqual(await handle.executeUpdate(certDeliveredUpdate, { args: [] }), { state: 'issued' });
      const delivered = await wt.now();
      const outcome = (await handle.result()) as CmpOutcome;
      assert.equal(outcome.status, 'issued');
      const revoked = stateOf(id)!;
      assert.equal(revoked.state, 'revoked');
      assert.match(revoked.error!, /not confirmed within 5 minutes; revoked/);
      const after = revoked.atMs - delivered;
      assert.ok(after >= 5 * MINUTE && after < 6 * MINUTE, `revoked ${after / 1000} s after the delivery`);
      assert.ok(revoked.atMs - issued.atMs >= 9 * MINUTE);
      assert.deepEqual(revocationsOf(issued.serial!), [['revoke', 'cessationOfOperation']]);
    });

    it('certConf: accepted, the transaction is confirmed and a kur revokes the certificate it replaces (superseded)', async () => {
      const { id, handle } = await startCmp({ bodyType: 'kur', replaces: 'old01', revokeReplaced: true });
      assert.equal((await handle.executeUpdate(cmpRequestUpdate, { args: [] })).status, 'issued');
      assert.deepEqual(await handle.executeUpdate(certConfUpdate, { args: [{ accepted: true }] }), { state: 'confirmed' });
      assert.equal(((await handle.result()) as CmpOutcome).status, 'issued');
      assert.equal(stateOf(id)?.state, 'confirmed');
      assert.deepEqual(revocationsOf('old01'), [['revoke', 'superseded']]);
      await assert.rejects(handle.executeUpdate(certConfUpdate, { args: [{ accepted: true }] }));
    });

    it('certConf rejecting the certificate: revoked at once, with the reason', async () => {
      const { id, handle } = await startCmp();
      const issued = await waitFor(id, 'issued');
      assert.deepEqual(await handle.executeUpdate(certConfUpdate, { args: [{ accepted: false, reason: 'certHash mismatch' }] }), {
        state: 'revoked',
      });
      await handle.result();
      assert.match(stateOf(id)!.error!, /rejected by the client: certHash mismatch/);
      assert.deepEqual(revocationsOf(issued.serial!), [['revoke', 'cessationOfOperation']]);
    });

    it('stall, backoff and retry: a server fault answers "waiting", signing is retried after 30 s, then on the retry Update', async () => {
      const { id, handle } = await startCmp({ implicitConfirm: true }, [...fourTimes('unavailable'), ...fourTimes('unavailable')]);
      await script.called('issueCertificate', id);
      await wt.advance(10_000);
      await waitFor(id, 'stalled');
      const answer = await handle.executeUpdate(cmpRequestUpdate, { args: [] });
      assert.equal(answer.status, 'waiting');
      await assert.rejects(handle.executeUpdate(certConfUpdate, { args: [{ accepted: true }] }), updateRefusal(/not waiting for certConf/));
      // The 30 s backoff passes (and the second signing activity's 1 + 2 + 4 s): stalled again, now for 60 s.
      await wt.advance(31_000);
      await script.called('issueCertificate', id, 5);
      await wt.advance(10_000);
      await eventually('stalled twice', 30_000, async () =>
        projections.filter((p) => p.id === id && p.state === 'stalled').length === 2 ? true : undefined,
      );
      const tries = script.of('issueCertificate', id);
      assert.equal(tries.length, 8);
      const backoff = tries[4]!.atMs - tries[3]!.atMs;
      assert.ok(backoff >= 30_000 && backoff < 33_000, `signed again ${backoff / 1000} s after the stall`);
      assert.deepEqual(await handle.executeUpdate(retryUpdate, { args: [{ by: 'operator:bob' }] }), { state: 'signing' });
      const outcome = (await handle.result()) as CmpOutcome;
      assert.equal(outcome.status, 'issued');
      assert.equal(stateOf(id)?.state, 'confirmed');
      assert.ok(tries.length === 8 && script.of('issueCertificate', id).length === 9);
      assert.ok(script.of('issueCertificate', id)[8]!.atMs - tries[7]!.atMs < 60_000, 'on the Update, before the 60 s backoff');
    });

    it('expiry: an approval nobody gives within approvalTimeout ends the transaction rejected', async () => {
      const { id, handle } = await startCmp({ requireApproval: true, approvalTimeout: '3 days' });
      assert.equal((await handle.executeUpdate(cmpRequestUpdate, { args: [] })).status, 'waiting');
      const outcome = (await handle.result()) as CmpOutcome;
      assert.deepEqual(outcome, {
        status: 'rejected',
        kind: 'forbidden',
        message: 'rejected by timeout: no decision within the approval period',
      });
      const d = await handle.describe();
      const days = (d.closeTime!.getTime() - d.startTime.getTime()) / 86_400_000;
      assert.ok(days >= 3 && days < 3.01, `rejected after ${days} days`);
      assert.equal(stateOf(id)?.decidedBy, 'timeout');
      assert.equal(script.of('issueCertificate', id).length, 0);
    });

    it('a requester mistake (policy) rejects at once with its kind, without a retry', async () => {
      const { id, handle } = await startCmp({}, ['final:policy']);
      const outcome = (await handle.result()) as CmpOutcome;
      assert.deepEqual(outcome, { status: 'rejected', kind: 'policy', message: 'fake policy fault' });
      assert.equal(stateOf(id)?.state, 'failed');
      assert.equal(script.of('issueCertificate', id).length, 1);
    });
  });

  describe('revocation, CRL, audit and key recovery', () => {
    it('revocationWorkflow: a server fault of the signing worker is retried 1, 2, 4 s apart until it passes', async () => {
      const serial = `ab${randomBytes(4).toString('hex')}`;
      script.plan(serial, ['fail:unavailable', 'fail:unavailable', 'fail:unavailable']);
      const result = await wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.revocation>>(WORKFLOWS.revocation.type, {
        workflowId: WORKFLOWS.revocation.id(serial),
        taskQueue: wt.taskQueue,
        args: [{ serial, action: 'revoke', reason: 'keyCompromise', requester: 'operator:alice' }],
      });
      assert.equal(result.status, 'revoked');
      const tries = script.of('changeCertificateStatus', serial);
      assert.deepEqual(
        tries.map((t) => t.attempt),
        [1, 2, 3, 4],
      );
      const gaps = tries.slice(1).map((t, i) => t.atMs - tries[i]!.atMs);
      [1000, 2000, 4000].forEach((b, i) => assert.ok(gaps[i]! >= b && gaps[i]! < b + 1500, `retry ${i + 1} came ${gaps[i]} ms later`));
      assert.deepEqual(revocationsOf(serial), [['revoke', 'keyCompromise']]);
    });

    it('crlWorkflow: runs rounds while more OCSP responses are due, at most 20, and adds them up', async () => {
      const run = (requester: string) =>
        wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.crl>>(WORKFLOWS.crl.type, {
          workflowId: WORKFLOWS.crl.id(randomBytes(4).toString('hex')),
          taskQueue: wt.taskQueue,
          args: [{ requester }],
        });
      refreshMore = [true, true, false];
      const three = await run('three');
      assert.deepEqual([three.crls.length, three.ocspSigned, three.more], [3, 30, false]);
      refreshMore = Array(30).fill(true);
      const capped = await run('capped');
      assert.deepEqual([capped.crls.length, capped.ocspSigned, capped.more], [20, 200, true]);
    });

    it('auditCheckpointWorkflow: retried through a server fault until the checkpoint is signed', async () => {
      script.plan('audit-retry', ['fail:unavailable', 'fail:internal']);
      const r = await wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.auditCheckpoint>>(WORKFLOWS.auditCheckpoint.type, {
        workflowId: WORKFLOWS.auditCheckpoint.id(randomBytes(4).toString('hex')),
        taskQueue: wt.taskQueue,
        args: [{ requester: 'audit-retry' }],
      });
      assert.equal(r.seq, 42);
      assert.equal(script.of('signAuditCheckpoint', 'audit-retry').length, 3);
    });

    it('keyRecoveryWorkflow: at most 3 attempts on server faults; a refusal is final at once', async () => {
      const recover = (serial: string) =>
        wt.client.workflow.execute<WorkflowOf<typeof WORKFLOWS.keyRecovery>>(WORKFLOWS.keyRecovery.type, {
          workflowId: WORKFLOWS.keyRecovery.id(randomBytes(4).toString('hex')),
          taskQueue: wt.taskQueue,
          args: [{ serial, requester: 'console:carol', recipientSpki: 'AA==' }],
        });
      script.plan('k1', ['fail:unavailable', 'fail:unavailable', 'fail:unavailable', 'ok']);
      await assert.rejects(recover('k1'), WorkflowFailedError);
      assert.equal(script.of('recoverKeyForRecipient', 'k1').length, 3);
      script.plan('k2', ['final:notFound']);
      await assert.rejects(recover('k2'), WorkflowFailedError);
      assert.equal(script.of('recoverKeyForRecipient', 'k2').length, 1);
      script.plan('k3', ['fail:unavailable', 'fail:unavailable']);
      assert.equal((await recover('k3')).serial, 'k3');
    });
  });
});
