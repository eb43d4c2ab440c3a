/**
 * Attacks on the console's login (issue 16, item 7):
 *
 * 1. An open redirect: a link to /login?next=/\evil.example (a browser reads "/\" as "//",
 *    another host) sends the user elsewhere right after a successful login — with curl, the
 *    page's redirect target; with chromium, where the browser ends up.
 * 2. Parallel password guessing: the throttle was read before the slow password check and
 *    counted after it, so N guesses sent at once all reached the check. Now at most the
 *    limit (5 per user name) reach it; the others are refused with 429 without a check.
 * 3. Log flooding: every throttled attempt wrote an audit entry. Now the lock is audited
 *    once, and the refused attempts are reported in one entry with their exact number.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { AdminClient, CHROMIUM, chromiumArgs } from '../helpers/admin.ts';
import { requireTool, toolsSkip } from '../helpers/tools.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const PASSWORD = 'the right password';
const LOCK_SECONDS = 25;

describe('attack: the console login', () => {
  let cf: TestInstance;
  let api: AdminClient;
  let base: string;
  let root: string;

  before(async () => {
    cf = await createInstance({ CERTFLOW_CONFIG: '' });
    await writeFile(
      join(cf.home, 'config.json'),
      JSON.stringify({ authFailures: { perConsoleUser: { maxFailures: 5, windowSeconds: 900, lockSeconds: LOCK_SECONDS } } }),
    );
    await cf.startWorker();
    await cf.startAdmin();
    root = join(cf.home, 'ca', 'root.pem');
    api = new AdminClient(cf.adminPort, await readFile(root, 'utf8'));
    base = `https://localhost:${cf.adminPort}`;
    for (const name of ['alice', 'bob']) {
      const r = await cf.cli(['users', 'add', '--name', name, '--role', 'auditor', '--password', '-'], { input: `${PASSWORD}\n` });
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => cf?.cleanup());

  const HOSTILE = ['/\\evil.example', '//evil.example/x', '/\t/evil.example', '/\\/evil.example', 'https://evil.example/'];

  it('the login page redirects only to paths of the console (curl)', async () => {
    for (const next of [...HOSTILE, '/certificates?state=active']) {
      const r = await runTool('curl', [
        '-sS',
        '--cacert',
        root,
        '-H',
        'Accept: text/html',
        `${base}/login?next=${encodeURIComponent(next)}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const then = /id="login"[^>]*data-then="([^"]*)"|data-then="([^"]*)"[^>]*id="login"/.exec(r.stdout);
      assert.ok(then, `the login form of ${JSON.stringify(next)}`);
      const target = (then[1] ?? then[2])!.replace(/&amp;/g, '&');
      if (next.startsWith('/certificates')) assert.equal(target, next, 'a local target is kept');
      else assert.equal(target, '/', `${JSON.stringify(next)} is not followed`);
    }
  });

  it('a browser that logs in from /login?next=/\\evil.example stays on the console', { skip: toolsSkip(CHROMIUM) }, async () => {
    const browser = await chromium.launch({
      executablePath: requireTool(CHROMIUM),
      headless: true,
      args: [...chromiumArgs(await readFile(join(cf.home, 'tls', 'admin.pem'), 'utf8')), '--host-resolver-rules=MAP * 127.0.0.1'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/login?next=${encodeURIComponent('/\\evil.example')}`);
      await page.fill('#login input[name="name"]', 'bob');
      await page.fill('#login input[name="password"]', PASSWORD);
      await page.click('#login button[type="submit"]');
      await page.waitForURL((u) => u.pathname === '/' || u.hostname !== 'localhost', { timeout: 30_000 }).catch(() => {});
      await sleep(500);
      const url = new URL(page.url());
      assert.equal(url.host, `localhost:${cf.adminPort}`, `after the login the browser is at ${page.url()}`);
    } finally {
      await browser.close();
    }
  });

  async function auditCount(where: string, values: unknown[] = []): Promise<number> {
    const { rows } = await cf.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE ${where}`, values);
    return rows[0].n;
  }

  it('20 guesses sent at once: at most 5 reach the password check, the rest are refused (429) unchecked', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => api.login('alice', `wrong guess ${i}`)));
    const statuses = results.map((r) => r.response.status);
    const checked = statuses.filter((s) => s === 401).length;
    const refused = statuses.filter((s) => s === 429).length;
    assert.equal(checked + refused, 20, JSON.stringify(statuses));
    assert.ok(checked <= 5, `${checked} guesses reached the password check (limit 5): ${JSON.stringify(statuses)}`);
    assert.ok(refused >= 15);
    for (const r of results.filter((x) => x.response.status === 429)) {
      assert.ok(Number(r.response.headers['retry-after']) >= 1, 'Retry-After');
      assert.equal(r.response.json.error.rule, 'auth.throttled');
    }
    // Every checked guess is audited as a failed login; no more.
    assert.equal(await auditCount("action = 'auth.login' AND object = 'alice' AND result = 'failed'"), checked);
    const right = await api.login('alice', PASSWORD);
    assert.equal(right.response.status, 429, 'locked: even the right password waits');
    assert.equal((await api.login('bob', PASSWORD)).response.status, 200, 'another user of the same address is not locked out');
  });

  it('throttled attempts do not flood the audit log: the lock is audited once, the refusals reported in one entry', async () => {
    const before = await auditCount('true');
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const r = await api.login('alice', `flood ${i}`);
      assert.equal(r.response.status, 429);
      refused++;
    }
    assert.equal(await auditCount('true'), before, '40 refused attempts, no audit entry each');
    const lockouts = await cf.pool.query(
      "SELECT result, details FROM audit_log WHERE action = 'auth.lockout' AND object = 'console:user:alice'",
    );
    assert.equal(lockouts.rows.length, 1, 'one entry for the lock');
    assert.equal(lockouts.rows[0].result, 'denied');

    // After the lock, the next attempt reports how many were refused, exactly.
    await sleep(LOCK_SECONDS * 1000 + 1000);
    const ok = await api.login('alice', PASSWORD);
    assert.equal(ok.response.status, 200, ok.response.text);
    const { rows } = await cf.pool.query("SELECT details FROM audit_log WHERE action = 'auth.throttled' AND object = 'console:user:alice'");
    assert.equal(rows.length, 1);
    const refusedInBurst = 20 - (await auditCount("action = 'auth.login' AND object = 'alice' AND result = 'failed'"));
    assert.equal(rows[0].details.refused, refusedInBurst + 1 + refused, 'the burst, the right password while locked, and the flood');
  });
});
