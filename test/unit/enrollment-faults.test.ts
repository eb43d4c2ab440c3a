/**
 * The enrollment workflow and the error contract (issue 11, item 2), with fake activities
 * on the run's Temporal server: a server fault (config, unavailable, internal) never fails
 * the workflow: the request is `stalled` (projected, with its error) until the operator's
 * `retry` Update or the backoff timer; requester mistakes end it as `failed`; an abandoned
 * serverkeygen request ends `abandoned` and the certificate signed meanwhile is revoked.
 * CERTFLOW_RECORD_HISTORIES=1 writes the histories for the replay tests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/activity';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { IssuedCertificate, RequestProjection, StatusChangeInput } from '../../activities/types.ts';
import { REQUEST_ENDING_KINDS, SERVER_FAULT_KINDS } from '../../src/core/errors.ts';
import { workflowBundle } from '../../src/temporal/worker.ts';
import {
  abandonUpdate,
  retryUpdate,
  signingTaskQueue,
  WORKFLOWS,
  type EnrollmentInput,
  type EnrollmentResult,
  type WorkflowOf,
} from '../../workflows/api.ts';
import { REQUESTER_ERROR_TYPES } from '../../workflows/options.ts';
import { eventually } from '../helpers/acme.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';

describe('enrollment workflow: server faults keep the request, requester mistakes end it', () => {
  const taskQueue = `faults-${randomBytes(4).toString('hex')}`;
  let connection: Connection;
  let native: NativeConnection;
  let client: Client;
  let workers: Worker[];
  let running: Promise<unknown>;
  /** What each request's signing does next: a failure kind, 'slow', or undefined = sign. */
  const plan = new Map<string, Array<string | undefined>>();
  const projections: RequestProjection[] = [];
  const revoked: StatusChangeInput[] = [];
  const released = new Set<string>();
  let releaseAll = false;

  const cert = (requestId: string): IssuedCertificate => ({
    serial: `5e${Buffer.from(requestId).toString('hex').slice(0, 16)}`,
    caName: 'test-ca',
    certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
    chainPem: '',
    notBefore: new Date().toISOString(),
    notAfter: new Date(Date.now() + 86_400_000).toISOString(),
  });

  before(async () => {
    connection = await Connection.connect({ address: temporalAddress() });
    client = new Client({ connection, namespace: temporalNamespace() });
    native = await NativeConnection.connect({ address: temporalAddress() });
    const common = { connection: native, namespace: temporalNamespace() };
    workers = [
      await Worker.create({
        ...common,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: { projectRequest: async (p: RequestProjection) => void projections.push(p) },
      }),
      await Worker.create({
        ...common,
        taskQueue: signingTaskQueue(taskQueue),
        activities: {
          async issueCertificate(input: { requestId: string }) {
            const next = plan.get(input.requestId)?.shift();
            if (next === 'slow') {
              // Until the test lets it go (or ends: a worker's shutdown waits for its activities).
              while (!released.has(input.requestId) && !releaseAll) await new Promise((r) => setTimeout(r, 100));
              return cert(input.requestId);
            }
            if (next)
              throw ApplicationFailure.create({
                type: next,
                message: `fake ${next} fault`,
                nonRetryable: REQUEST_ENDING_KINDS.includes(next as never),
              });
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
      }),
    ];
    running = Promise.all(workers.map((w) => w.run()));
  });
  after(async () => {
    releaseAll = true;
    for (const w of workers ?? []) w.shutdown();
    await running?.catch(() => {});
    await native?.close();
    await connection?.close();
  });

  function start(requestId: string, extra: Partial<EnrollmentInput> = {}) {
    return client.workflow.start<WorkflowOf<typeof WORKFLOWS.enrollment>>(WORKFLOWS.enrollment.type, {
      workflowId: WORKFLOWS.enrollment.id('est', requestId),
      taskQueue,
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
    it(`a ${kind} fault: stalled (projected with its error) until the retry Update, then issued`, async () => {
      const id = `stall-${kind}-${randomBytes(3).toString('hex')}`;
      // 4 attempts inside the activity (its retry policy), then the workflow stalls.
      plan.set(id, [kind, kind, kind, kind]);
      const handle = await start(id);
      const stalled = await eventually('stalled', 60_000, async () => (stateOf(id)?.state === 'stalled' ? stateOf(id) : undefined));
      assert.match(stalled.error!, new RegExp(`${kind}: fake ${kind} fault`));
      const described = await handle.describe();
      assert.equal(described.status.name, 'RUNNING');
      const r = await handle.executeUpdate(retryUpdate, { args: [{ by: 'operator:test' }] });
      assert.equal(r.state, 'signing');
      const result = (await handle.result()) as EnrollmentResult;
      assert.equal(result.status, 'issued');
      assert.equal(stateOf(id)?.state, 'issued');
      if (kind === 'config') await record(handle, 'enrollment-stalled-config-operator-retry');
    });
  }

  it('the retry Update is refused unless the request is stalled', async () => {
    const id = `noretry-${randomBytes(3).toString('hex')}`;
    plan.set(id, ['slow']);
    const handle = await start(id);
    await eventually('signing', 30_000, async () => (stateOf(id)?.state === 'signing' ? true : undefined));
    await assert.rejects(handle.executeUpdate(retryUpdate, { args: [{ by: 'x' }] }), (e: Error) =>
      /is signing, not stalled/.test(String((e.cause as Error)?.message)),
    );
    released.add(id);
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'issued');
  });

  it('the backoff timer retries a stalled request by itself', async () => {
    const id = `timer-${randomBytes(3).toString('hex')}`;
    plan.set(id, ['unavailable', 'unavailable', 'unavailable', 'unavailable']);
    const handle = await start(id, { faultRetrySeconds: { initial: 1, max: 1 } });
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'issued');
    assert.ok(projections.some((p) => p.id === id && p.state === 'stalled'));
  });

  it('a requester mistake ends the request as failed, with the kind', async () => {
    const id = `policy-${randomBytes(3).toString('hex')}`;
    plan.set(id, ['forbidden']);
    const result = (await (await start(id)).result()) as EnrollmentResult;
    assert.deepEqual(result, { status: 'rejected', kind: 'forbidden', message: 'fake forbidden fault' });
    assert.equal(stateOf(id)?.state, 'failed');
  });

  it('abandoned while signing: ends abandoned and revokes the certificate signed meanwhile', async () => {
    const id = `abandon-${randomBytes(3).toString('hex')}`;
    plan.set(id, ['slow']);
    const handle = await start(id, { kind: 'serverkeygen' });
    await eventually('signing', 30_000, async () => (stateOf(id)?.state === 'signing' ? true : undefined));
    await handle.executeUpdate(abandonUpdate, { args: [{ reason: 'the key was not handed out in time' }] });
    released.add(id);
    const result = (await handle.result()) as EnrollmentResult;
    assert.equal(result.status, 'rejected');
    assert.equal(stateOf(id)?.state, 'abandoned');
    assert.deepEqual(
      revoked.filter((r) => r.serial === cert(id).serial).map((r) => [r.action, r.reason]),
      [['revoke', 'cessationOfOperation']],
    );
    await record(handle, 'enrollment-serverkeygen-abandoned');
  });

  it('abandoned while stalled: ends at once, nothing to revoke; refused once it has ended', async () => {
    const id = `abandon2-${randomBytes(3).toString('hex')}`;
    plan.set(id, ['unavailable', 'unavailable', 'unavailable', 'unavailable']);
    const handle = await start(id);
    await eventually('stalled', 60_000, async () => (stateOf(id)?.state === 'stalled' ? true : undefined));
    await handle.executeUpdate(abandonUpdate, { args: [{ reason: 'gave up' }] });
    assert.equal(((await handle.result()) as EnrollmentResult).status, 'rejected');
    assert.equal(stateOf(id)?.state, 'abandoned');
    assert.ok(!revoked.some((r) => r.serial === cert(id).serial));
  });
});
