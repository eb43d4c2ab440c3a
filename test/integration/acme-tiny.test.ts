/**
 * acme-tiny (Debian's `acme-tiny`, the ~200-line Python client) against certflow's ACME
 * server, run the way its README says: an RSA account key (so every request is RS256), a CSR
 * made with `openssl req -subj "/CN=yoursite.com"` and no SAN, the challenge file written into
 * a webroot that a web server maps to /.well-known/acme-challenge/, and the signed chain
 * printed on stdout. RFC 8555 7.4 allows a CSR to name its identifier only in the CN; the
 * certificate then carries it as a SAN. acme-tiny has no revocation command.
 *
 * Setup: --directory-url points at certflow; SSL_CERT_FILE makes Python's urllib trust
 * certflow's root. acme-tiny checks the challenge file itself before telling the CA
 * (http://<name>/.well-known/...); the test names resolve only in the CA's DNS (challtestsrv),
 * so that self-check goes through http_proxy to the same web server (no --disable-check).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { opensslCsr } from '../helpers/certflow.ts';
import { checkIssued, clientEnv, startAcmeStack, startHttp01Responder, type AcmeStack, type Http01Responder } from '../helpers/acme.ts';
import { ACME_TINY, CHALLTESTSRV, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const skip = toolsSkip(ACME_TINY, CHALLTESTSRV);

describe('ACME with acme-tiny', { skip }, () => {
  let stack: AcmeStack;
  let web: Http01Responder;
  let dir: string;
  let webroot: string;
  let accountKey: string;

  function acmeTiny(csr: string) {
    return runProgram(
      requireTool(ACME_TINY),
      [
        '--account-key',
        accountKey,
        '--csr',
        csr,
        '--acme-dir',
        webroot,
        '--directory-url',
        stack.directoryUrl(),
        '--contact',
        'mailto:tiny@example.test',
      ],
      {
        env: clientEnv(stack, { SSL_CERT_FILE: stack.root, http_proxy: `http://127.0.0.1:${web.port}` }),
        timeoutMs: 120_000,
      },
    );
  }

  const show = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  before(async () => {
    stack = await startAcmeStack();
    dir = join(stack.cf.home, 'acme-tiny');
    webroot = join(dir, 'webroot');
    await mkdir(webroot, { recursive: true });
    web = await startHttp01Responder(stack.http01Port, { webroot });
    accountKey = join(dir, 'account.key');
    const r = await runProgram('openssl', ['genrsa', '-out', accountKey, '2048']);
    assert.equal(r.code, 0, show(r));
  });
  after(async () => {
    await web?.close();
    await stack?.stop();
  });

  it('a CSR with the name only in its CN (the README\'s -subj "/CN=…"): certificate with the name as SAN, RSA key, RS256 account', async () => {
    const name = 'tiny.example.test';
    await stack.cts.setA(name, '127.0.0.1');
    const csr = await opensslCsr(dir, 'cn-only', { key: 'rsa:2048', subj: `/CN=${name}` });
    const r = await acmeTiny(csr);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /Registered! Account ID: https:\/\/localhost:\d+\//, show(r));
    assert.match(r.stderr, /Found domains: tiny\.example\.test\n/, show(r));
    const out = join(dir, 'cn-only');
    await mkdir(out);
    const { cert } = await checkIssued(stack, r.stdout, { names: [name], keyType: 'rsa', dir: out });
    assert.match(cert.subject, /CN=tiny\.example\.test/);

    // The challenge went the webroot way: acme-tiny's self-check (through the proxy) and then
    // certflow's validation fetched the file, which acme-tiny removed afterwards.
    const fetched = web.requests.filter((q) => q.path.startsWith('/.well-known/acme-challenge/') && q.host?.startsWith(name));
    assert.ok(fetched.length >= 2, JSON.stringify(web.requests));
    assert.deepEqual(await readdir(webroot), []);

    // The account key is RSA: every request of this account was an RS256 JWS.
    const { rows } = await stack.cf.pool.query("SELECT jwk->>'kty' AS kty FROM acme_accounts");
    assert.deepEqual(rows, [{ kty: 'RSA' }]);
  });

  it('a CN plus SAN CSR for two names, with the account registered already', async () => {
    const names = ['tiny2.example.test', 'www.tiny2.example.test'];
    for (const n of names) await stack.cts.setA(n, '127.0.0.1');
    const csr = await opensslCsr(dir, 'two-names', {
      key: 'rsa:2048',
      subj: `/CN=${names[0]}`,
      san: names.map((n) => `DNS:${n}`).join(','),
    });
    const r = await acmeTiny(csr);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /Already registered! Account ID: /, show(r));
    const out = join(dir, 'two-names');
    await mkdir(out);
    await checkIssued(stack, r.stdout, { names, keyType: 'rsa', dir: out });
  });
});
