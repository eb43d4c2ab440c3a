/**
 * certbot (Debian's, EFF's ACME client in Python) against certflow's ACME server:
 * http-01 with certbot's standalone responder, renewal, revocation (OCSP says revoked), and
 * dns-01 through manual hooks that write TXT records into pebble-challtestsrv, for a
 * wildcard and its base name (two TXT values at the same name).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../helpers/certflow.ts';
import { clientEnv, eventually, ocspRevoked, serialHex, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { CERTBOT, CHALLTESTSRV, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const skip = toolsSkip(CERTBOT, CHALLTESTSRV);

describe('ACME with certbot', { skip }, () => {
  let stack: AcmeStack;
  let dir: string;

  /** certbot with its state in the test's directory, talking to certflow. */
  function certbot(args: string[], timeoutMs = 90_000) {
    return runProgram(
      requireTool(CERTBOT),
      [
        ...args,
        '--config-dir',
        join(dir, 'config'),
        '--work-dir',
        join(dir, 'work'),
        '--logs-dir',
        join(dir, 'logs'),
        '--server',
        stack.directoryUrl(),
        '--non-interactive',
        '--agree-tos',
        '-m',
        'test@example.test',
        '--no-eff-email',
      ],
      { env: clientEnv(stack, { REQUESTS_CA_BUNDLE: stack.root }), timeoutMs },
    );
  }

  const show = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  async function verify(certFile: string, chainFile: string): Promise<void> {
    const r = await runTool('openssl', ['verify', '-CAfile', stack.root, '-untrusted', chainFile, certFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }

  before(async () => {
    stack = await startAcmeStack();
    dir = join(stack.cf.home, 'certbot');
    await mkdir(dir, { recursive: true });
    await stack.cts.setA('web.example.test', '127.0.0.1');
  });
  after(async () => stack?.stop());

  let firstSerial: string;
  const live = () => join(dir, 'config', 'live', 'web.example.test');

  it('http-01 (standalone): a certificate that openssl verifies', async () => {
    const r = await certbot([
      'certonly',
      '--standalone',
      '--http-01-port',
      String(stack.http01Port),
      '--http-01-address',
      '127.0.0.1',
      '-d',
      'web.example.test',
    ]);
    assert.equal(r.code, 0, show(r));
    await verify(join(live(), 'cert.pem'), join(live(), 'chain.pem'));
    const pem = await readFile(join(live(), 'cert.pem'), 'utf8');
    const x = new X509Certificate(pem);
    assert.match(x.subjectAltName ?? '', /DNS:web\.example\.test/);
    firstSerial = serialHex(pem);
    const { rows } = await stack.cf.pool.query('SELECT protocol, status FROM certificates WHERE serial = $1', [firstSerial]);
    assert.deepEqual(rows, [{ protocol: 'acme', status: 'valid' }]);
  });

  let renewedPem: string;
  it('renew --force-renewal: a new certificate for the same name', async () => {
    assert.ok(firstSerial, 'needs the first certificate');
    const r = await certbot(['renew', '--force-renewal', '--no-random-sleep-on-renew', '--cert-name', 'web.example.test']);
    assert.equal(r.code, 0, show(r));
    renewedPem = await readFile(join(live(), 'cert.pem'), 'utf8');
    assert.notEqual(serialHex(renewedPem), firstSerial);
    await verify(join(live(), 'cert.pem'), join(live(), 'chain.pem'));
  });

  it('revoke --reason keycompromise: OCSP says revoked', async () => {
    assert.ok(renewedPem, 'needs the renewed certificate');
    const certFile = join(live(), 'cert.pem');
    const r = await certbot(['revoke', '--cert-path', certFile, '--reason', 'keycompromise', '--no-delete-after-revoke']);
    assert.equal(r.code, 0, show(r));
    const serial = serialHex(renewedPem);
    const row = await eventually('the certificate is revoked in the database', 15_000, async () => {
      const { rows } = await stack.cf.pool.query('SELECT status, revocation_reason FROM certificates WHERE serial = $1', [serial]);
      return rows[0]?.status === 'revoked' ? rows[0] : undefined;
    });
    assert.deepEqual(row, { status: 'revoked', revocation_reason: 'keyCompromise' });
    const ocsp = await ocspRevoked(stack, certFile, join(live(), 'chain.pem'));
    assert.match(ocsp, /Reason: keyCompromise/);
    // The first certificate is untouched.
    const first = await stack.cf.pool.query('SELECT status FROM certificates WHERE serial = $1', [firstSerial]);
    assert.equal(first.rows[0]?.status, 'valid');
  });

  it('dns-01 with manual hooks: *.wild.example.test and wild.example.test in one certificate', async () => {
    const auth = join(dir, 'auth-hook.sh');
    const cleanup = join(dir, 'cleanup-hook.sh');
    const api = stack.cts.managementUrl;
    // Both names validate at _acme-challenge.wild.example.test: set-txt adds a value, so the
    // wildcard's and the base name's values are there together until the cleanup.
    await writeFile(
      auth,
      `#!/bin/sh
set -e
echo "auth $CERTBOT_DOMAIN $CERTBOT_VALIDATION" >> "${dir}/hooks.log"
curl -sS -f -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\",\\"value\\":\\"$CERTBOT_VALIDATION\\"}" ${api}/set-txt
`,
    );
    await writeFile(
      cleanup,
      `#!/bin/sh
set -e
echo "cleanup $CERTBOT_DOMAIN" >> "${dir}/hooks.log"
curl -sS -f -X POST -d "{\\"host\\":\\"_acme-challenge.$CERTBOT_DOMAIN.\\"}" ${api}/clear-txt
`,
    );
    await chmod(auth, 0o755);
    await chmod(cleanup, 0o755);
    const r = await certbot([
      'certonly',
      '--manual',
      '--preferred-challenges',
      'dns',
      '--manual-auth-hook',
      auth,
      '--manual-cleanup-hook',
      cleanup,
      '--cert-name',
      'wild',
      '-d',
      '*.wild.example.test',
      '-d',
      'wild.example.test',
    ]);
    const hooks = await readFile(join(dir, 'hooks.log'), 'utf8').catch(() => '');
    assert.equal(r.code, 0, `${show(r)}\nhooks:\n${hooks}`);
    assert.equal(hooks.match(/^auth wild\.example\.test /gm)?.length, 2, hooks);
    assert.match(hooks, /^cleanup wild\.example\.test/m);
    const livedir = join(dir, 'config', 'live', 'wild');
    await verify(join(livedir, 'cert.pem'), join(livedir, 'chain.pem'));
    const x = new X509Certificate(await readFile(join(livedir, 'cert.pem')));
    const sans = (x.subjectAltName ?? '').split(/,\s*/).sort();
    assert.deepEqual(sans, ['DNS:*.wild.example.test', 'DNS:wild.example.test']);
    // The cleanup hook removed the records.
    await assert.rejects(stack.cts.dns().resolveTxt('_acme-challenge.wild.example.test'));
  });
});
