/**
 * The console in a real browser: Debian's headless chromium, driven by playwright-core
 * (one browser for the file, one isolated context per role). Each role logs in through the
 * login page, sees exactly its menu, does something its role allows and is refused
 * something it does not (a page and an API call from the page); the officer revokes a
 * certificate from its detail page and `openssl ocsp` and the next CRL say revoked.
 * Every page is photographed into test-artifacts/console/ (or $CERTFLOW_TEST_ARTIFACTS).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { artifactsDir, CHROMIUM, chromiumArgs } from '../helpers/admin.ts';
import { requireTool, toolsSkip } from '../helpers/tools.ts';

const ROLES = ['ca-admin', 'admin', 'officer', 'auditor', 'operator'] as const;
type Role = (typeof ROLES)[number];
const PASSWORD = 'browser test password';

/** The little of the DOM the page functions use (the project compiles without the DOM library). */
interface BrowserDocument {
  querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null } | null;
}

/** The menu each role sees (README, "Operator console"). */
const MENUS: Record<Role, string[]> = {
  'ca-admin': [
    'dashboard',
    'hierarchy',
    'keys',
    'health',
    'certificates',
    'requests',
    'approvals',
    'crls',
    'ocsp',
    'reports',
    'audit',
    'logs',
    'applications',
    'profiles',
    'users',
    'settings',
    'backup',
  ],
  admin: [
    'dashboard',
    'hierarchy',
    'keys',
    'health',
    'certificates',
    'requests',
    'approvals',
    'crls',
    'ocsp',
    'reports',
    'applications',
    'profiles',
    'settings',
  ],
  officer: [
    'dashboard',
    'hierarchy',
    'keys',
    'certificates',
    'requests',
    'approvals',
    'crls',
    'ocsp',
    'key-recovery',
    'reports',
    'profiles',
  ],
  auditor: ['dashboard', 'hierarchy', 'certificates', 'requests', 'approvals', 'crls', 'ocsp', 'reports', 'audit', 'profiles'],
  operator: ['dashboard', 'hierarchy', 'health', 'logs', 'backup'],
};

/** A page the role may not open, and an API call it may not make. */
const FORBIDDEN: Record<Role, { page: string; api: [string, string, unknown] }> = {
  'ca-admin': { page: '/key-recovery', api: ['POST', '/admin/api/v1/crls/generate', {}] },
  admin: { page: '/audit', api: ['POST', '/admin/api/v1/users', { name: 'x', role: 'auditor', password: PASSWORD }] },
  officer: { page: '/users', api: ['POST', '/admin/api/v1/applications/eab-keys', {}] },
  auditor: { page: '/settings', api: ['POST', '/admin/api/v1/crls/generate', {}] },
  operator: { page: '/certificates', api: ['GET', '/admin/api/v1/certificates', undefined] },
};

