/**
 * Stuck means the same everywhere (issue 21). One request of each protocol stalls on a
 * real fault: an EST label and a CMP alias whose issuing CA does not exist (curl and
 * `openssl cmp` as the devices), and an ACME order (acme-client, http-01) finalized while
 * the SoftHSM token holding the CA keys is gone. Then the CLI (`requests list --stuck`,
 * `orders list --stuck`), the admin API, the console in chromium (dashboard and requests
 * page) and /metrics list exactly the same set, each entry with why, since when, its
 * workflow linked to the Temporal UI and the actions the viewer's role allows. Once the
 * faults are fixed, a retry from each surface (the CLI for the order, the API for the EST
 * request, the console's button for the CMP transaction) signs them and each leaves every
 * list; the CMP certificate then waits for its client's certConf, listed apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  authorizeHttp01,
  csrFor,
  eventually,
  newAccount,
  startAcmeStack,
  startHttp01Responder,
  waitValid,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { AdminClient, artifactsDir, CHROMIUM, chromiumArgs, type Credentials } from '../helpers/admin.ts';
import { newKey, opensslCmp, output, type CmpPeer } from '../helpers/cmp.ts';
import { estDevice } from '../helpers/est.ts';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../helpers/softhsm.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';
import { CHALLTESTSRV, requireTool, toolsSkip } from '../helpers/tools.ts';

const PASSWORD = 'stuck test password';
const TEMPORAL_UI = 'http://127.0.0.1:9/temporal-ui';
const skip = softHsmSkip() || toolsSkip(CHALLTESTSRV, CHROMIUM);

interface Stuck {
  id: string;
  kind: string;
  protocol: string;
  state: string;
  reason: string;
  since: string;
  why: string;
  workflow: string;
  workflowUrl: string | null;
  actions: string[];
}

/** The little of the DOM the page functions use (the project compiles without the DOM library). */
interface BrowserElement {
  getAttribute(name: string): string | null;
}

