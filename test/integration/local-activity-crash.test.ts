/**
 * The crash point local activities add (issue 18): an order's validation and its signing,
 * and an enrollment's signing, run as local activities that commit to Postgres before
 * their workflow task completes. The worker is killed with SIGKILL right after such a
 * commit (test/helpers/faulty-worker.ts holds the activity's result back, so the task
 * cannot complete first) and a worker without faults takes over: the task runs again with
 * the same Update, the activities find what they stored, and the request ends with exactly
 * one certificate, its audit entries written once, and the client's answers as usual.
 *
 * CERTFLOW_RECORD_HISTORIES=1 writes the two workflows' histories (a task timed out, run
 * again with its Update and local activity) for the replay test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import acme from 'acme-client';
import {
  eventually,
  driveOrder,
  newAccount,
  serialHex,
  startAcmeStack,
  startHttp01Responder,
  type AcmeClient,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { opensslCsr } from '../helpers/certflow.ts';
import type { SigningFaults } from '../helpers/faulty-worker.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { WORKFLOWS } from '../../workflows/api.ts';

async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (process.env.CERTFLOW_RECORD_HISTORIES !== '1') return;
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    const handle = new Client({ connection, namespace: temporalNamespace() }).workflow.getHandle(workflowId);
    await handle.result();
    const file = fileURLToPath(new URL(`../replay/histories/${name}.json`, import.meta.url));
    await writeFile(file, historyToJSON(await handle.fetchHistory()) + '\n');
  } finally {
    await connection.close();
  }
}

const HOLD = { pauseAfterValidateMs: 600_000, pauseAfterIssueMs: 600_000 } satisfies SigningFaults;

describe('a worker killed between a local activity commit and its workflow task completion', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let stack: AcmeStack;
  let responder: Http01Responder;
  let client: AcmeClient;

  before(async () => {
    stack = await startAcmeStack();
    responder = await startHttp01Responder(stack.http01Port);
    ({ client } = await newAccount(stack.directoryUrl()));
  });
  after(async () => {
    await responder?.close();
    await stack?.stop();
  });

  const query = async <T>(sql: string, args: unknown[]) => (await stack.cf.pool.query(sql, args)).rows as T[];
  const until = <T>(what: string, probe: () => Promise<T | undefined>) => eventually(what, 60_000, probe, 50);
  /** Kills the worker (it holds an activity's result back) and starts one with `faults` (or none). */
  async function replaceWorker(faults?: SigningFaults) {
    process.kill(stack.worker.pid!, 'SIGKILL');
    await stack.worker.exited;
    stack.worker = await stack.cf.startWorker({}, faults ? { signingFaults: faults } : {});
  }

  it('ACME: after the validation commits, and after the certificate commits: valid, one certificate, audited once', async () => {
    await stack.worker.stop();
    stack.worker = await stack.cf.startWorker({}, { signingFaults: { pauseAfterValidateMs: HOLD.pauseAfterValidateMs } });
    const name = 'la-crash.example.test';
    const run = driveOrder(client, responder, name, Date.now() + 150_000);
    run.catch(() => {}); // awaited below

    // 1: the authorization is valid in Postgres, the challenge Update's task not completed.
    const authzId = await until('the validation to commit', async () => {
      const [a] = await query<{ id: string }>(`SELECT id FROM acme_authzs WHERE identifier_value = $1 AND status = 'valid'`, [name]);
      return a?.id;
    });
    const [{ order_id: orderId }] = await query<{ order_id: string }>('SELECT owner_order_id AS order_id FROM acme_authzs WHERE id = $1', [
      authzId,
    ]);
    await replaceWorker({ pauseAfterIssueMs: HOLD.pauseAfterIssueMs });

    // 2: the certificate is stored and the order valid in Postgres, the finalize task not completed.
    const serial = await until('the certificate to commit', async () => {
      const [c] = await query<{ serial: string }>(`SELECT serial FROM certificates WHERE request_id = $1 AND status = 'valid'`, [orderId]);
      return c?.serial;
    });
    await replaceWorker();

    const done = await run;
    assert.equal(done.order.status, 'valid');
    const leaf = new X509Certificate(acme.crypto.splitPemChain(done.certPem)[0]!);
    assert.equal(leaf.subjectAltName, `DNS:${name}`);
    assert.equal(serialHex(done.certPem), serial, 'the certificate stored before the crash is the one the client got');
    const certs = await query<{ serial: string }>('SELECT serial FROM certificates WHERE request_id = $1', [orderId]);
    assert.deepEqual(
      certs.map((c) => c.serial),
      [serial],
      'exactly one certificate',
    );
    const audit = await query<{ action: string; n: number }>(
      'SELECT action, count(*)::int AS n FROM audit_log WHERE request_id = $1 GROUP BY action ORDER BY action',
      [orderId],
    );
    assert.deepEqual(audit, [
      { action: 'acme.authz.validate', n: 1 },
      { action: 'acme.order.create', n: 1 },
      { action: 'cert.issue', n: 1 },
    ]);
    const [order] = await query<{ status: string; serial: string }>('SELECT status, serial FROM acme_orders WHERE id = $1', [orderId]);
    assert.deepEqual(order, { status: 'valid', serial });
    await recordHistory(WORKFLOWS.acmeOrder.id(orderId), 'acme-order-signing-queue-worker-killed-after-commits');
  });

  // The enrollment's one local activity writes the `signing` projection and the TBS, then the
  // certificate with the `issued` projection: killed after either commit, the request ends
  // issued with one certificate and one audit entry.
  for (const point of [
    {
      name: 'after the TBS and the signing projection commit, before the signature',
      faults: { pauseBeforeSignMs: 600_000 } satisfies SigningFaults,
      committed: { certificate: 'signing', request: 'signing' },
      history: 'enrollment-signing-queue-worker-killed-before-signature',
    },
    {
      name: 'after the certificate and the issued projection commit',
      faults: { pauseAfterIssueMs: HOLD.pauseAfterIssueMs } satisfies SigningFaults,
      committed: { certificate: 'valid', request: 'issued' },
      history: 'enrollment-signing-queue-worker-killed-after-commit-projected',
    },
  ]) {
    it(`enrollment (\`certflow cert issue\`): ${point.name}: one certificate, audited once`, async () => {
      await replaceWorker(point.faults);
      const csr = await opensslCsr(stack.cf.home, 'la-crash', { subj: '/CN=la-enroll.example.test', san: 'DNS:la-enroll.example.test' });
      const out = join(stack.cf.home, 'la-crash.pem');
      const requestId = `la-crash-${Date.now()}`;
      const issuing = stack.cf.cliStart(['cert', 'issue', '--csr', csr, '--out', out, '--request-id', requestId, '--timeout', '120']);
      const serial = await until('the commit', async () => {
        const [c] = await query<{ serial: string; state: string }>(
          `SELECT c.serial, r.state FROM certificates c JOIN issuance_requests r ON r.id = c.request_id
            WHERE c.request_id = $1 AND c.status = $2`,
          [requestId, point.committed.certificate],
        );
        return c?.state === point.committed.request ? c.serial : undefined;
      });
      await replaceWorker();
      const r = await issuing.done;
      assert.equal(r.code, 0, r.stderr);
      const certs = await query<{ serial: string; status: string }>('SELECT serial, status FROM certificates WHERE request_id = $1', [
        requestId,
      ]);
      assert.deepEqual(certs, [{ serial, status: 'valid' }]);
      const [request] = await query<{ state: string; serial: string }>('SELECT state, serial FROM issuance_requests WHERE id = $1', [
        requestId,
      ]);
      assert.deepEqual(request, { state: 'issued', serial });
      const [{ n }] = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_log WHERE request_id = $1 AND action = 'cert.issue'`,
        [requestId],
      );
      assert.equal(n, 1);
      const strip = (h: string) => h.toLowerCase().replace(/^0+/, '');
      assert.equal(strip(new X509Certificate(await readFile(out)).serialNumber), strip(serial));
      await recordHistory(WORKFLOWS.enrollment.id('operator', requestId), point.history);
    });
  }
});
