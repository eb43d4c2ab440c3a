/**
 * lego (Debian's, the Go ACME client) against certflow's ACME server: http-01 with lego's
 * own responder, dns-01 through the exec provider writing TXT records into
 * pebble-challtestsrv, and External Account Binding on an alias that requires it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../helpers/certflow.ts';
import { clientEnv, fetchAcme, jwsPost, parseEab, serialHex, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { CHALLTESTSRV, LEGO, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const skip = toolsSkip(LEGO, CHALLTESTSRV);

describe('ACME with lego', { skip }, () => {
  let stack: AcmeStack;
  let dir: string;

  function lego(path: string, globalArgs: string[], opts: { server?: string; env?: NodeJS.ProcessEnv } = {}) {
    return runProgram(
      requireTool(LEGO),
      [
        '--server',
        opts.server ?? stack.directoryUrl(),
        '--accept-tos',
        '--email',
        'test@example.test',
        '--path',
        path,
        ...globalArgs,
        'run',
      ],
      { env: clientEnv(stack, { LEGO_CA_CERTIFICATES: stack.root, ...opts.env }), timeoutMs: 90_000 },
    );
  }

  const show = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  /** lego's certificates/<name>.crt is the leaf followed by the issuer. */
  async function verifyLegoCert(path: string, name: string): Promise<X509Certificate> {
    const crt = join(path, 'certificates', `${name}.crt`);
    const issuer = join(path, 'certificates', `${name}.issuer.crt`);
    const r = await runTool('openssl', ['verify', '-CAfile', stack.root, '-untrusted', issuer, crt]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const pem = await readFile(crt, 'utf8');
    const x = new X509Certificate(pem);
    assert.equal(x.subjectAltName, `DNS:${name}`);
    const { rows } = await stack.cf.pool.query('SELECT protocol, status FROM certificates WHERE serial = $1', [serialHex(pem)]);
    assert.deepEqual(rows, [{ protocol: 'acme', status: 'valid' }]);
    return x;
  }

  before(async () => {
    stack = await startAcmeStack({ config: { acme: { aliases: [{ name: 'eab', eabRequired: true }] } } });
    dir = join(stack.cf.home, 'lego');
    await mkdir(dir, { recursive: true });
  });
  after(async () => stack?.stop());

  it("http-01 (lego's own responder): a certificate that openssl verifies", async () => {
    await stack.cts.setA('lego.example.test', '127.0.0.1');
    const path = join(dir, 'http');
    const r = await lego(path, ['--http', '--http.port', `127.0.0.1:${stack.http01Port}`, '-d', 'lego.example.test']);
    assert.equal(r.code, 0, show(r));
    await verifyLegoCert(path, 'lego.example.test');
  });

  it('dns-01 with the exec provider writing into challtestsrv', async () => {
    const script = join(dir, 'exec-dns.sh');
    const api = stack.cts.managementUrl;
    // lego calls: <script> present|cleanup <fqdn with trailing dot> <TXT value>
    await writeFile(
      script,
      `#!/bin/sh
set -e
echo "$1 $2 $3" >> "${dir}/exec.log"
case "$1" in
  present) curl -sS -f -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" ${api}/set-txt ;;
  cleanup) curl -sS -f -X POST -d "{\\"host\\":\\"$2\\"}" ${api}/clear-txt ;;
esac
`,
    );
    await chmod(script, 0o755);
    const path = join(dir, 'dns');
    const r = await lego(
      path,
      ['--dns', 'exec', '--dns.resolvers', stack.cts.resolver, '--dns.disable-cp', '-d', 'lego-dns.example.test'],
      { env: { EXEC_PATH: script, EXEC_PROPAGATION_TIMEOUT: '30', EXEC_POLLING_INTERVAL: '1' } },
    );
    const log = await readFile(join(dir, 'exec.log'), 'utf8').catch(() => '');
    assert.equal(r.code, 0, `${show(r)}\nexec log:\n${log}`);
    assert.match(log, /^present _acme-challenge\.lego-dns\.example\.test\. \S+$/m);
    assert.match(log, /^cleanup _acme-challenge\.lego-dns\.example\.test\. /m);
    await verifyLegoCert(path, 'lego-dns.example.test');
  });

  it('External Account Binding: required on the "eab" alias, and a key from `certflow eab create` works', async () => {
    await stack.cts.setA('lego-eab.example.test', '127.0.0.1');
    const server = stack.directoryUrl('eab');
    const http = ['--http', '--http.port', `127.0.0.1:${stack.http01Port}`, '-d', 'lego-eab.example.test'];

    // lego reads meta.externalAccountRequired from the directory and stops by itself...
    const without = await lego(join(dir, 'no-eab'), http, { server });
    assert.notEqual(without.code, 0, show(without));
    assert.match(without.stdout + without.stderr, /requires External Account Binding|externalAccountRequired/, show(without));
    const directory = await fetchAcme(server);
    assert.equal(directory.data.meta?.externalAccountRequired, true, directory.text);
    // ...and a client that does not is refused by the server (RFC 8555 7.3.4).
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const refused = await jwsPost(directory.data, directory.data.newAccount, { termsOfServiceAgreed: true }, keyPem, 'jwk');
    assert.ok(refused.status >= 400 && refused.status < 500, refused.text);
    assert.equal(refused.data.type, 'urn:ietf:params:acme:error:externalAccountRequired', refused.text);

    const created = await stack.cf.cli(['eab', 'create', '--alias', 'eab', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { kid, hmacKey } = parseEab(created.stdout);
    const path = join(dir, 'eab');
    const r = await lego(path, ['--eab', '--kid', kid, '--hmac', hmacKey, ...http], { server });
    assert.equal(r.code, 0, show(r));
    await verifyLegoCert(path, 'lego-eab.example.test');
    const { rows } = await stack.cf.pool.query('SELECT alias, eab_kid FROM acme_accounts WHERE eab_kid = $1', [kid]);
    assert.deepEqual(rows, [{ alias: 'eab', eab_kid: kid }]);
  });
});
