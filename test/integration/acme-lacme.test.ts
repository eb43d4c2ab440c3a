/**
 * lacme (Debian's `lacme` + `lacme-accountd`, the privilege-separated Perl client) against
 * certflow's ACME server: account registration, issuance (http-01 through lacme's own
 * webserver), a forced renewal and revocation (OCSP and the CRL say revoked).
 *
 * lacme runs as root and forks three parts: lacme-accountd (holds the RSA account key, signs
 * RS256), the ACME client (as _lacme-client) and a webserver for http-01 (as _lacme-www); the
 * master makes the CSR, checks the certificate with `openssl verify -x509_strict -purpose
 * sslserver` against `CAfile` and installs it. Setup, all in a temporary directory:
 * - lacme.conf: [client] server = certflow's directory; [webserver] listen on
 *   127.0.0.1:CERTFLOW_HTTP01_PORT; [accountd] config = lacme-accountd.conf (privkey).
 * - Trust: the client drops privileges and clears its environment, and lacme.conf has no CA
 *   setting (only SSL_verify/SSL_version/SSL_cipher_list); the client command is therefore
 *   `/usr/bin/env PERL_LWP_SSL_CA_FILE=<root.pem> /usr/libexec/lacme/client` (LWP's own
 *   variable for its CA file). The directory is 0755 so that _lacme-client can read root.pem.
 * - The test runs lacme in a process group of its own (runProgram's `group`), so a lacme
 *   killed at a time limit takes its webserver and client with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from '../helpers/certflow.ts';
import { checkIssued, crlVerify, eventually, ocspRevoked, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { CHALLTESTSRV, LACME, LACME_ACCOUNTD, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const skip = toolsSkip(LACME, LACME_ACCOUNTD, CHALLTESTSRV);

describe('ACME with lacme', { skip }, () => {
  let stack: AcmeStack;
  let dir: string;
  const names = ['lacme.example.test', 'www.lacme.example.test'];

  /** lacme as root; every run must end its webserver, client and accountd itself. */
  async function lacme(args: string[]) {
    const r = await runProgram(requireTool(LACME), [`--config=${join(dir, 'lacme.conf')}`, '--debug', ...args], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      timeoutMs: 150_000,
      group: true,
    });
    assert.doesNotMatch(r.stderr, /left processes of its group behind/);
    return r;
  }

  const show = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  /** lacme stopped its webserver: the http-01 port is free again. */
  async function portFree(port: number): Promise<void> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  before(async () => {
    stack = await startAcmeStack();
    // Not under the instance's home (0700): lacme's client user must read root.pem.
    dir = await mkdtemp(join(tmpdir(), 'certflow-lacme-'));
    await chmod(dir, 0o755);
    await copyFile(stack.root, join(dir, 'root.pem'));
    const accountKey = join(dir, 'account.key');
    const keyCert = join(dir, 'web.key');
    for (const args of [
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', accountKey],
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve', '-out', keyCert],
    ]) {
      const r = await runTool('openssl', args);
      assert.equal(r.code, 0, r.stderr);
    }
    await chmod(accountKey, 0o600);
    await chmod(keyCert, 0o600);
    await writeFile(
      join(dir, 'lacme.conf'),
      `config-certs = certs.conf

[client]
server = ${stack.directoryUrl()}
timeout = 120
command = /usr/bin/env PERL_LWP_SSL_CA_FILE=${join(dir, 'root.pem')} /usr/libexec/lacme/client

[webserver]
listen = 127.0.0.1:${stack.http01Port}

[accountd]
config = ${join(dir, 'lacme-accountd.conf')}
quiet = No
`,
    );
    await writeFile(join(dir, 'lacme-accountd.conf'), `privkey = file:${accountKey}\n`);
    await writeFile(
      join(dir, 'certs.conf'),
      `[web]
certificate-key = ${keyCert}
certificate = ${join(dir, 'web.crt')}
certificate-chain = ${join(dir, 'web.chain.crt')}
subject = /CN=${names[0]}
subjectAltName = ${names.map((n) => `DNS:${n}`).join(',')}
CAfile = ${join(dir, 'root.pem')}
`,
    );
    for (const n of names) await stack.cts.setA(n, '127.0.0.1');
  });
  after(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let keyId: string;
  it('account --register --tos-agreed: an account for the RSA key lacme-accountd holds', async () => {
    const r = await lacme(['account', '--register', '--tos-agreed', 'mailto:lacme@example.test']);
    assert.equal(r.code, 0, show(r));
    keyId = /Key ID: (https:\/\/localhost:\d+\/acme\/acct\/\S+)/.exec(r.stderr)?.[1] ?? '';
    assert.ok(keyId, show(r));
    assert.equal(JSON.parse(r.stdout).status, 'valid', show(r));
    const { rows } = await stack.cf.pool.query("SELECT jwk->>'kty' AS kty, contact FROM acme_accounts");
    assert.deepEqual(rows, [{ kty: 'RSA', contact: ['mailto:lacme@example.test'] }]);
  });

  let firstSerial: string;
  it('newOrder: http-01 through its own webserver; a certificate that verifies (lacme checks -x509_strict too)', async () => {
    const r = await lacme(['newOrder']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /Installing X\.509 certificate chain /, show(r));
    await portFree(stack.http01Port);
    const out = join(dir, 'check-1');
    await mkdir(out);
    const chain = await readFile(join(dir, 'web.chain.crt'), 'utf8');
    const { serial } = await checkIssued(stack, chain, { names, keyType: 'ec', dir: out });
    assert.equal(await readFile(join(dir, 'web.crt'), 'utf8'), chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26));
    firstSerial = serial;
  });

  it('newOrder again: still valid, skipped; --force: a new certificate', async () => {
    assert.ok(firstSerial, 'needs the first certificate');
    const skipped = await lacme(['newOrder']);
    assert.equal(skipped.code, 0, show(skipped));
    assert.match(skipped.stderr, /\[web\] Valid until .*, skipping/, show(skipped));
    const r = await lacme(['newOrder', '--force']);
    assert.equal(r.code, 0, show(r));
    const out = join(dir, 'check-2');
    await mkdir(out);
    const { serial } = await checkIssued(stack, await readFile(join(dir, 'web.chain.crt'), 'utf8'), { names, keyType: 'ec', dir: out });
    assert.notEqual(serial, firstSerial);
    await portFree(stack.http01Port);
  });

  it('revokeCert: OCSP and the CRL say revoked; the first certificate stays valid', async () => {
    const out = join(dir, 'check-2');
    const certFile = join(out, 'leaf.pem');
    const r = await lacme(['revokeCert', join(dir, 'web.crt')]);
    assert.equal(r.code, 0, show(r));
    const { rows } = await stack.cf.pool.query("SELECT serial, status FROM certificates WHERE protocol = 'acme' ORDER BY created_at");
    assert.deepEqual(
      rows.map((x) => x.status),
      ['valid', 'revoked'],
      JSON.stringify(rows),
    );
    assert.equal(rows[0].serial, firstSerial);
    const ocsp = await ocspRevoked(stack, certFile, join(out, 'intermediates.pem'));
    assert.match(ocsp, /: revoked/);
    const crl = await eventually('the CRL lists it', 15_000, async () => {
      const v = await crlVerify(stack, certFile, join(out, 'intermediates.pem'), out);
      return /certificate revoked/.test(v.stdout + v.stderr) ? v : undefined;
    });
    assert.notEqual(crl.code, 0);
  });

  it("lacme-accountd on its own socket with keyid (the manual's hardening): newOrder issues; account management is refused", async () => {
    assert.ok(keyId, 'needs the account');
    // Its socket's directory must not be writable by others; lacme (root) connects to it and
    // hands the connection to its client.
    const run = join(dir, 'run');
    await mkdir(run, { mode: 0o700 });
    const socket = join(run, 'S.lacme');
    await writeFile(join(dir, 'accountd-standalone.conf'), `privkey = file:${join(dir, 'account.key')}\nkeyid = ${keyId}\nquiet = No\n`);
    const accountd = spawn(requireTool(LACME_ACCOUNTD), [`--config=${join(dir, 'accountd-standalone.conf')}`, `--socket=${socket}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let accountdLog = '';
    accountd.stderr.on('data', (d) => (accountdLog += d));
    const exited = once(accountd, 'exit');
    try {
      await eventually('lacme-accountd listens', 15_000, async () =>
        (await stat(socket).catch(() => undefined))?.isSocket() ? true : undefined,
      );
      const r = await lacme([`--socket=${socket}`, 'newOrder', '--force']);
      assert.equal(r.code, 0, `${show(r)}\naccountd:\n${accountdLog}`);
      const out = join(dir, 'check-3');
      await mkdir(out);
      await checkIssued(stack, await readFile(join(dir, 'web.chain.crt'), 'utf8'), { names, keyType: 'ec', dir: out });
      // keyid makes lacme-accountd hand out an empty JWK: an account request cannot be signed
      // for, and certflow refuses it with a problem document.
      const refused = await lacme([`--socket=${socket}`, 'account', 'mailto:other@example.test']);
      assert.notEqual(refused.code, 0, show(refused));
      assert.match(refused.stderr, /lacme-accountd supplied an empty JWK/, show(refused));
      assert.match(refused.stderr, /400 Bad Request \(.+\)/, show(refused));
      const { rows } = await stack.cf.pool.query('SELECT contact FROM acme_accounts');
      assert.deepEqual(rows, [{ contact: ['mailto:lacme@example.test'] }]);
    } finally {
      accountd.kill('SIGTERM');
      await exited;
    }
    await assert.rejects(stat(socket), 'lacme-accountd removes its socket when it ends');
  });
});
