/**
 * Attack (issue 16, item 3): guess credentials from one address, many at once, through
 * several server processes — EST HTTP Basic passwords (curl), CMP shared secrets (openssl
 * cmp with password-based MAC), console passwords for many user names. Each guess cost the
 * server a slow check (scrypt, PBM iterations) and nothing limited them per address.
 *
 * Now every front end counts failed authentications per client address in Postgres,
 * before the slow check, exactly across processes: with a limit of 5, at most 5 of the
 * guesses reach the check, the others are refused (EST/console 429 with Retry-After, CMP an
 * error message) — and once locked, the address is refused even with right credentials.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../src/core/net.ts';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';
import { estDevice } from '../helpers/est.ts';
import { failure, newKey, opensslCmp, readMessages, type CmpPeer } from '../helpers/cmp.ts';
import { AdminClient } from '../helpers/admin.ts';

const LIMIT = 5;

describe('attack: credential guessing from one address on every front end', () => {
  let cf: TestInstance;
  const ports: Array<{ https: number; http: number }> = [];

  before(async () => {
    cf = await createInstance({ CERTFLOW_CONFIG: '' });
    await writeFile(
      join(cf.home, 'config.json'),
      JSON.stringify({ authFailures: { perAddress: { maxFailures: LIMIT, windowSeconds: 900, lockSeconds: 900 } } }),
    );
    await cf.startWorker();
    // Two server processes: the counts must hold across them.
    ports.push({ https: cf.httpsPort, http: cf.httpPort });
    ports.push({ https: await freePort(), http: await freePort() });
    await cf.startServer();
    await cf.startServer({ CERTFLOW_HTTPS_PORT: String(ports[1]!.https), CERTFLOW_HTTP_PORT: String(ports[1]!.http) });
    await cf.startAdmin();
    const est = await cf.cli(['est-client', 'add', '--name', 'dev1', '--password', '-'], { input: 'the right EST password\n' });
    assert.equal(est.code, 0, est.stderr);
    const cmp = await cf.cli(['cmp-client', 'add', '--ref', 'dev1', '--secret', '-'], { input: 'the right CMP secret\n' });
    assert.equal(cmp.code, 0, cmp.stderr);
  });
  after(async () => cf?.cleanup());

  it('EST Basic: 20 parallel wrong passwords through two servers, at most 5 checked; then the address is locked', async () => {
    const root = join(cf.home, 'ca', 'root.pem');
    const chain = join(cf.home, 'ca', 'chain.pem');
    const devices = ports.map((p) => estDevice(cf.home, `https://localhost:${p.https}/.well-known/est`, root, chain));
    const body = await devices[0]!.csrBody('guess', '/CN=guess');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => devices[i % 2]!.curl('/simpleenroll', { user: `dev1:guess number ${i}`, data: body })),
    );
    const statuses = answers.map((a) => a.status);
    const checked = statuses.filter((s) => s === 401).length;
    assert.equal(checked + statuses.filter((s) => s === 429).length, 20, JSON.stringify(statuses));
    assert.ok(checked <= LIMIT, `${checked} guesses were checked (limit ${LIMIT}): ${JSON.stringify(statuses)}`);
    for (const a of answers.filter((x) => x.status === 429)) {
      assert.ok(Number(a.headers['retry-after']) > 0);
      assert.match(a.body.toString(), /too many failed authentications/);
    }
    const right = await devices[1]!.curl('/simpleenroll', { user: 'dev1:the right EST password', data: body });
    assert.equal(right.status, 429, 'the address is locked: the right password waits too');
    const { rows } = await cf.pool.query(
      "SELECT failures, locked_until > now() AS locked FROM auth_failures WHERE key = 'est:ip:127.0.0.1'",
    );
    assert.deepEqual(rows, [{ failures: checked, locked: true }], 'counted exactly, once for both servers');
  });

  it('CMP MAC: 12 parallel wrong secrets (openssl cmp) through two servers, at most 5 checked', async () => {
    const peer: CmpPeer = { server: `127.0.0.1:${ports[0]!.http}`, dir: cf.home, root: join(cf.home, 'ca', 'root.pem') };
    const runs = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const key = await newKey(peer, `cmp-guess-${i}`);
        await opensslCmp(
          peer,
          [
            ...['-cmd', 'ir', '-ref', 'dev1', '-secret', `pass:guess number ${i}`, '-newkey', key, '-subject', `/CN=guess${i}`],
            ...['-certout', `cmp-guess-${i}.pem`, '-unprotected_errors', '-rspout', `cmp-guess-${i}.der`],
          ],
          { server: `127.0.0.1:${ports[i % 2]!.http}` },
        );
        const [rsp] = await readMessages(cf.home, [`cmp-guess-${i}.der`]);
        return failure(rsp!.toDer());
      }),
    );
    const checked = runs.filter((f) => f.failInfo.includes('badMessageCheck')).length;
    const refused = runs.filter((f) => /too many failed authentications/.test(f.text));
    assert.equal(checked + refused.length, 12, JSON.stringify(runs));
    assert.ok(checked <= LIMIT, `${checked} MACs were checked (limit ${LIMIT}): ${JSON.stringify(runs)}`);
    for (const f of refused) assert.deepEqual(f.failInfo, ['notAuthorized']);
    const { rows } = await cf.pool.query("SELECT failures FROM auth_failures WHERE key = 'cmp:ip:127.0.0.1'");
    assert.equal(rows[0].failures, checked);
  });

  it('console: 8 parallel logins as 8 different user names, at most 5 checked per address', async () => {
    const api = new AdminClient(cf.adminPort, await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8'));
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => api.login(`someone-${i}`, 'a password guess')));
    const statuses = results.map((r) => r.response.status);
    const checked = statuses.filter((s) => s === 401).length;
    assert.equal(checked + statuses.filter((s) => s === 429).length, 8, JSON.stringify(statuses));
    assert.ok(checked <= LIMIT, JSON.stringify(statuses));
    const audited = await cf.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'auth.login' AND result = 'failed'");
    assert.equal(audited.rows[0].n, checked, 'only checked attempts are audited one by one');
  });
});