describe('console in chromium', { skip: toolsSkip(CHROMIUM) }, () => {
  let cf: TestInstance;
  let browser: Browser;
  let base: string;
  let shots: string;
  let serial: string;
  const contexts = new Map<Role, { context: BrowserContext; page: Page; errors: string[] }>();

  async function shoot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }

  async function login(role: Role): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 403/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    contexts.set(role, { context, page, errors });
    await page.goto(`${base}/`);
    assert.equal(new URL(page.url()).pathname, '/login', 'a visitor is sent to the login page');
    await page.fill('#login input[name="name"]', `u-${role}`);
    await page.fill('#login input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.click('#login button[type="submit"]')]);
    return page;
  }

  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    await cf.startServer();
    await cf.startAdmin();
    base = `https://localhost:${cf.adminPort}`;
    shots = artifactsDir('console');
    // Users come from the CLI (the root of trust: the console grants only its own permissions).
    for (const role of ROLES) {
      const r = await cf.cli(['users', 'add', '--name', `u-${role}`, '--role', role, '--password', '-'], { input: `${PASSWORD}\n` });
      assert.equal(r.code, 0, r.stderr);
    }
    // Backups are encrypted to a recipient key, which a CA Administrator sets.
    const recipient = join(cf.home, 'recipient.pem');
    await writeFile(recipient, generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const set = await cf.cli(['backup', 'recipient', 'set', recipient]);
    assert.equal(set.code, 0, set.stderr);
    const csr = await opensslCsr(cf.home, 'victim', { subj: '/CN=victim.example.test', san: 'DNS:victim.example.test' });
    const issued = await cf.cli(['--json', 'cert', 'issue', '--csr', csr, '--out', join(cf.home, 'victim.pem')]);
    assert.equal(issued.code, 0, issued.stderr);
    serial = JSON.parse(issued.stdout).serial;
    browser = await chromium.launch({
      executablePath: requireTool(CHROMIUM),
      headless: true,
      args: chromiumArgs(await readFile(join(cf.home, 'tls', 'admin.pem'), 'utf8')),
    });
  });
  after(async () => {
    await browser?.close();
    await cf?.cleanup();
  });

  for (const role of ROLES) {
    it(`${role}: logs in, sees its menu, and every page of it renders`, async () => {
      const page = await login(role);
      await page.waitForSelector('body[data-ready="1"]');
      assert.equal(await page.textContent('#who'), `u-${role} · ${await page.textContent('#role')}`);
      const menu = await page.$$eval('nav#menu a[data-menu]', (links) => links.map((a) => a.getAttribute('data-menu')));
      assert.deepEqual(menu, MENUS[role]);
      if (role === 'ca-admin')
        assert.ok(await page.evaluate(() => typeof (globalThis as unknown as { Chart?: unknown }).Chart === 'function'), 'chart.js loaded');
      for (const item of MENUS[role]) {
        const href = await page.getAttribute(`nav#menu a[data-menu="${item}"]`, 'href');
        const response = await page.goto(`${base}${href}`);
        assert.equal(response?.status(), 200, `${role} ${href}`);
        await page.waitForSelector('body[data-ready="1"]');
        // The first role that sees a page photographs it.
        if (ROLES.find((r) => MENUS[r].includes(item)) === role) await shoot(page, `${item}`);
      }
      assert.deepEqual(contexts.get(role)!.errors, [], 'no script or CSP errors');
    });
  }

  it('each role is refused a page and an API call outside its role', async () => {
    for (const role of ROLES) {
      const { page } = contexts.get(role)!;
      const { page: path, api } = FORBIDDEN[role];
      const response = await page.goto(`${base}${path}`);
      assert.equal(response?.status(), 403, `${role} ${path}`);
      assert.match((await page.textContent('#error')) ?? '', /forbidden for the .* role: this needs permission/);
      if (role === 'operator') await shoot(page, 'forbidden');
      const status = await page.evaluate(async ([method, url, body]) => {
        const doc = (globalThis as unknown as { document: BrowserDocument }).document;
        const csrf = doc.querySelector('meta[name="csrf-token"]')!.getAttribute('content')!;
        const r = await fetch(url as string, {
          method: method as string,
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return r.status;
      }, api);
      assert.equal(status, 403, `${role} ${api[0]} ${api[1]}`);
    }
  });

  it('each role does something its role allows', async () => {
    // CA Administrator: creates a user.
    let page = contexts.get('ca-admin')!.page;
    await page.goto(`${base}/users`);
    await page.fill('#add-user input[name="name"]', 'new-auditor');
    await page.selectOption('#add-user select[name="role"]', 'auditor');
    await page.fill('#add-user input[name="password"]', 'a temporary password');
    await Promise.all([page.waitForLoadState('load'), page.click('#add-user button[type="submit"]')]);
    await page.waitForSelector('#users td:text-is("new-auditor")');
    assert.match((await page.textContent('#flash')) ?? '', /user "new-auditor" created/);

    // Administrator: registers an EST client.
    page = contexts.get('admin')!.page;
    await page.goto(`${base}/applications`);
    await page.fill('#add-est-client input[name="name"]', 'factory-9');
    await page.fill('#add-est-client input[name="password"]', 'an est client password');
    await page.check('#add-est-client input[name="requireApproval"]');
    await page.click('#add-est-client button[type="submit"]');
    await page.waitForSelector('#est-clients td:text-is("factory-9")');
    await shoot(page, 'applications-after');

    // Auditor: verifies the audit chain.
    page = contexts.get('auditor')!.page;
    await page.goto(`${base}/audit`);
    await page.click('text=verify the chain now');
    await page.waitForSelector('#verify-result');
    assert.match((await page.textContent('#verify-result')) ?? '', /ok\s+\d+ entries and \d+ checkpoints verified/);
    await shoot(page, 'audit-verified');

    // Operator: creates a backup.
    page = contexts.get('operator')!.page;
    await page.goto(`${base}/backup`);
    await page.click('#create-backup button[type="submit"]');
    await page.waitForSelector('#backups td a', { timeout: 60_000 });
    await shoot(page, 'backup-after');

    const { rows } = await cf.pool.query(
      "SELECT action, actor, role FROM audit_log WHERE action IN ('user.add', 'estClient.add', 'backup.create') AND actor LIKE 'user:%' ORDER BY seq",
    );
    assert.deepEqual(rows, [
      { action: 'user.add', actor: 'user:u-ca-admin', role: 'ca-admin' },
      { action: 'estClient.add', actor: 'user:u-admin', role: 'admin' },
      { action: 'backup.create', actor: 'user:u-operator', role: 'operator' },
    ]);
  });

  it('the CA Administrator creates and rolls over a CA, the Administrator edits a profile; the Auditor only reads them', async () => {
    let page = contexts.get('ca-admin')!.page;
    await page.goto(`${base}/hierarchy`);
    await page.fill('#create-ca input[name="name"]', 'ui-sub');
    await page.selectOption('#create-ca select[name="parent"]', 'certflow-root');
    await page.fill('#create-ca input[name="permitted"]', 'dns:ui.example.test');
    await page.click('#create-ca button[type="submit"]');
    await page.waitForFunction(
      () => /certified/.test((globalThis as unknown as { document: BrowserDocument }).document.querySelector('#flash')?.textContent ?? ''),
      undefined,
      { timeout: 120_000 },
    );
    await page.goto(`${base}/hierarchy`);
    await page.click('li[data-ca="ui-sub"] > details.ca-actions > summary');
    await page.click('#rollover-ui-sub button[type="submit"]');
    await page.waitForSelector('li[data-ca="ui-sub"] dd:has-text("generation 2")', { timeout: 120_000 });
    await shoot(page, 'hierarchy-after');

    page = contexts.get('admin')!.page;
    await page.goto(`${base}/profiles`);
    await page.selectOption('#new-profile select[name="kind"]', 'certificate');
    await page.fill(
      '#new-profile textarea[name="definition"]',
      JSON.stringify({ name: 'ui-profile', extends: 'device', validitySeconds: 86_400 }),
    );
    await page.click('#new-profile button[type="submit"]');
    await page.waitForSelector('details[data-profile="certificate:ui-profile"]', { timeout: 60_000 });
    await shoot(page, 'profiles-after');

    page = contexts.get('auditor')!.page;
    for (const [path, forms] of [
      ['/hierarchy', ['#create-ca', '#import-ca', 'details.ca-actions']],
      ['/profiles', ['#new-profile', '#edit-certificate-ui-profile']],
    ] as const) {
      await page.goto(`${base}${path}`);
      await page.waitForSelector('body[data-ready="1"]');
      for (const f of forms) assert.equal(await page.$(f), null, `no ${f} for the Auditor on ${path}`);
    }
    assert.ok(await page.$('details[data-profile="certificate:ui-profile"]'), 'the Auditor reads the profile');

    const { rows } = await cf.pool.query(
      "SELECT action, actor, role FROM audit_log WHERE action IN ('ca.create', 'ca.rollover', 'profile.create') AND object IN ('ui-sub', 'certificate:ui-profile') ORDER BY seq",
    );
    assert.deepEqual(rows, [
      { action: 'ca.create', actor: 'user:u-ca-admin', role: 'ca-admin' },
      { action: 'ca.rollover', actor: 'user:u-ca-admin', role: 'ca-admin' },
      { action: 'profile.create', actor: 'user:u-admin', role: 'admin' },
    ]);
  });

  it('the officer revokes a certificate from the UI: openssl ocsp and the next CRL say revoked', async () => {
    const page = contexts.get('officer')!.page;
    await page.goto(`${base}/certificates?subject=victim`);
    await page.click(`#certificates a:has-text("${serial}")`);
    await page.waitForSelector('#revoke');
    await shoot(page, 'certificate');
    await page.selectOption('#revoke select[name="reason"]', 'keyCompromise');
    await page.click('#revoke button[type="submit"]');
    await page.waitForFunction(
      () => (globalThis as unknown as { document: BrowserDocument }).document.querySelector('#cert-state')?.textContent === 'revoked',
      undefined,
      {
        timeout: 90_000,
      },
    );
    await page.waitForSelector('#audit td:text-is("cert.revoke")');
    await shoot(page, 'certificate-revoked');
    assert.equal(await page.$('#revoke'), null, 'no revoke button on a revoked certificate');

    const chain = join(cf.home, 'ca', 'chain.pem');
    const root = join(cf.home, 'ca', 'root.pem');
    const ocsp = await runTool('openssl', [
      'ocsp',
      '-issuer',
      chain,
      '-cert',
      join(cf.home, 'victim.pem'),
      '-url',
      `http://127.0.0.1:${cf.httpPort}/ocsp`,
      '-CAfile',
      root,
      '-no_nonce',
    ]);
    assert.match(ocsp.stderr + ocsp.stdout, /Response verify OK/);
    assert.match(ocsp.stdout, /: revoked/);
    assert.match(ocsp.stdout, /Reason: keyCompromise/);
    const res = await fetch(`http://127.0.0.1:${cf.httpPort}/crl/certflow-issuing.crl`);
    await writeFile(join(cf.home, 'ui.crl'), Buffer.from(await res.arrayBuffer()));
    const crl = await runTool('openssl', ['crl', '-inform', 'DER', '-in', join(cf.home, 'ui.crl'), '-CAfile', chain, '-noout', '-text']);
    assert.match(crl.stderr + crl.stdout, /verify OK/);
    assert.match(crl.stdout, new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*Key Compromise`));
    const { rows } = await cf.pool.query("SELECT actor, role FROM audit_log WHERE action = 'cert.revoke' AND object = $1", [serial]);
    assert.deepEqual(rows, [{ actor: 'user:u-officer', role: 'officer' }]);
  });

  it('logging out ends the session', async () => {
    const page = contexts.get('auditor')!.page;
    await page.goto(`${base}/`);
    await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#logout')]);
    await page.goto(`${base}/certificates`);
    assert.equal(new URL(page.url()).pathname, '/login');
    await shoot(page, 'login');
  });
});