describe('stuck requests: one set on every surface', { skip }, () => {
  let token: SoftHsmToken;
  let stack: AcmeStack;
  let responder: Http01Responder;
  let api: AdminClient;
  let officer: Credentials;
  let auditor: Credentials;
  let browser: Browser;
  let page: Page;
  let connection: Connection;
  let temporal: Client;
  let tokenDir = '';
  let shots = '';
  const ids = { acme: '', est: '', cmp: '' };
  let cmpClient: ReturnType<typeof opensslCmp> | undefined;
  let cmpOutput = '(running)';

  before(async () => {
    token = await createSoftHsmToken({ label: 'certflow-stuck' });
    stack = await startAcmeStack({
      config: {
        est: { labels: [{ name: 'nowhere', profile: 'device', caName: 'no-such-ca' }] },
        cmp: { aliases: [{ name: 'nowhere', caName: 'no-such-ca' }] },
        // Stalled requests wait for the operator: their own next attempt is an hour away.
        issuance: { faultRetryInitialSeconds: 3600, faultRetryMaxSeconds: 3600 },
        stuck: { acme: { processingSeconds: 3 } },
      },
      env: { ...token.env, CERTFLOW_KEY_PASSPHRASE: '', CERTFLOW_EST_WAIT_SECONDS: '1', CERTFLOW_TEMPORAL_UI_URL: TEMPORAL_UI },
    });
    const cf = stack.cf;
    responder = await startHttp01Responder(stack.http01Port);
    await cf.startAdmin();
    api = new AdminClient(cf.adminPort, stack.rootPem);
    for (const [name, role] of [
      ['u-officer', 'officer'],
      ['u-auditor', 'auditor'],
    ]) {
      const add = await cf.cli(['users', 'add', '--name', name!, '--role', role!, '--password', '-'], { input: `${PASSWORD}\n` });
      assert.equal(add.code, 0, add.stderr);
    }
    officer = await api.login('u-officer', PASSWORD);
    auditor = await api.login('u-auditor', PASSWORD);
    assert.ok(officer.cookie && auditor.cookie);
    const est = await cf.cli(['est-client', 'add', '--name', 'device-est', '--password', PASSWORD]);
    assert.equal(est.code, 0, est.stderr);
    const cmp = await cf.cli(['cmp-client', 'add', '--ref', 'device-cmp', '--secret', '-'], { input: `${PASSWORD}\n` });
    assert.equal(cmp.code, 0, cmp.stderr);
    connection = await Connection.connect({ address: temporalAddress() });
    temporal = new Client({ connection, namespace: temporalNamespace() });

    browser = await chromium.launch({
      executablePath: requireTool(CHROMIUM),
      headless: true,
      args: chromiumArgs(await readFile(join(cf.home, 'tls', 'admin.pem'), 'utf8')),
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(`https://localhost:${cf.adminPort}/login`);
    await page.fill('#login input[name="name"]', 'u-officer');
    await page.fill('#login input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.click('#login button[type="submit"]')]);
    shots = artifactsDir('stuck');
  });
  after(async () => {
    await browser?.close();
    await connection?.close();
    await responder?.close();
    if (tokenDir) await rename(join(token.dir, 'away'), join(token.dir, 'tokens', tokenDir)).catch(() => {});
    await stack?.stop();
    await token?.cleanup();
  });

  const cli = async (...args: string[]) => {
    const r = await stack.cf.cli(['--json', ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const apiGet = async (path: string, who: Credentials = officer) => {
    const r = await api.call('GET', `/admin/api/v1${path}`, who);
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  /** The request ids the console's table lists (dashboard or requests page). */
  const consoleIds = async (path: string, table: string) => {
    await page.goto(`https://localhost:${stack.cf.adminPort}${path}`);
    await page.waitForSelector('body[data-ready="1"]');
    return page.$$eval(`#${table} [data-request-id]`, (els) =>
      els.map((e) => (e as unknown as BrowserElement).getAttribute('data-request-id')!),
    );
  };
  /** certflow_requests_stuck / _waiting samples with a non-zero value: "protocol reason" -> count. */
  const gauges = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${stack.cf.httpPort}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(new RegExp(`^${name}\\{protocol="(\\w+)",(?:reason|on)="([\\w-]+)"\\} (\\d+)$`, 'gm')))
      if (Number(m[3])) out[`${m[1]} ${m[2]}`] = Number(m[3]);
    return out;
  };
  const sorted = (xs: string[]) => [...xs].sort();

  it('one request of each protocol stalls: the CLI, the admin API, the console and /metrics list the same three', async () => {
    const { client } = await newAccount(stack.directoryUrl());
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'stuck.example.test' }] });
    await authorizeHttp01(client, order, responder);
    const ready = await waitValid(client, order);
    ids.acme = order.url.split('/').pop()!;

    // The CA keys' token goes away; the order is finalized meanwhile.
    [tokenDir] = readdirSync(join(token.dir, 'tokens'));
    await rename(join(token.dir, 'tokens', tokenDir!), join(token.dir, 'away'));
    const finalized = await client.finalizeOrder(ready, (await csrFor(['stuck.example.test'])).csr);
    assert.equal(finalized.status, 'processing');

    // A device enrolls over EST at the label whose CA does not exist: 202, come back later.
    const device = estDevice(stack.cf.home, `https://localhost:${stack.cf.httpsPort}/.well-known/est`, stack.root, stack.chain);
    const enrolled = await device.curl('/nowhere/simpleenroll', {
      data: await device.csrBody('est-stuck', '/CN=est-stuck'),
      user: `device-est:${PASSWORD}`,
    });
    assert.equal(enrolled.status, 202, enrolled.body.toString());

    // And one over CMP at the alias whose CA does not exist; openssl polls until it gives up.
    const peer: CmpPeer = { server: `127.0.0.1:${stack.cf.httpPort}`, dir: stack.cf.home, root: stack.root };
    const key = await newKey(peer, 'cmp-stuck');
    cmpClient = opensslCmp(
      peer,
      [
        ...['-cmd', 'ir', '-ref', 'device-cmp', '-secret', `pass:${PASSWORD}`, '-newkey', key, '-subject', '/CN=cmp-stuck'],
        ...['-trusted', stack.root, '-certout', 'cmp-stuck.pem', '-msg_timeout', '10', '-total_timeout', '15'],
      ],
      { alias: 'nowhere' },
    );
    void cmpClient.then((r) => (cmpOutput = output(r)));

    const cliStuck = await eventually('three stuck requests in `certflow requests list --stuck`', 60_000, async () => {
      const list = (await cli('requests', 'list', '--stuck')) as Stuck[];
      if (list.length !== 3)
        throw new Error(`listed: ${JSON.stringify(list.map((e) => `${e.protocol} ${e.state} ${e.why}`))}; openssl cmp: ${cmpOutput}`);
      return list;
    });
    const by = Object.fromEntries(cliStuck.map((e) => [e.protocol, e])) as Record<'acme' | 'est' | 'cmp', Stuck>;
    assert.deepEqual(sorted(Object.keys(by)), ['acme', 'cmp', 'est']);
    ids.est = by.est.id;
    ids.cmp = by.cmp.id;
    assert.equal(by.acme.id, ids.acme);
    assert.deepEqual(cliStuck.map((e) => `${e.protocol} ${e.kind} ${e.state} ${e.reason}`).sort(), [
      'acme order processing processing',
      'cmp request stalled stalled',
      'est request stalled stalled',
    ]);
    // Why, since when, the workflow (and its Temporal UI page), the commands that act on it.
    assert.match(by.est.why, /config: unknown issuing CA "no-such-ca"/);
    assert.match(by.cmp.why, /config: unknown issuing CA "no-such-ca"/);
    assert.match(by.acme.why, /PKCS#11 token "certflow-stuck" is not available/);
    for (const e of cliStuck) {
      assert.ok(Date.parse(e.since) <= Date.now() && Date.now() - Date.parse(e.since) < 300_000, `${e.id} since ${e.since}`);
      assert.equal(e.workflowUrl, `${TEMPORAL_UI}/namespaces/${temporalNamespace()}/workflows/${encodeURIComponent(e.workflow)}`);
    }
    assert.equal(by.acme.workflow, `acme-order-${ids.acme}`);
    assert.match(by.est.workflow, /^est-/);
    assert.equal(by.cmp.workflow, ids.cmp);
    assert.deepEqual(by.acme.actions, [`certflow orders retry ${ids.acme}`]);
    assert.deepEqual(by.est.actions, [`certflow requests retry ${ids.est}`]);
    const all = sorted(Object.values(ids));

    // `orders list --stuck`: the same definition, ACME only.
    assert.deepEqual(
      ((await cli('orders', 'list', '--stuck')) as Stuck[]).map((e) => e.id),
      [ids.acme],
    );

    // The admin API: the same set; actions only for a role that may use them.
    const fromApi = (await apiGet('/requests/stuck')) as Array<{
      id: string;
      why: string;
      actions: Array<{ action: string; path: string }>;
    }>;
    assert.deepEqual(sorted(fromApi.map((e) => e.id)), all);
    const apiEst = fromApi.find((e) => e.id === ids.est)!;
    assert.match(apiEst.why, /unknown issuing CA "no-such-ca"/);
    assert.deepEqual(apiEst.actions, [
      { action: 'retry', method: 'POST', path: `/admin/api/v1/requests/enrollments/${encodeURIComponent(ids.est)}/retry` },
    ]);
    const asAuditor = (await apiGet('/requests/stuck', auditor)) as Array<{ id: string; actions: unknown[] }>;
    assert.deepEqual(sorted(asAuditor.map((e) => e.id)), all);
    assert.ok(
      asAuditor.every((e) => e.actions.length === 0),
      'an auditor may not retry',
    );
    const dashboard = await apiGet('/dashboard');
    assert.equal(dashboard.stuck.count, 3);
    assert.deepEqual(sorted(dashboard.stuck.requests.map((e: { id: string }) => e.id)), all);
    const orders = (await apiGet('/requests/orders?stuck=true')) as Array<{ id: string; stuckReason: string }>;
    assert.deepEqual(
      orders.map((o) => `${o.id} ${o.stuckReason}`),
      [`${ids.acme} processing`],
    );
    const enrollments = (await apiGet('/requests/enrollments?stuck=true')) as Array<{ id: string }>;
    assert.deepEqual(sorted(enrollments.map((e) => e.id)), sorted([ids.est, ids.cmp]));

    // The console: the dashboard's count and list, the requests page's filter; retry buttons and Temporal UI links.
    assert.deepEqual(sorted(await consoleIds('/', 'stuck-requests')), all);
    assert.equal(await page.textContent('#stuck .n'), '3');
    await page.screenshot({ path: join(shots, 'dashboard-stuck.png'), fullPage: true });
    assert.deepEqual(sorted(await consoleIds('/requests?stuck=1', 'stuck-requests')), all);
    for (const id of all) assert.ok(await page.$(`form[id="retry-${id}"]`), `a retry button for ${id}`);
    const links = await page.$$eval('#stuck-requests a.workflow', (els) =>
      els.map((e) => (e as unknown as BrowserElement).getAttribute('href')),
    );
    assert.ok(links.includes(`${TEMPORAL_UI}/namespaces/${temporalNamespace()}/workflows/acme-order-${ids.acme}`), links.join(' '));
    assert.match((await page.textContent('#stuck-requests')) ?? '', /unknown issuing CA "no-such-ca"/);
    await page.screenshot({ path: join(shots, 'requests-stuck.png'), fullPage: true });

    // /metrics: the same counts per protocol and reason.
    assert.deepEqual(await gauges('certflow_requests_stuck'), { 'acme processing': 1, 'cmp stalled': 1, 'est stalled': 1 });
  });

  it('fixed and retried from each surface, each request leaves every list', async () => {
    // The CMP client has given up polling by now: it will not confirm the certificate.
    const gaveUp = await cmpClient!;
    assert.notEqual(gaveUp.code, 0, 'no certificate while the CA is missing');
    // The token comes back and the operator creates the missing CA (a subordinate of the root).
    await rename(join(token.dir, 'away'), join(token.dir, 'tokens', tokenDir));
    tokenDir = '';
    const created = await stack.cf.cli(['ca', 'create', '--name', 'no-such-ca', '--parent', 'certflow-root']);
    assert.equal(created.code, 0, created.stderr);

    // ACME from the CLI: the order's `retry` Update signs again at once.
    const retried = await stack.cf.cli(['orders', 'retry', ids.acme]);
    const orderNow = async () => (await cli('orders', 'show', ids.acme)).status as string;
    // The signing activity's own next attempt may have come first; then there was nothing left to retry.
    if (retried.code !== 0) assert.equal(await orderNow(), 'valid', retried.stderr);
    else assert.match(retried.stderr + retried.stdout, new RegExp(`order ${ids.acme}: signing again now`));
    // EST from the admin API, CMP from the console's retry button.
    const r = await api.call('POST', `/admin/api/v1/requests/enrollments/${encodeURIComponent(ids.est)}/retry`, officer);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.message, `request ${ids.est}: signing again now`);
    await page.goto(`https://localhost:${stack.cf.adminPort}/requests?stuck=1`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.click(`form[id="retry-${ids.cmp}"] button[type="submit"]`);

    await eventually('no stuck request in the CLI, the API, the console and /metrics', 60_000, async () => {
      const [fromCli, fromApi, fromConsole, fromMetrics] = await Promise.all([
        cli('requests', 'list', '--stuck') as Promise<Stuck[]>,
        apiGet('/requests/stuck') as Promise<Stuck[]>,
        (async () => (await consoleIds('/requests?stuck=1', 'stuck-requests')).length)(),
        gauges('certflow_requests_stuck'),
      ]);
      return fromCli.length === 0 && fromApi.length === 0 && fromConsole === 0 && Object.keys(fromMetrics).length === 0 ? true : undefined;
    });
    assert.match((await page.textContent('body')) ?? '', /No stuck requests\./);
    await page.screenshot({ path: join(shots, 'requests-none-stuck.png'), fullPage: true });
    assert.equal(await orderNow(), 'valid');
    assert.equal((await cli('requests', 'show', ids.est)).state, 'issued');
    const audited = await stack.cf.pool.query("SELECT actor FROM audit_log WHERE action = 'request.retry' ORDER BY seq");
    assert.deepEqual(
      audited.rows.map((x) => x.actor),
      ['user:u-officer', 'user:u-officer'],
      'the API and console retries are audited',
    );

    // The CMP certificate now waits for its client's certConf (openssl gave up polling): waiting, not stuck.
    const waiting = (await cli('requests', 'list', '--waiting')) as Array<{ id: string; on: string; state: string; for: string }>;
    assert.deepEqual(
      waiting.map((w) => `${w.id} ${w.state} ${w.on}`),
      [`${ids.cmp} issued client`],
    );
    const fromApi = (await apiGet('/requests/waiting?on=client')) as Array<{ id: string; seconds: number }>;
    assert.deepEqual(
      fromApi.map((w) => w.id),
      [ids.cmp],
    );
    assert.deepEqual(await gauges('certflow_requests_waiting'), { 'cmp client': 1 });
    assert.deepEqual(await consoleIds('/requests?waiting=client', 'waiting-requests'), [ids.cmp]);
    await page.screenshot({ path: join(shots, 'requests-waiting-client.png'), fullPage: true });

    if (process.env.CERTFLOW_RECORD_HISTORIES === '1') {
      const handle = temporal.workflow.getHandle(`acme-order-${ids.acme}`);
      await handle.result();
      const file = fileURLToPath(new URL('../replay/histories/acme-order-signing-retried.json', import.meta.url));
      await writeFile(file, historyToJSON(await handle.fetchHistory()) + '\n');
    }
  });
});
