/**
 * Notifications end to end, with a real SMTP server (npm smtp-server: STARTTLS, AUTH) and a
 * real webhook receiver that checks every signature as the shared CONTRACT says:
 *
 * - a sweep (the schedule's workflow, run now by `certflow notifications sweep`) tells each
 *   certificate about to expire (to the operators, to the EST client's own address, to the
 *   profile's team), the CA and the CRL about to expire, a stuck request and an audit log
 *   that no longer verifies — each once, however often it runs; a renewed certificate is not
 *   told about;
 * - a webhook that fails is retried, then dead-lettered and listed; `notifications test`
 *   says which target failed (exit code 1);
 * - a worker SIGKILLed while it delivers: after the restart every notice is accepted exactly
 *   once by each receiver (the one cut off is sent again, never one that went through);
 * - the console's Settings -> Notifications page (chromium): the dead letters, the test
 *   button, the retry; only Administrators may use it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { AdminClient, CHROMIUM, chromiumArgs } from '../helpers/admin.ts';
import { createInstance, opensslCsr, type TestInstance } from '../helpers/certflow.ts';
import { estDevice } from '../helpers/est.ts';
import { startSmtpSink, startWebhookReceiver, type SmtpSink, type WebhookReceiver } from '../helpers/notify-sinks.ts';
import { withTemporal } from '../helpers/temporal.ts';
import { scheduleIds } from '../../workflows/api.ts';
import { requireTool, toolsSkip } from '../helpers/tools.ts';
import { consoleLogin } from '../helpers/temporal-ui.ts';

const SECRET = 'a webhook secret of more than 32 characters';
const FAIL_SECRET = 'another webhook secret, also long enough';
const PASSWORD = 'notifications test password';
const DAY = 86_400;

describe('notifications by e-mail and webhook', () => {
  let cf: TestInstance;
  let smtp: SmtpSink;
  let hooks: WebhookReceiver;
  let worker: { stop(): Promise<void>; pid?: number };
  let serials: Record<string, string>;

  const cli = async (args: string[]) => cf.cli(args);
  const json = async (args: string[]) => {
    const r = await cli(['--json', ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const sweep = async () => json(['notifications', 'sweep']) as Promise<{ created: number; started: number }>;
  /** Waits until no delivery is pending. */
  const settled = async (timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await cf.pool.query("SELECT count(*)::int AS n FROM notice_deliveries WHERE status = 'pending'");
      if (rows[0].n === 0) return;
      if (Date.now() > deadline) throw new Error(`${rows[0].n} deliveries still pending`);
      await sleep(250);
    }
  };
  const acceptedWebhooks = (type: string) => hooks.accepted.filter((e) => e.path === '/ok' && e.type === type);

  before(async () => {
    cf = await createInstance();
    smtp = await startSmtpSink(cf.home, { user: 'certflow', pass: 'mail password' });
    hooks = await startWebhookReceiver({ '/ok': SECRET, '/fail': FAIL_SECRET });
    const config = {
      profiles: [
        { name: 'short', extends: 'device', validitySeconds: 5 * DAY },
        { name: 'medium', extends: 'device', validitySeconds: 20 * DAY },
      ],
      // An operator request that has not been signed within 2 s is stuck.
      stuck: { operator: { signingSeconds: 2 } },
      // The CA expiry watch reports the 10-year issuing CA (not the 20-year root) 3650 days ahead.
      ca: { expiryWarningDays: 3650 },
      notifications: {
        smtp: { url: `smtp://certflow:mail%20password@localhost:${smtp.port}`, from: 'certflow@ca.example.test', caFile: smtp.caFile },
        email: ['pki-ops@example.test'],
        webhooks: [
          { url: hooks.url('/ok'), secret: SECRET },
          { url: hooks.url('/fail'), secret: FAIL_SECRET, events: ['certificate.expiring', 'test'] },
        ],
        expiringDays: [30, 7],
        // The medium profile's certificates concern another team.
        profiles: { medium: { email: ['iot-team@example.test'] } },
        // The 7-day CRLs are "about to expire".
        crlExpiringHours: [200],
        stuckMinutes: 0,
        retry: { maxAttempts: 2, initialSeconds: 1, maxSeconds: 2 },
      },
    };
    await writeFile(join(cf.home, 'config.json'), JSON.stringify(config, null, 2));
    worker = await cf.startWorker();
    // The worker made the sweep's schedule (every 15 minutes, on the clock): paused here, so
    // that each sweep of this test is its own and counts only what it found. Paused at once:
    // with the server and the console started first, a quarter hour that struck meanwhile
    // sometimes swept the CA and CRL notices before the test did (the first test: 3 !== 6).
    await withTemporal(async (client) => {
      const schedule = client.schedule.getHandle(scheduleIds.notificationSweep(cf.env.CERTFLOW_TASK_QUEUE!));
      assert.equal((await schedule.describe()).spec.intervals?.[0]?.every, 15 * 60_000);
      await schedule.pause('the test sweeps by itself');
    });
    await cf.startServer();
    await cf.startAdmin();

    // Certificates: an EST device's (short: 5 days left), with its own address; one of the
    // medium profile (20 days); one renewed (only the newer is worth a notice); a 90-day one.
    const add = await cli([
      'est-client',
      'add',
      '--name',
      'dev-1',
      '--password',
      PASSWORD,
      '--profile',
      'short',
      '--email',
      'dev-owner@example.test',
    ]);
    assert.equal(add.code, 0, add.stderr);
    const root = join(cf.home, 'ca', 'root.pem');
    const device = estDevice(cf.home, `https://localhost:${cf.httpsPort}/.well-known/est`, root, join(cf.home, 'ca', 'chain.pem'));
    const enrolled = await device.curl('/simpleenroll', {
      data: await device.csrBody('dev-1', '/CN=dev-1.example.test'),
      user: `dev-1:${PASSWORD}`,
    });
    assert.equal(enrolled.status, 200, enrolled.body.toString());
    const issue = async (name: string, profile: string) => {
      const csr = await opensslCsr(cf.home, `${name}-${Date.now()}`, { subj: `/CN=${name}`, san: `DNS:${name}` });
      return (await json(['cert', 'issue', '--csr', csr, '--profile', profile])).serial as string;
    };
    serials = {
      medium: await issue('gateway.example.test', 'medium'),
      renewedOld: await issue('renewed.example.test', 'short'),
      renewedNew: await issue('renewed.example.test', 'short'),
      long: await issue('web.example.test', 'tls-server'),
    };
    const { rows } = await cf.pool.query("SELECT serial FROM certificates WHERE requester = 'dev-1'");
    serials.device = rows[0].serial;
    // The first CRL is made at the worker's first start.
    const deadline = Date.now() + 30_000;
    while (!(await cf.pool.query('SELECT 1 FROM crls')).rowCount) {
      if (Date.now() > deadline) throw new Error('no CRL');
      await sleep(250);
    }
  });
  after(async () => {
    await cf?.cleanup();
    await smtp?.close();
    await hooks?.close();
  });

  it('tells each expiring certificate, CA and CRL once: operators, the requester, the profile team, the webhooks', async () => {
    const first = await sweep();
    await settled();
    const { rows } = await cf.pool.query<{ id: string; type: string }>('SELECT id, type FROM notices ORDER BY id');
    const ids = rows.map((r) => r.id);
    assert.deepEqual(
      ids.sort(),
      [
        `ca.expiring:certflow-issuing:${(await cf.pool.query("SELECT generation FROM ca_keys WHERE ca_name = 'certflow-issuing' ORDER BY generation DESC LIMIT 1")).rows[0].generation}:warning`,
        `certificate.expiring:${serials.medium}:30d`,
        `certificate.expiring:${serials.device}:7d`,
        `certificate.expiring:${serials.renewedNew}:7d`,
        ...// The newest CRL of every CA (root and issuing publish 7-day CRLs).
        (await cf.pool.query('SELECT DISTINCT ON (ca_name) ca_name, crl_number FROM crls ORDER BY ca_name, crl_number DESC')).rows.map(
          (c) => `crl.expiring:${c.ca_name}:${c.crl_number}:200h`,
        ),
      ].sort(),
    );
    assert.equal(first.created, ids.length);

    // E-mail: over STARTTLS, authenticated; each notice to the right people.
    const mails = (notice: string) =>
      smtp.accepted
        .filter((m) => m.notice === notice)
        .flatMap((m) => m.to)
        .sort();
    assert.ok(
      smtp.accepted.length > 0 && smtp.accepted.every((m) => m.secure && m.user === 'certflow' && m.from === 'certflow@ca.example.test'),
    );
    assert.deepEqual(mails(`certificate.expiring:${serials.device}:7d`), ['dev-owner@example.test', 'pki-ops@example.test']);
    assert.deepEqual(mails(`certificate.expiring:${serials.renewedNew}:7d`), ['pki-ops@example.test']);
    assert.deepEqual(mails(`certificate.expiring:${serials.medium}:30d`), ['iot-team@example.test']);
    const ca = smtp.accepted.find((m) => m.event === 'ca.expiring')!;
    assert.match(ca.subject, /^\[certflow\] CA certflow-issuing expires in \d+ days \(\d{4}-\d\d-\d\d\): plan its rollover$/);
    assert.match(ca.body, /level: warning/);
    assert.match(ca.body, /longestProfile: \{"days":730,"name":"device"\}/);

    // Webhooks: every notice once at /ok, signed; certificate notices also at /fail, which fails.
    assert.deepEqual(hooks.badSignatures, []);
    const atOk = hooks.accepted.filter((e) => e.path === '/ok');
    assert.deepEqual(atOk.map((e) => e.id).sort(), [...ids].sort());
    const device = atOk.find((e) => e.id === `certificate.expiring:${serials.device}:7d`)!;
    assert.equal(device.type, 'certificate.expiring');
    assert.ok(!Number.isNaN(Date.parse(device.time)));
    assert.deepEqual(
      [device.data.serial, device.data.profile, device.data.requester, device.data.thresholdDays],
      [serials.device, 'short', 'dev-1', 7],
    );

    // Nothing new the second time.
    const before = { mails: smtp.received.length, hooks: hooks.received.length };
    const again = await sweep();
    await settled();
    assert.deepEqual([again.created, again.started], [0, 0]);
    assert.deepEqual({ mails: smtp.received.length, hooks: hooks.received.length }, before);
  });

  it('a failing webhook is retried, then dead-lettered and listed; `notifications test` says which target failed', async () => {
    const dead = (await json(['notifications', 'list', '--status', 'dead'])) as Array<{
      target: string;
      attempts: number;
      type: string;
      error: string;
    }>;
    assert.equal(dead.length, 3, JSON.stringify(dead));
    for (const d of dead) {
      assert.equal(d.target, hooks.url('/fail'));
      assert.equal(d.type, 'certificate.expiring');
      assert.equal(d.attempts, 2, 'retried once, then dead');
      assert.match(d.error, /HTTP 500/);
    }
    assert.equal(hooks.received.filter((e) => e.path === '/fail').length, 6);
    const { rows } = await cf.pool.query(
      'SELECT count(*)::int AS n FROM notice_attempts a JOIN notice_deliveries d ON d.id = a.delivery_id WHERE d.status = $1',
      ['dead'],
    );
    assert.equal(rows[0].n, 6, 'each attempt is recorded');

    const webhook = await cli(['notifications', 'test', 'webhook']);
    assert.equal(webhook.code, 1, webhook.stderr);
    assert.match(webhook.stderr, new RegExp(`ok +webhook ${hooks.url('/ok')}: HTTP 204`));
    assert.match(webhook.stderr, new RegExp(`FAILED webhook ${hooks.url('/fail')}: .*HTTP 500`));
    const email = await cli(['notifications', 'test', 'email']);
    assert.equal(email.code, 0, email.stderr);
    assert.match(email.stderr, /ok +email pki-ops@example\.test: 250/);
    assert.ok(smtp.accepted.some((m) => m.event === 'test' && m.to.includes('pki-ops@example.test')));

    const metrics = await (await fetch(`http://127.0.0.1:${cf.httpPort}/metrics`)).text();
    assert.match(metrics, /certflow_notification_deliveries\{channel="webhook",status="dead"\} 4/);
  });

  it('tells a stuck request and an audit log that no longer verifies, once each', async () => {
    // A worker that takes a minute to sign: the request stays in "signing" past its 2 s bound.
    await worker.stop();
    const slow = await cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 60_000 } });
    const csr = await opensslCsr(cf.home, 'slow', { subj: '/CN=slow.example.test', san: 'DNS:slow.example.test' });
    const pending = cf.cliStart(['--json', 'cert', 'issue', '--csr', csr, '--timeout', '120']);
    const deadline = Date.now() + 30_000;
    let stuck: Array<{ id: string }> = [];
    while (!stuck.length) {
      if (Date.now() > deadline) throw new Error('the request did not become stuck');
      await sleep(500);
      stuck = (await json(['requests', 'list', '--stuck'])) as Array<{ id: string }>;
    }
    // The audit log altered behind certflow's back (as the database's owner could).
    await cf.pool.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
    await cf.pool.query(`UPDATE audit_log SET details = '{"altered": true}' WHERE seq = 3`);
    await cf.pool.query('ALTER TABLE audit_log ENABLE TRIGGER USER');

    const r = await sweep();
    assert.equal(r.created, 2);
    await settled();
    const stuckHook = acceptedWebhooks('request.stuck');
    assert.equal(stuckHook.length, 1);
    assert.equal(stuckHook[0]!.data.id, stuck[0]!.id);
    assert.equal(stuckHook[0]!.data.reason, 'signing');
    const audit = acceptedWebhooks('audit.verification_failed');
    assert.equal(audit.length, 1);
    assert.equal((audit[0]!.data.firstBroken as { seq: number }).seq, 3);
    assert.ok(smtp.accepted.some((m) => m.event === 'audit.verification_failed' && m.to.includes('pki-ops@example.test')));
    assert.equal((await sweep()).created, 0, 'told once');

    // Killed: its signing never ends by itself, and a graceful stop would wait 15 s for it.
    process.kill(slow.pid!, 'SIGKILL');
    await slow.exited;
    worker = await cf.startWorker();
    assert.equal((await pending.done).code, 0, 'the request completes once a worker signs it');
  });

  it('a worker SIGKILLed while it delivers: every notice is accepted exactly once by each receiver', async () => {
    // Five more certificates about to expire, and receivers that take their time.
    for (let i = 0; i < 5; i++) {
      const csr = await opensslCsr(cf.home, `kill-${i}`, { subj: `/CN=kill-${i}.example.test`, san: `DNS:kill-${i}.example.test` });
      await json(['cert', 'issue', '--csr', csr, '--profile', 'short']);
    }
    hooks.holdMs = 1500;
    smtp.holdMs = 1500;
    const receivedBefore = hooks.received.length;
    const running = cf.cliStart(['notifications', 'sweep']);
    // Kill the worker while a webhook delivery is held by the receiver.
    const deadline = Date.now() + 30_000;
    while (!hooks.received.slice(receivedBefore).some((e) => e.path === '/ok')) {
      if (Date.now() > deadline) throw new Error('no delivery started');
      await sleep(50);
    }
    const pid = worker.pid!;
    process.kill(pid, 'SIGKILL');
    await worker.stop().catch(() => {});
    worker = await cf.startWorker();
    hooks.holdMs = 0;
    smtp.holdMs = 0;
    await running.done; // the sweep the kill interrupted ends on the new worker
    // Sweeps until everything is delivered (the killed sweep may have left deliveries unstarted).
    const until = Date.now() + 120_000;
    for (;;) {
      await json(['notifications', 'sweep']);
      const { rows } = await cf.pool.query(
        "SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE n.type = 'certificate.expiring' AND n.data->>'subject' LIKE 'CN=kill-%')::int AS kill FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id",
      );
      if (rows[0].pending === 0 && rows[0].kill === 5 * 3) break;
      if (Date.now() > until) throw new Error(`still ${rows[0].pending} pending`);
      await sleep(1000);
    }
    const killed = hooks.received.slice(receivedBefore).filter((e) => e.path === '/ok');
    // Each receiver accepted each notice exactly once, over the whole test.
    const count = (ids: string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());
    const hookCounts = count(hooks.accepted.filter((e) => e.path === '/ok').map((e) => e.id));
    assert.deepEqual(
      [...hookCounts.values()].filter((n) => n !== 1),
      [],
      'a notice accepted twice by the webhook',
    );
    const mailCounts = count(smtp.accepted.map((m) => `${m.notice} ${m.to.join(',')}`));
    assert.deepEqual(
      [...mailCounts.values()].filter((n) => n !== 1),
      [],
      'a notice accepted twice by the mail server',
    );
    const { rows } = await cf.pool.query(
      "SELECT id FROM notices WHERE type = 'certificate.expiring' AND data->>'subject' LIKE 'CN=kill-%'",
    );
    for (const r of rows) assert.equal(hookCounts.get(r.id), 1, r.id);
    // The kill cut a delivery off, and that one was sent again.
    const cutOff = killed.filter((e) => killed.filter((x) => x.id === e.id).length > 1);
    assert.ok(cutOff.length > 0, `the kill interrupted a delivery (received: ${killed.map((e) => e.id).join(', ')})`);
  });

  it(
    "Settings -> Notifications: Administrators see dead letters, send a test, retry; others can't",
    { skip: toolsSkip(CHROMIUM) },
    async () => {
      // Console users with roles are made on the CA host.
      for (const [name, role] of [
        ['n-admin', 'admin'],
        ['n-officer', 'officer'],
      ]) {
        const r = await cf.cli(['users', 'add', '--name', name!, '--role', role!, '--password', '-'], { input: `${PASSWORD}\n` });
        assert.equal(r.code, 0, r.stderr);
      }
      const api = new AdminClient(cf.adminPort, await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8'));
      const officer = await api.login('n-officer', PASSWORD);
      assert.equal((await api.call('GET', '/admin/api/v1/notifications', officer)).status, 403);
      assert.equal((await api.call('POST', '/admin/api/v1/notifications/test', { ...officer, body: { channel: 'webhook' } })).status, 403);
      const settings = await api.call('GET', '/admin/api/v1/notifications', await api.login('n-admin', PASSWORD));
      assert.equal(settings.status, 200);
      assert.doesNotMatch(settings.text, new RegExp(`${SECRET}|mail password|mail%20password`), 'no secret is shown');

      const browser = await chromium.launch({
        executablePath: requireTool(CHROMIUM),
        headless: true,
        args: chromiumArgs(await readFile(join(cf.home, 'tls', 'admin.pem'), 'utf8')),
      });
      try {
        const page = await (await browser.newContext()).newPage();
        page.on('dialog', (d) => void d.accept());
        await page.goto(`https://localhost:${cf.adminPort}/settings`);
        await consoleLogin(page, 'n-admin', PASSWORD, (u) => u.pathname === '/settings');
        await Promise.all([page.waitForURL(/\/settings\/notifications$/), page.click('#notifications-link')]);
        const dead = (await cf.pool.query("SELECT count(*)::int AS n FROM notice_deliveries WHERE status = 'dead'")).rows[0].n as number;
        assert.ok(dead >= 4);
        assert.equal(await page.locator('#dead-letters tbody tr').count(), dead);
        await page.click('#test-webhook button[type="submit"]');
        await page.waitForFunction(
          () =>
            /test (FAILED|delivered)/.test(
              (
                globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }
              ).document.getElementById('flash')?.textContent ?? '',
            ),
          undefined,
          { timeout: 60_000 },
        );
        assert.match((await page.textContent('#flash')) ?? '', new RegExp(`test FAILED for ${hooks.url('/fail').replace(/\./g, '\\.')}`));
        // The receiver is fixed: a dead letter is retried from the page and goes through.
        hooks.failing = false;
        const first = await page.locator('#dead-letters tbody tr:first-child form').getAttribute('data-api');
        const deliveryId = decodeURIComponent(/deliveries\/([^/]+)\/retry/.exec(first ?? '')![1]!);
        await page.click('#dead-letters tbody tr:first-child button[type="submit"]');
        const until = Date.now() + 60_000;
        while ((await cf.pool.query('SELECT status FROM notice_deliveries WHERE id = $1', [deliveryId])).rows[0].status !== 'delivered') {
          if (Date.now() > until) throw new Error(`delivery ${deliveryId} was not delivered after the retry`);
          await sleep(250);
        }
        const { rows } = await cf.pool.query(
          "SELECT action FROM audit_log WHERE action LIKE 'notifications.%' AND actor = 'user:n-admin' ORDER BY seq",
        );
        assert.deepEqual(
          rows.map((r) => r.action),
          ['notifications.test', 'notifications.retry'],
        );
      } finally {
        await browser.close();
      }
    },
  );

  it(
    'records the histories of the notification workflows for the replay tests (CERTFLOW_RECORD_HISTORIES=1)',
    { skip: process.env.CERTFLOW_RECORD_HISTORIES !== '1' },
    async () => {
      await withTemporal(async (client) => {
        const dir = fileURLToPath(new URL('../replay/histories/', import.meta.url));
        const find = async (query: string) => {
          for await (const w of client.workflow.list({ query })) return w.workflowId;
          throw new Error(`no workflow for ${query}`);
        };
        const { rows } = await cf.pool.query(
          "SELECT id, status FROM notice_deliveries WHERE status IN ('delivered', 'dead') ORDER BY status",
        );
        const delivered = rows.find((r) => r.status === 'delivered')!.id;
        const dead = rows.find((r) => r.status === 'dead')!.id;
        const histories: Array<[string, string]> = [
          [`notify-${delivered}`, 'notification-delivered'],
          [`notify-${dead}`, 'notification-dead-lettered'],
          [await find(`WorkflowType = 'notificationTestWorkflow' AND TaskQueue = '${cf.env.CERTFLOW_TASK_QUEUE}'`), 'notification-test'],
        ];
        for (const [workflowId, name] of histories) {
          await writeFile(join(dir, `${name}.json`), historyToJSON(await client.workflow.getHandle(workflowId).fetchHistory()) + '\n');
        }
        // Sweeps: one that started deliveries, one that found a delivery's workflow already running.
        const sweeps: Array<{ json: string; started: number; failed: number }> = [];
        for await (const w of client.workflow.list({
          query: `WorkflowType = 'notificationSweepWorkflow' AND TaskQueue = '${cf.env.CERTFLOW_TASK_QUEUE}'`,
        })) {
          const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
          const json = historyToJSON(history);
          const count = (t: string) => json.split(t).length - 1;
          sweeps.push({
            json,
            started: count('EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED'),
            failed: count('EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED'),
          });
        }
        const most = sweeps.sort((a, b) => b.started - a.started)[0]!;
        await writeFile(join(dir, 'notification-sweep.json'), most.json + '\n');
        const already = sweeps.find((x) => x.failed > 0);
        if (already) await writeFile(join(dir, 'notification-sweep-already-started.json'), already.json + '\n');
      });
    },
  );
});
