/**
 * acmetool (Debian's `acmetool` 0.2.x, the Go client) against certflow's ACME server in
 * webroot mode: a state directory with conf/target (provider, key type, webroot path),
 * conf/responses answering its prompts (terms of service, e-mail) for `--batch` runs, and
 * desired/<target> files; `acmetool reconcile` does the rest.
 *
 * Setup quirks, all in the test's temporary directory:
 * - acmetool's http-01 responder always tries to listen on :80 (every interface), 402 and
 *   4402 besides writing the webroot file, and writes /var/run/acme/acme-challenge. It runs as
 *   `nobody` here (acmetool's documented non-root operation): the privileged ports and
 *   /var/run stay out of reach, the webroot (the test's web server on CERTFLOW_HTTP01_PORT
 *   serves it) is the only way that works.
 * - Its self-test fetches http://<name>/ on port 80 without any proxy; the test names
 *   resolve only in the CA's DNS (challtestsrv), so `http-self-test: false`.
 * - SSL_CERT_FILE makes Go trust certflow's root; --hooks points at an empty directory
 *   (not /etc/acme/hooks).
 * - `acmetool revoke` of 0.2.x only marks the certificate in the state directory: its ACMEv2
 *   code never sends revokeCert (storageops/reconcile.go: processPendingRevocations is
 *   commented out), so no revocation reaches certflow; the last test shows that.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  checkIssued,
  clientEnv,
  ocspStatus,
  startAcmeStack,
  startHttp01Responder,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { ACMETOOL, CHALLTESTSRV, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const skip = toolsSkip(ACMETOOL, CHALLTESTSRV);
const NOBODY = 65534; // nobody:nogroup on Debian
const TERMS = 'https://ca.example.test/terms-v1';

describe('ACME with acmetool', { skip }, () => {
  let stack: AcmeStack;
  let web: Http01Responder;
  /** Owned by nobody: state directory, webroot, hooks, the root certificate. */
  let dir: string;
  let state: string;
  let webroot: string;

  function acmetool(args: string[]) {
    return runProgram(
      '/usr/bin/setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        requireTool(ACMETOOL),
        '--state',
        state,
        '--hooks',
        join(dir, 'hooks'),
        '--batch',
        '--xlog.severity=debug',
        ...args,
      ],
      { env: clientEnv(stack, { SSL_CERT_FILE: join(dir, 'root.pem'), HOME: dir }), timeoutMs: 120_000 },
    );
  }

  const show = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  /** Files owned by nobody (acmetool writes as nobody). */
  async function give(path: string, content?: string) {
    if (content !== undefined) await writeFile(path, content);
    else await mkdir(path, { recursive: true });
    await chown(path, NOBODY, NOBODY);
  }

  /** The certificate directory live/<name> points to. */
  async function live(name: string) {
    const link = await readlink(join(state, 'live', name));
    return join(state, 'live', link);
  }

  before(async () => {
    stack = await startAcmeStack({ config: { acme: { aliases: [{ name: 'tos', termsOfService: TERMS }] } } });
    // Not under the instance's home (0700): nobody must reach it.
    dir = await mkdtemp(join(tmpdir(), 'certflow-acmetool-'));
    await give(dir);
    state = join(dir, 'state');
    webroot = join(dir, 'webroot');
    for (const d of [state, join(state, 'conf'), join(state, 'desired'), webroot, join(dir, 'hooks')]) await give(d);
    await copyFile(stack.root, join(dir, 'root.pem'));
    await give(
      join(state, 'conf', 'target'),
      `request:
  provider: ${stack.directoryUrl('tos')}
  key:
    type: ecdsa
    ecdsa-curve: nistp256
  challenge:
    webroot-paths:
      - ${webroot}
    http-self-test: false
`,
    );
    // What `acmetool quickstart` would ask, answered for --batch.
    await give(join(state, 'conf', 'responses'), `"acme-enter-email": "acmetool@example.test"\n"acme-agreement:${TERMS}": true\n`);
    web = await startHttp01Responder(stack.http01Port, { webroot });
  });
  after(async () => {
    await web?.close();
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const names = ['acmetool.example.test', 'www.acmetool.example.test'];
  let first: { serial: string; certDir: string };

  it('reconcile: a desired target with two names gets an ECDSA certificate through the webroot; terms agreed from the response file', async () => {
    for (const n of names) await stack.cts.setA(n, '127.0.0.1');
    await give(join(state, 'desired', 'acmetool'), `satisfy:\n  names:\n${names.map((n) => `    - ${n}\n`).join('')}`);
    const r = await acmetool(['reconcile']);
    assert.equal(r.code, 0, show(r));
    const certDir = await live(names[0]!);
    assert.equal(await live(names[1]!), certDir);
    const fullchain = await readFile(join(certDir, 'fullchain'), 'utf8');
    const out = join(dir, 'check-1');
    await mkdir(out);
    const { serial } = await checkIssued(stack, fullchain, { names, keyType: 'ec', dir: out });
    first = { serial, certDir };
    // certflow's VA fetched both names' files from the webroot, which acmetool then emptied.
    for (const n of names)
      assert.ok(
        web.requests.some((q) => q.host?.startsWith(n) && q.path.startsWith('/.well-known/acme-challenge/')),
        `${n}: ${JSON.stringify(web.requests)}`,
      );
    assert.deepEqual(await readdir(webroot), []);
    // One account, which agreed to the alias's terms.
    const { rows } = await stack.cf.pool.query('SELECT alias, tos_agreed, contact FROM acme_accounts');
    assert.deepEqual(rows, [{ alias: 'tos', tos_agreed: TERMS, contact: ['mailto:acmetool@example.test'] }]);
  });

  it('reconcile again: nothing to do, no new order', async () => {
    assert.ok(first, 'needs the first certificate');
    const before = await stack.cf.pool.query('SELECT count(*)::int AS n FROM acme_orders');
    const r = await acmetool(['reconcile']);
    assert.equal(r.code, 0, show(r));
    const after = await stack.cf.pool.query('SELECT count(*)::int AS n FROM acme_orders');
    assert.equal(after.rows[0].n, before.rows[0].n, show(r));
    assert.equal(await live(names[0]!), first.certDir);
  });

  it('a target with an RSA key and a new name: a second certificate, the account reused', async () => {
    const name = 'rsa.acmetool.example.test';
    await stack.cts.setA(name, '127.0.0.1');
    await give(join(state, 'desired', 'rsa'), `satisfy:\n  names:\n    - ${name}\nrequest:\n  key:\n    type: rsa\n    rsa-size: 2048\n`);
    const r = await acmetool(['reconcile']);
    assert.equal(r.code, 0, show(r));
    const out = join(dir, 'check-2');
    await mkdir(out);
    await checkIssued(stack, await readFile(join(await live(name), 'fullchain'), 'utf8'), { names: [name], keyType: 'rsa', dir: out });
    const { rows } = await stack.cf.pool.query('SELECT count(*)::int AS n FROM acme_accounts');
    assert.equal(rows[0].n, 1);
  });

  it('revoke: acmetool 0.2 only marks the certificate; no revocation reaches the CA (OCSP still good)', async () => {
    assert.ok(first, 'needs the first certificate');
    const id = basename(first.certDir);
    const r = await acmetool(['revoke', id]);
    assert.equal(r.code, 0, show(r));
    // The mark in the state directory is all that happened...
    await stat(join(first.certDir, 'revoke'));
    await assert.rejects(stat(join(first.certDir, 'revoked')));
    // ...certflow got no revokeCert request: the certificate is still valid everywhere.
    const { rows } = await stack.cf.pool.query('SELECT status FROM certificates WHERE serial = $1', [first.serial]);
    assert.deepEqual(rows, [{ status: 'valid' }]);
    const out = join(dir, 'check-1');
    const { status } = await ocspStatus(stack, join(out, 'leaf.pem'), join(out, 'intermediates.pem'));
    assert.equal(status, 'good');
  });
});
