/**
 * Signing with a slow or failing HSM (issue 11, items 2 and 3), CA keys in a SoftHSM2
 * token made by the test:
 * - a token that takes longer to sign than the heartbeat timeout: one activity attempt,
 *   never a second concurrent one;
 * - a token that disappears (its directory moved away): the request stays open as
 *   `stalled`, with a clear CertflowLastError and `certflow requests list --stuck`, signing
 *   is retried with backoff, and the certificate is issued once the token is back, without
 *   restarting the worker; exactly one certificate for the request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createInstance, opensslCsr, type TestInstance } from '../helpers/certflow.ts';
import { eventually } from '../helpers/acme.ts';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../helpers/softhsm.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';

const skip = softHsmSkip();

describe('signing with a slow or disappearing HSM (SoftHSM2)', { skip }, () => {
  let token: SoftHsmToken;
  let cf: TestInstance;
  let connection: Connection;
  let temporal: Client;
  let csr: string;

  before(async () => {
    token = await createSoftHsmToken({ label: 'certflow-faults' });
    const config = join(token.dir, 'config.json');
    await writeFile(config, JSON.stringify({ issuance: { faultRetryInitialSeconds: 2, faultRetryMaxSeconds: 4 } }));
    cf = await createInstance({ ...token.env, CERTFLOW_KEY_PASSPHRASE: '', CERTFLOW_CONFIG: config });
    csr = await opensslCsr(cf.home, 'dev', { subj: '/CN=hsm-faults.example.test', san: 'DNS:hsm-faults.example.test' });
    connection = await Connection.connect({ address: temporalAddress() });
    temporal = new Client({ connection, namespace: temporalNamespace() });
  });
  after(async () => {
    await connection?.close();
    await cf?.cleanup();
    await token?.cleanup();
  });

  async function certificatesOf(requestId: string): Promise<number> {
    const { rows } = await cf.pool.query<{ n: string }>('SELECT count(*) AS n FROM certificates WHERE request_id = $1', [requestId]);
    return Number(rows[0]!.n);
  }

  it('a token slower than the heartbeat timeout: one attempt, one certificate', async () => {
    // 8 s per signature, with the heartbeat timeout at 5 s: without heartbeats Temporal
    // would time the attempt out and start a second one while the first is still signing.
    const slow = await cf.startWorker({}, { signingFaults: { slowTokenMs: 8000 } });
    try {
      const r = await cf.cli([
        'cert',
        'issue',
        '--csr',
        csr,
        '--profile',
        'tls-server',
        '--request-id',
        'slow-1',
        '--out',
        join(cf.home, 'slow.pem'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const history = await temporal.workflow.getHandle('operator-slow-1').fetchHistory();
      // The signing attempts: activity tasks started, or (a workflow on the signing queue,
      // issue 18) the markers of its local activity, each with its attempt number.
      const attempts = history.events!.flatMap((e) => {
        if (e.activityTaskStartedEventAttributes) return [e.activityTaskStartedEventAttributes.attempt];
        const m = e.markerRecordedEventAttributes;
        if (m?.markerName !== 'core_local_activity') return [];
        const data = JSON.parse(Buffer.from(m.details!.data!.payloads![0]!.data!).toString()) as { activity_type: string; attempt: number };
        return data.activity_type === 'issueCertificate' ? [data.attempt] : [];
      });
      assert.deepEqual(attempts, [1], 'one signing attempt');
      assert.equal(await certificatesOf('slow-1'), 1);
    } finally {
      await slow.stop();
    }
  });

  it('a token that disappears: stalled with a clear last error, then issued when it is back, worker not restarted', async () => {
    const worker = await cf.startWorker();
    const ok = await cf.cli([
      'cert',
      'issue',
      '--csr',
      csr,
      '--profile',
      'tls-server',
      '--request-id',
      'before-1',
      '--out',
      join(cf.home, 'before.pem'),
    ]);
    assert.equal(ok.code, 0, ok.stderr);

    const tokens = join(token.dir, 'tokens');
    const [tokenDir] = readdirSync(tokens);
    await rename(join(tokens, tokenDir!), join(token.dir, 'away'));
    const r = await cf.cli(['cert', 'issue', '--csr', csr, '--profile', 'tls-server', '--request-id', 'gone-1', '--timeout', '5']);
    assert.equal(r.code, 3, `no certificate while the token is away: ${r.stdout}${r.stderr}`);

    const stuck = await eventually('the request listed as stuck', 60_000, async () => {
      const list = await cf.cli(['--json', 'requests', 'list', '--stuck']);
      assert.equal(list.code, 0, list.stderr);
      return (JSON.parse(list.stdout) as Array<{ id: string; state: string; error: string }>).find(
        (x) => x.id === 'gone-1' && x.state === 'stalled',
      );
    });
    assert.match(stuck.error, /PKCS#11 token "certflow-faults" is not available/);
    const description = await temporal.workflow.getHandle('operator-gone-1').describe();
    assert.equal(description.status.name, 'RUNNING');
    const attrs = description.typedSearchAttributes;
    const get = (name: string) => attrs.getAll().find((p) => p.key.name === name)?.value;
    assert.match(String(get('CertflowLastError')), /PKCS#11 token "certflow-faults" is not available/);
    assert.match(String(get('CertflowState')), /stalled|signing/);
    const stall = await cf.pool.query("SELECT actor, result, details FROM audit_log WHERE action = 'request.stall' AND object = 'gone-1'");
    assert.ok(stall.rows.length >= 1, 'the stall is audited');
    assert.deepEqual([stall.rows[0].actor, stall.rows[0].result], ['system', 'failed']);
    assert.match(stall.rows[0].details.reason, /PKCS#11 token "certflow-faults" is not available/);

    await rename(join(token.dir, 'away'), join(tokens, tokenDir!));
    const issued = await eventually('issued once the token is back', 60_000, async () => {
      const show = await cf.cli(['--json', 'requests', 'show', 'gone-1']);
      const row = JSON.parse(show.stdout) as { state: string; serial: string };
      return row.state === 'issued' ? row : undefined;
    });
    assert.ok(issued.serial);
    assert.doesNotThrow(() => process.kill(worker.pid!, 0), 'the worker that lost the token issued it, still running');
    assert.equal(await certificatesOf('gone-1'), 1);
    // The operator's view of the same request now: issued, not stuck.
    const again = await cf.cli(['--json', 'requests', 'list', '--stuck']);
    assert.ok(!(JSON.parse(again.stdout) as Array<{ id: string }>).some((x) => x.id === 'gone-1'));
    // And the client that asked sees the certificate under the same request id.
    const r2 = await cf.cli(['cert', 'issue', '--csr', csr, '--profile', 'tls-server', '--request-id', 'gone-1', '--timeout', '30']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(await certificatesOf('gone-1'), 1);
  });

  it('`requests retry` refuses a request that is not stalled', async () => {
    const r = await cf.cli(['requests', 'retry', 'before-1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is issued, not stalled/);
    const none = await cf.cli(['requests', 'retry', 'no-such-request']);
    assert.equal(none.code, 2);
  });
});
