/**
 * Durability of ACME orders: 20 http-01 orders in flight at once (acme-client), while the
 * worker and the server are killed with SIGKILL at random points and restarted (the server
 * on the same HTTPS port). Every client keeps going the way a real one does — it re-reads
 * the order and does whatever its state asks for, retrying requests that hit the restart —
 * and in the end every order is valid with exactly one certificate.
 *
 * The random points come from a seed printed as a test diagnostic; CERTFLOW_TEST_SEED=<n>
 * replays a run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import acme from 'acme-client';
import {
  driveOrder,
  newAccount,
  serialHex,
  startAcmeStack,
  startHttp01Responder,
  type AcmeClient,
  type AcmeStack,
  type DrivenOrder,
  type Http01Responder,
} from '../helpers/acme.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { rng } from '../helpers/rng.ts';

const ORDERS = 20;
const DEADLINE_MS = 100_000;

describe('ACME orders survive kill -9 of the worker and the server', { skip: toolsSkip(CHALLTESTSRV) }, () => {
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

  /**
   * For a failure report: what the read model, the order's workflow and the worker log say
   * about an order that did not complete.
   */
  async function diagnose(orderUrl: string | undefined): Promise<string> {
    if (!orderUrl) return '  (the order was never created)';
    const id = new URL(orderUrl).pathname.split('/').at(-1)!;
    const lines: string[] = [];
    const row = await stack.cf.pool.query('SELECT status, updated_at, serial, error FROM acme_orders WHERE id = $1', [id]).then(
      (r) => r.rows[0],
      (e: Error) => e.message,
    );
    lines.push(`  read model: ${JSON.stringify(row)}`);
    const cert = await stack.cf.pool.query('SELECT serial, status FROM certificates WHERE request_id = $1', [id]).then(
      (r) => r.rows,
      (e: Error) => e.message,
    );
    lines.push(`  certificates: ${JSON.stringify(cert)}`);
    const authzs = await stack.cf.pool
      .query(
        `SELECT a.id, a.status, json_agg(json_build_object('type', c.type, 'status', c.status, 'error', c.error)) AS challenges
           FROM acme_authzs a JOIN acme_challenges c ON c.authz_id = a.id
          WHERE a.id = ANY((SELECT authz_ids FROM acme_orders WHERE id = $1)::text[]) GROUP BY a.id, a.status`,
        [id],
      )
      .then(
        (r) => r.rows as Array<{ id: string }>,
        (e: Error) => [{ id: e.message }],
      );
    lines.push(`  authorizations: ${JSON.stringify(authzs)}`);
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const client = new Client({ connection, namespace: temporalNamespace() });
      for (const workflowId of [`acme-order-${id}`, ...authzs.map((a) => `acme-authz-${a.id}`)]) {
        try {
          const handle = client.workflow.getHandle(workflowId);
          const d = await handle.describe();
          const state = d.typedSearchAttributes.getAll().find((p) => p.key.name === 'CertflowState')?.value;
          lines.push(`  workflow ${workflowId}: ${d.status.name}, CertflowState=${String(state)}, ${d.historyLength} events`);
          for (const a of d.raw.pendingActivities ?? []) {
            lines.push(`    pending activity ${a.activityType?.name} attempt ${a.attempt}: ${a.lastFailure?.message ?? ''}`);
          }
          const history = await handle.fetchHistory();
          // Each event has one <type>EventAttributes field: its name is the readable event type.
          const names = (history.events ?? []).map((e) => {
            const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]);
            return key ? key.replace(/EventAttributes$/, '') : String(e.eventType);
          });
          lines.push(`    history: ${names.join(' ')}`);
        } catch (e) {
          lines.push(`  workflow ${workflowId}: ${(e as Error).message}`);
        }
      }
    } finally {
      await connection.close();
    }
    const ids = [id, ...authzs.map((a) => a.id)];
    for (const file of ['server.log', 'worker.log']) {
      const log = await readFile(join(stack.cf.home, file), 'utf8').catch(() => '');
      const mentions = log
        .split('\n')
        .filter((l) => ids.some((x) => l.includes(x)))
        .slice(-10);
      if (mentions.length)
        lines.push(`  ${file} lines naming the order or its authorizations:\n${mentions.map((l) => `    ${l.slice(0, 400)}`).join('\n')}`);
    }
    return lines.join('\n');
  }

  it(`${ORDERS} concurrent orders, worker and server killed and restarted: all valid, one certificate each`, async (t) => {
    const seed = Number(process.env.CERTFLOW_TEST_SEED) || Math.floor(Math.random() * 2 ** 31);
    t.diagnostic(`seed ${seed} (CERTFLOW_TEST_SEED=${seed} replays the kill points)`);
    const rand = rng(seed).next;
    const between = (lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));

    const deadline = Date.now() + DEADLINE_MS;
    const names = Array.from({ length: ORDERS }, (_, i) => `crash-${i}.example.test`);
    const started = Date.now();
    const runs = names.map((name) => driveOrder(client, responder, name, deadline));
    // Keep an early failure from being an unhandled rejection while the chaos goes on.
    const settled = Promise.allSettled(runs);

    const log: string[] = [];
    const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const kill = async (what: 'worker' | 'server') => {
      const handle = what === 'worker' ? stack.worker : stack.server;
      process.kill(handle.pid!, 'SIGKILL');
      await handle.exited;
      log.push(`${at()}: killed the ${what} (pid ${handle.pid})`);
    };
    const restart = async (what: 'worker' | 'server') => {
      if (what === 'worker') stack.worker = await stack.cf.startWorker();
      else stack.server = await stack.cf.startServer();
      log.push(`${at()}: ${what} restarted (pid ${(what === 'worker' ? stack.worker : stack.server).pid})`);
    };

    // 1: the worker, while orders are being created and validated.
    await sleep(between(300, 1500));
    await kill('worker');
    await sleep(between(200, 1500));
    await restart('worker');
    // 2: the server, while clients poll, answer challenges and finalize.
    await sleep(between(300, 2000));
    await kill('server');
    await sleep(between(100, 1000));
    await restart('server');
    // 3: both at once.
    await sleep(between(300, 2500));
    await Promise.all([kill('worker'), kill('server')]);
    await sleep(between(100, 1000));
    await Promise.all([restart('worker'), restart('server')]);
    t.diagnostic(log.join('; '));

    const results = await settled;
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected.length) {
      const reports = await Promise.all(
        rejected.map(async (r) => `${String(r.reason?.message ?? r.reason)}\n${await diagnose(r.reason?.orderUrl)}`),
      );
      assert.fail(`${rejected.length} of ${ORDERS} orders did not complete (seed ${seed}; ${log.join('; ')}):\n${reports.join('\n')}`);
    }
    const outcomes = results.map((r) => (r as PromiseFulfilledResult<DrivenOrder>).value);
    const retriedCount = outcomes.reduce((n, o) => n + o.retried.length, 0);
    t.diagnostic(`all ${ORDERS} orders valid after ${at()}; ${retriedCount} failed requests retried by the clients`);

    const orderIds = outcomes.map((o) => new URL(o.order.url).pathname.split('/').at(-1)!);
    assert.equal(new Set(orderIds).size, ORDERS);
    for (const o of outcomes) {
      assert.equal(o.order.status, 'valid');
      const leaf = new X509Certificate(acme.crypto.splitPemChain(o.certPem)[0]!);
      assert.equal(leaf.subjectAltName, `DNS:${o.name}`);
    }
    const { rows } = await stack.cf.pool.query<{ request_id: string; count: string; serials: string[] }>(
      'SELECT request_id, count(*) AS count, array_agg(serial) AS serials FROM certificates WHERE request_id = ANY($1) GROUP BY request_id',
      [orderIds],
    );
    const perOrder = new Map(rows.map((r) => [r.request_id, Number(r.count)]));
    for (const [i, id] of orderIds.entries())
      assert.equal(perOrder.get(id), 1, `order ${id} (${names[i]}) has ${perOrder.get(id) ?? 0} certificates`);
    // And each order's certificate is the one the client downloaded.
    const serialOf = new Map(rows.map((r) => [r.request_id, r.serials[0]]));
    for (const [i, o] of outcomes.entries()) assert.equal(serialOf.get(orderIds[i]!), serialHex(o.certPem));
    // No order anywhere got a second certificate (request_id is unique, but say so).
    const dupes = await stack.cf.pool.query('SELECT request_id FROM certificates GROUP BY request_id HAVING count(*) > 1');
    assert.deepEqual(dupes.rows, []);
  });
});
