/**
 * The Temporal UI behind the console (what `certflow cluster` runs): the Temporal UI server
 * built from the Go module proxy, on loopback, against this run's Temporal, and the console
 * with CERTFLOW_TEMPORAL_UI_PROXY pointing at it. In Debian's chromium an auditor logs in,
 * opens the requests page, follows a request's workflow link and sees the workflow's
 * history; without a session (browser, curl, fetch) and with an API token the UI is not
 * reachable; roles that may only look get no actions, the officer may cancel (audited),
 * and the UI's other write actions are refused for everyone.
 *
 * Needs the UI server built (`npm run cluster -- build`, which .ci/run does where Go is
 * installed); without Go and without a build the suite is skipped, saying so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../../src/core/net.ts';
import { findTemporalUi, TEMPORAL_UI_VERSION } from '../../src/temporal/server-build.ts';
import { spawnTemporalUiServer, type TemporalUiHandle } from '../../src/temporal/ui-server.ts';
import { AdminClient, CHROMIUM, chromiumArgs, type Credentials } from '../helpers/admin.ts';
import { consoleLogin, cspViolations, followWorkflowLink, watchErrors } from '../helpers/temporal-ui.ts';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { temporalAddress } from '../helpers/stack.ts';
import { temporalBuildDir, temporalBuildSkip } from '../helpers/temporal.ts';
import { requireTool, toolsSkip } from '../helpers/tools.ts';

const buildDir = temporalBuildDir;
const ui = await findTemporalUi(buildDir);
const uiSkip = toolsSkip(CHROMIUM) || (await temporalBuildSkip(Boolean(ui), `the Temporal UI server ${TEMPORAL_UI_VERSION}`));

const PASSWORD = 'temporal ui test password';
const ROLES = ['auditor', 'officer', 'operator'] as const;

describe('Temporal UI behind the console', { skip: uiSkip }, () => {
  let cf: TestInstance;
  let uiServer: TemporalUiHandle | undefined;
  let browser: Browser;
  let base: string;
  let api: AdminClient;
  let workflowId: string;
  const sessions = new Map<string, Credentials>();
  const consoleErrors: string[] = [];

  before(async () => {
    if (!ui)
      throw new Error(`Go is installed but the Temporal UI server is not built in ${buildDir}: .ci/run runs \`npm run cluster -- build\``);
    const port = await freePort();
    cf = await createInstance({ CERTFLOW_TEMPORAL_UI_PROXY: `http://127.0.0.1:${port}` });
    uiServer = await spawnTemporalUiServer({
      binary: ui,
      config: { temporalAddress: temporalAddress(), host: '127.0.0.1', port, namespace: 'default' },
      dir: join(cf.home, 'temporal-ui'),
      logFile: join(cf.home, 'temporal-ui.log'),
    });
    await cf.startWorker();
    await cf.startAdmin();
    base = `https://localhost:${cf.adminPort}`;
    const ca = await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8');
    api = new AdminClient(cf.adminPort, ca);
    // Console users with roles are made on the CA host (`certflow users add`).
    for (const role of ROLES) {
      const added = await cf.cli(['users', 'add', '--name', `u-${role}`, '--role', role, '--password', '-'], { input: `${PASSWORD}\n` });
      assert.equal(added.code, 0, added.stderr);
      const s = await api.login(`u-${role}`, PASSWORD);
      assert.equal(s.response.status, 200, s.response.text);
      sessions.set(role, s);
    }
    // An API token of a role that may look at requests: still no way into the UI.
    const made = await cf.cli(['--json', 'tokens', 'create', '--name', 'ui-script', '--user', 'u-auditor']);
    assert.equal(made.code, 0, made.stderr);
    sessions.set('token', { token: JSON.parse(made.stdout).token as string });
    const csr = await opensslCsr(cf.home, 'looked-at', { subj: '/CN=looked-at.example.test', san: 'DNS:looked-at.example.test' });
    const issued = await cf.cli(['--json', 'cert', 'issue', '--csr', csr]);
    assert.equal(issued.code, 0, issued.stderr);
    workflowId = JSON.parse(issued.stdout).workflowId as string;
    assert.ok(workflowId, issued.stdout);
    browser = await chromium.launch({
      executablePath: requireTool(CHROMIUM),
      headless: true,
      args: chromiumArgs(await readFile(join(cf.home, 'tls', 'admin.pem'), 'utf8')),
    });
  });
  after(async () => {
    await browser?.close();
    await uiServer?.stop();
    await cf?.cleanup();
  });

  /**
   * A call to the UI's API as the UI's own JavaScript makes it: the session cookie, and for
   * writes the UI server's CSRF cookie (_csrf, set by its first answer) echoed in X-CSRF-Token.
   */
  async function uiCall(method: string, path: string, who: Credentials, more: { headers?: Record<string, string> } = {}) {
    const first = await api.call('GET', '/temporal/api/v1/settings', { cookie: who.cookie });
    const set = ([] as string[]).concat(first.headers['set-cookie'] ?? []).find((c) => c.startsWith('_csrf='));
    const csrf = set ? set.split(';')[0]!.slice('_csrf='.length) : '';
    return api.call(method, path, {
      cookie: `${who.cookie}; _csrf=${csrf}`,
      body: method === 'GET' ? undefined : {},
      headers: { 'X-CSRF-Token': csrf, ...more.headers },
    });
  }

  const historyPath = () => `/temporal/api/v1/namespaces/default/workflows/${encodeURIComponent(workflowId)}/history`;
  const actionPath = (action: string) => `/temporal/api/v1/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${action}`;

  it('is not reachable without a console session: curl, fetch and API tokens are refused', async () => {
    // curl without a session: the UI page sends to the login page, the UI's API answers 401.
    const page = await runTool('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{redirect_url}',
      '--cacert',
      join(cf.home, 'ca', 'root.pem'),
      `${base}/temporal/`,
    ]);
    assert.match(page.stdout, /^302 https:\/\/localhost:\d+\/login\?next=%2Ftemporal%2F$/);
    const history = await runTool('curl', [
      '-s',
      '-w',
      '\n%{http_code}',
      '--cacert',
      join(cf.home, 'ca', 'root.pem'),
      `${base}${historyPath()}`,
    ]);
    assert.match(history.stdout, /\n401$/);
    assert.doesNotMatch(history.stdout, /WorkflowExecutionStarted|EVENT_TYPE/);
    for (const path of ['/temporal/api/v1/settings', historyPath(), '/temporal/_app/version.json']) {
      const r = await api.call('GET', path);
      assert.equal(r.status, 401, `${path}: ${r.text}`);
      const withToken = await api.call('GET', path, sessions.get('token'));
      assert.equal(withToken.status, 401, `${path} with an API token: ${withToken.text}`);
      assert.equal(withToken.json?.error?.rule, 'temporalUi.token');
    }
    const forged = await api.call('GET', historyPath(), { cookie: `__Host-certflow_session=${'A'.repeat(43)}` });
    assert.equal(forged.status, 401);
  });

  it('an auditor logs in, opens a request, follows its workflow link and sees its history', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    watchErrors(page, consoleErrors);
    // Straight to the UI: the login page first, then back to the UI.
    await page.goto(`${base}/temporal/namespaces/default/workflows`);
    await consoleLogin(page, 'u-auditor', PASSWORD, (u) => u.pathname.startsWith('/temporal/'));

    await page.goto(`${base}/requests`);
    const link = page.locator(`#enrollments a.workflow:text-is("${workflowId}")`);
    assert.equal(await link.getAttribute('href'), `/temporal/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const ui = await followWorkflowLink(
      context,
      link,
      { workflowId, workflowType: 'enrollmentWorkflow', screenshot: 'temporal-ui-history' },
      consoleErrors,
    );
    // The auditor's UI offers no actions: the settings say so.
    const settings = (await ui.evaluate(async () => (await fetch('/temporal/api/v1/settings')).json())) as { DisableWriteActions: boolean };
    assert.equal(settings.DisableWriteActions, true);
    // And a write the UI would send is refused by the console, whatever the UI shows.
    const status = await ui.evaluate(async (path) => {
      const csrf = /(?:^|; )_csrf=([^;]+)/.exec((globalThis as unknown as { document: { cookie: string } }).document.cookie)?.[1] ?? '';
      const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{}' });
      return r.status;
    }, actionPath('terminate'));
    assert.equal(status, 403);
    assert.deepEqual(cspViolations(consoleErrors), [], 'no CSP violations in the UI');
    await context.close();
  });

  it('only roles that may act get actions; the UI writes that bypass certflow are refused for everyone', async () => {
    const auditor = sessions.get('auditor')!;
    const officer = sessions.get('officer')!;
    const operator = sessions.get('operator')!;
    // The history is there for the roles that may see requests, not for the operator.
    const seen = await api.call('GET', historyPath(), auditor);
    assert.equal(seen.status, 200, seen.text);
    assert.match(seen.text, /WORKFLOW_EXECUTION_STARTED/);
    const operatorSees = await api.call('GET', historyPath(), operator);
    assert.equal(operatorSees.status, 403);
    assert.equal(operatorSees.json.error.rule, 'rbac');

    const officerSettings = await api.call('GET', '/temporal/api/v1/settings', officer);
    assert.equal(officerSettings.json.DisableWriteActions, false);
    assert.equal(officerSettings.json.StartWorkflowDisabled, true, 'starting workflows is disabled in the UI itself');
    assert.equal(officerSettings.json.WorkflowSignalDisabled, true);

    // A workflow that waits forever (no worker polls its queue): the auditor may not
    // terminate it, the officer may, and Temporal then says it is terminated.
    const connection = await Connection.connect({ address: temporalAddress() });
    const client = new Client({ connection });
    const stray = await client.workflow.start('strayWorkflow', { taskQueue: `nobody-${Date.now()}`, workflowId: `stray-${Date.now()}` });
    const terminatePath = `/temporal/api/v1/namespaces/default/workflows/${encodeURIComponent(stray.workflowId)}/terminate`;
    try {
      const auditorTerminates = await uiCall('POST', terminatePath, auditor);
      assert.equal(auditorTerminates.status, 403);
      assert.equal(auditorTerminates.json.error.rule, 'rbac');
      assert.equal((await stray.describe()).status.name, 'RUNNING');
      const officerTerminates = await uiCall('POST', terminatePath, officer);
      assert.equal(officerTerminates.status, 200, officerTerminates.text);
      assert.equal((await stray.describe()).status.name, 'TERMINATED');
    } finally {
      await connection.close();
    }

    // Start, signal, Update, reset, activity completion, batch: refused for every role.
    const starts = [
      `/temporal/api/v1/namespaces/default/workflows/${encodeURIComponent('key-recovery-x')}`,
      actionPath('signal/authzChanged'),
      actionPath('update/decide'),
      actionPath('reset'),
      `/temporal/api/v1/namespaces/default/workflows/${encodeURIComponent(workflowId)}/activities/1/complete`,
      '/temporal/api/v1/namespaces/default/batch-operations',
      '/temporal/api/v1/namespaces/default/schedules/x',
    ];
    for (const path of starts) {
      const r = await uiCall('POST', path, officer);
      assert.equal(r.status, 403, `${path}: ${r.text}`);
      assert.equal(r.json.error.rule, 'temporalUi.action', path);
    }
    // Paths that try to walk out of the segment they are checked as.
    for (const path of [`${actionPath('cancel')}/..%2Freset`, '/temporal/api/v1/namespaces/default/workflows/x/../y/cancel']) {
      const r = await uiCall('POST', path, officer);
      assert.ok([400, 403].includes(r.status), `${path}: ${r.status}`);
    }
    const cross = await uiCall('POST', actionPath('cancel'), officer, { headers: { Origin: 'https://evil.example' } });
    assert.equal(cross.status, 403);

    const { rows } = await cf.pool.query<{ action: string; actor: string; object: string; result: string }>(
      "SELECT action, actor, object, result FROM audit_log WHERE action LIKE 'temporal-ui.%' ORDER BY seq",
    );
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor, r.object]),
      [['temporal-ui.terminate', 'user:u-officer', stray.workflowId]],
    );
    const denied = await cf.pool.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'access.denied' AND object LIKE '% /temporal/%'",
    );
    assert.ok(denied.rows[0].n >= starts.length + 2, `refusals audited: ${denied.rows[0].n}`);
  });
});
