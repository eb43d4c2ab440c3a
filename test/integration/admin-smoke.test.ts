import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';

function call(port: number, ca: string, method: string, path: string, opts: { body?: unknown; cookie?: string; csrf?: string; token?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, method, path, ca, headers: { ...(data ? { 'Content-Type': 'application/json' } : {}), ...(opts.cookie ? { Cookie: opts.cookie } : {}), ...(opts.csrf ? { 'X-CSRF-Token': opts.csrf } : {}), ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('admin smoke', () => {
  let cf: TestInstance;
  let ca: string;
  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    await cf.startAdmin();
    ca = await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8');
  });
  after(async () => cf?.cleanup());
  it('works', async () => {
    const add = await cf.cli(['users', 'add', '--name', 'root', '--role', 'ca-admin', '--password', '-'], { input: 'a very long password\n' });
    assert.equal(add.code, 0, add.stderr);
    const login = await call(cf.adminPort, ca, 'POST', '/admin/api/v1/session', { body: { name: 'root', password: 'a very long password' } });
    console.log(login.status, login.text, login.headers['set-cookie']);
    const cookie = String((login.headers['set-cookie'] as string[])[0]).split(';')[0]!;
    const csrf = JSON.parse(login.text).csrfToken;
    for (const p of ['/admin/api/v1/dashboard', '/', '/hierarchy', '/certificates', '/audit', '/users', '/reports', '/reports/statistics', '/applications', '/profiles', '/settings', '/crls', '/ocsp', '/requests', '/approvals', '/keys', '/health', '/logs', '/backup', '/account', '/admin/api/v1/audit/verify', '/admin/api/v1/openapi.json']) {
      const r = await call(cf.adminPort, ca, 'GET', p, { cookie });
      console.log(p, r.status, r.text.slice(0, 300).replace(/\n/g, ' '));
    }
    const tok = await call(cf.adminPort, ca, 'POST', '/admin/api/v1/tokens', { cookie, csrf, body: { name: 'ci', role: 'auditor' } });
    console.log(tok.status, tok.text);
    const noCsrf = await call(cf.adminPort, ca, 'POST', '/admin/api/v1/tokens', { cookie, body: { name: 'ci', role: 'auditor' } });
    console.log(noCsrf.status, noCsrf.text);
    const t = JSON.parse(tok.text).token;
    const r2 = await call(cf.adminPort, ca, 'GET', '/admin/api/v1/users', { token: t });
    console.log(r2.status, r2.text);
    const r3 = await call(cf.adminPort, ca, 'GET', '/admin/api/v1/certificates', { token: t });
    console.log(r3.status, r3.text.slice(0, 500));
    const v = await cf.cli(['audit', 'verify']);
    console.log(v.code, v.stderr);
  });
});
