/**
 * The CA expiry watch (issue 19, part 7): a CA whose remaining validity is shorter than the
 * longest profile it serves (critical: its certificates come out cut short), or will be
 * within `ca.expiryWarningDays` (warning, weeks ahead), is reported on /healthz, on the
 * console's dashboard (an Auditor's API token reads it), in `certflow ca list`, and once per
 * CA key and level in the audit log by the daily `<queue>-ca-expiry-watch` schedule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';
import { cliJson, recordHistory } from '../helpers/ca.ts';
import { withTemporal } from '../helpers/temporal.ts';

function adminGet(port: number, path: string, token: string, ca: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: 'localhost', port, path, ca, headers: { Authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: body ? JSON.parse(body) : null }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('CA expiry watch', () => {
  let cf: TestInstance;

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-expiry-${process.pid}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        ca: { expiryWarningDays: 60 },
        est: {
          labels: [
            { name: 'short', profile: 'device', caName: 'short-ca' },
            { name: 'mid', profile: 'device', caName: 'mid-ca' },
          ],
        },
      }),
    );
    cf = await createInstance({ CERTFLOW_CONFIG: configFile });
    await cf.startWorker();
    await cf.startServer();
    await cf.startAdmin();
    // The device profile is 730 days: a 90-day CA cannot cover it (critical); a 760-day one covers it, but not for 60 more days (warning).
    await cliJson(cf, ['ca', 'create', '--name', 'short-ca', '--parent', 'certflow-root', '--validity-days', '90']);
    await cliJson(cf, ['ca', 'create', '--name', 'mid-ca', '--parent', 'certflow-root', '--validity-days', '760']);
    await cliJson(cf, ['ca', 'create', '--name', 'long-ca', '--parent', 'certflow-root', '--validity-days', '3650']);
  });
  after(async () => cf?.cleanup());

  it('`ca list` names the CAs that expire too soon and why', async () => {
    const r = await cf.cli(['ca', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /critical: CA "short-ca" expires on .* \(in 89 days\); the longest profile it serves, "device", is 730 days: certificates it issues now are cut short: roll it over/,
    );
    assert.match(
      r.stderr,
      /warning: CA "mid-ca" expires on .* \(in 759 days\); the longest profile it serves, "device", is 730 days: roll it over/,
    );
    assert.doesNotMatch(r.stderr, /long-ca|certflow-root|certflow-issuing/);
    const json = await cliJson<Array<{ name: string; expiry: { level: string } | null }>>(cf, ['ca', 'list']);
    assert.deepEqual(
      json.filter((c) => c.expiry).map((c) => [c.name, c.expiry!.level]),
      [
        ['mid-ca', 'warning'],
        ['short-ca', 'critical'],
      ],
    );
  });

  it('/healthz carries the warnings (and stays healthy)', async () => {
    let health: { status: string; warnings?: string[] } = { status: '' };
    // /healthz recomputes its warnings at most once a minute.
    for (let i = 0; i < 80 && !health.warnings?.some((w) => /short-ca/.test(w)); i++) {
      if (i) await sleep(1000);
      health = (await (await fetch(`http://127.0.0.1:${cf.httpPort}/healthz`)).json()) as typeof health;
    }
    assert.equal(health.status, 'ok');
    assert.ok(
      health.warnings?.some((w) => /CA "short-ca" expires on/.test(w)),
      JSON.stringify(health),
    );
    assert.ok(health.warnings?.some((w) => /CA "mid-ca" expires on/.test(w)));
  });

  it("the console's dashboard shows them (to an Auditor's API token)", async () => {
    const add = await cf.cli(['users', 'add', '--name', 'watcher', '--role', 'auditor', '--password', '-'], {
      input: 'a long enough passphrase for the watcher\n',
    });
    assert.equal(add.code, 0, add.stderr);
    const t = await cf.cli(['tokens', 'create', '--name', 'watch', '--user', 'watcher', '--role', 'auditor']);
    assert.equal(t.code, 0, t.stderr);
    const token = t.stdout.trim();
    const root = await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8');
    const d = await adminGet(cf.adminPort, '/admin/api/v1/dashboard', token, root);
    assert.equal(d.status, 200);
    const caExpiry = (d.json as { caExpiry: Array<{ ca: string; level: string }> }).caExpiry;
    assert.deepEqual(
      caExpiry.map((w) => [w.ca, w.level]),
      [
        ['short-ca', 'critical'],
        ['mid-ca', 'warning'],
      ],
    );
  });

  it('the scheduled watch records each once in the audit log', async () => {
    const scheduleId = `${cf.env.CERTFLOW_TASK_QUEUE}-ca-expiry-watch`;
    await withTemporal(async (client) => {
      const d = await client.schedule.getHandle(scheduleId).describe();
      assert.deepEqual(
        (d.spec.intervals ?? []).map((i) => i.every),
        [86_400_000],
      );
      const run = async (id: string) =>
        client.workflow.execute('caExpiryWatchWorkflow', { workflowId: id, taskQueue: cf.env.CERTFLOW_TASK_QUEUE!, args: [] });
      const first = (await run('ca-expiry-watch-test-1')) as { warnings: number; recorded: number };
      assert.equal(first.warnings, 2);
      const second = (await run('ca-expiry-watch-test-2')) as { warnings: number; recorded: number };
      assert.deepEqual(second, { warnings: 2, recorded: 0 }, 'recorded once per CA key and level');
    });
    await recordHistory('ca-expiry-watch-test-1', 'ca-expiry-watch');
    const { rows } = await cf.pool.query("SELECT object, actor, details FROM audit_log WHERE action = 'ca.expiry' ORDER BY object");
    assert.deepEqual(
      rows.map((r) => [r.object, r.actor, r.details.level]),
      [
        ['mid-ca', 'system', 'warning'],
        ['short-ca', 'system', 'critical'],
      ],
    );
  });
});
