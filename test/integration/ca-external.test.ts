/**
 * Externally signed CAs (issue 19, part 2): `ca create --external` makes the key in the
 * worker's key store and writes a PKCS#10 request; a root made with `openssl req -x509` signs
 * it with `openssl ca` (an offline root: certflow never holds its key); `ca import-cert`
 * activates the CA once the certificate matches the key and chains to a configured trust
 * anchor, and refuses one that does not. certbot and an EST device (curl) then get
 * certificates that `openssl verify` accepts against the outside root alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { opensslCsr, runTool } from '../helpers/certflow.ts';
import { startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { estDevice, firstCert } from '../helpers/est.ts';
import { CERTBOT, CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { certbotCertonly, cliFails, cliJson, opensslVerify, pemFile, recordHistory } from '../helpers/ca.ts';
import { makeOutsideCa, type OutsideCa } from '../helpers/outside-ca.ts';

const skip = toolsSkip(CERTBOT, CHALLTESTSRV);
const PASSWORD = 'external ca test password';

describe('an externally signed CA (root outside certflow)', { skip }, () => {
  let stack: AcmeStack;
  let outside: OutsideCa;
  let stranger: OutsideCa;
  let work: string;
  let csrFile: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certflow-outside-'));
    outside = await makeOutsideCa(join(work, 'outside'));
    stranger = await makeOutsideCa(join(work, 'stranger'), { name: 'Stranger Root CA' });
    stack = await startAcmeStack({
      config: {
        ca: { trustAnchors: [outside.cert] },
        acme: { aliases: [{ name: 'ext', caName: 'ext-issuing' }] },
        est: { labels: [{ name: 'ext', profile: 'device', caName: 'ext-issuing' }] },
      },
    });
    await stack.cts.setA('ext.example.test', '127.0.0.1');
    assert.equal((await stack.cf.cli(['est-client', 'add', '--name', 'ext-dev', '--password', PASSWORD])).code, 0);
  });
  after(async () => {
    await stack?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('ca create --external: the key in the key store, a PKCS#10 request signed by it, the CA pending', async () => {
    csrFile = join(stack.cf.home, 'ext-issuing.csr');
    const r = await cliJson(stack.cf, [
      'ca',
      'create',
      '--name',
      'ext-issuing',
      '--external',
      '--csr-out',
      csrFile,
      '--subject',
      'CN=Ext Issuing CA,O=certflow test',
      '--key-alg',
      'ec-p256',
    ]);
    assert.equal(r.status, 'pending');
    await recordHistory(r.workflowId, 'ca-create-external');
    const req = await runTool('openssl', ['req', '-in', csrFile, '-verify', '-noout', '-subject']);
    assert.equal(req.code, 0, req.stderr);
    assert.match(req.stdout + req.stderr, /verify OK|Certificate request self-signature verify OK/);
    assert.match(req.stdout, /subject=CN = Ext Issuing CA, O = certflow test/);
    const list = await cliJson<Array<{ name: string; status: string }>>(stack.cf, ['ca', 'list']);
    assert.equal(list.find((c) => c.name === 'ext-issuing')?.status, 'pending');
    // The same request is downloadable later.
    const again = await stack.cf.cli(['ca', 'export', 'ext-issuing', '--csr']);
    assert.equal(again.stdout, await readFile(csrFile, 'utf8'));
  });

  it('refuses a certificate for another key, and one that chains to no trust anchor', async () => {
    const otherCsr = await opensslCsr(stack.cf.home, 'other-ca', { subj: '/CN=Ext Issuing CA' });
    const wrongKey = await outside.signCa(otherCsr, join(stack.cf.home, 'wrong-key.pem'));
    await cliFails(
      stack.cf,
      ['ca', 'import-cert', '--name', 'ext-issuing', '--cert', wrongKey],
      2,
      /the certificate's public key is not the key of CA "ext-issuing"'s request/,
    );
    const untrusted = await stranger.signCa(csrFile, join(stack.cf.home, 'untrusted.pem'));
    await cliFails(
      stack.cf,
      ['ca', 'import-cert', '--name', 'ext-issuing', '--cert', untrusted],
      2,
      /is signed by "CN=Stranger Root CA,O=Outside", which is neither a configured trust anchor/,
    );
    const failed = await stack.cf.pool.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'ca.importCert' AND result = 'failed'",
    );
    assert.equal(failed.rows[0].n, 2);
  });

  it('openssl ca signs the request; import-cert activates the CA below the outside root, whose key certflow never has', async () => {
    const signed = await outside.signCa(csrFile, join(stack.cf.home, 'ext-issuing.pem'));
    const r = await cliJson(stack.cf, ['ca', 'import-cert', '--name', 'ext-issuing', '--cert', signed]);
    assert.equal(r.status, 'active');
    assert.equal(r.parent, 'outside-root-ca');
    await recordHistory(r.workflowId, 'ca-import-cert');
    const list = await cliJson<Array<{ name: string; status: string; keyBackend: string; role: string }>>(stack.cf, ['ca', 'list']);
    assert.deepEqual(
      list.filter((c) => c.name === 'outside-root-ca').map((c) => [c.role, c.keyBackend]),
      [['root', 'none']],
      'the outside root is known for chains, without a key',
    );
    const keyFiles = readdirSync(join(stack.cf.home, 'keys'));
    assert.ok(keyFiles.includes('ext-issuing.key.pem'));
    assert.ok(!keyFiles.some((f) => f.startsWith('outside')), 'no key of the outside root');
    // Importing the same certificate again changes nothing.
    const again = await cliJson(stack.cf, ['ca', 'import-cert', '--name', 'ext-issuing', '--cert', signed]);
    assert.match(again.message, /has this certificate already/);
  });

  it('certbot gets a certificate that openssl verifies against the outside root', async () => {
    const dir = join(stack.cf.home, 'certbot');
    await mkdir(dir, { recursive: true });
    const r = await certbotCertonly(stack, dir, 'ext.example.test', { alias: 'ext' });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const live = join(dir, 'config', 'live', 'ext.example.test');
    const v = await opensslVerify(['-CAfile', outside.cert, '-untrusted', join(live, 'chain.pem'), join(live, 'cert.pem')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(new X509Certificate(await readFile(join(live, 'cert.pem'))).issuer, /CN=Ext Issuing CA/);
    // Not against certflow's own root.
    const own = await opensslVerify(['-CAfile', stack.root, '-untrusted', join(live, 'chain.pem'), join(live, 'cert.pem')]);
    assert.notEqual(own.code, 0);
  });

  it('an EST device gets the outside root in /cacerts and a certificate that openssl verifies against it', async () => {
    const device = estDevice(stack.cf.home, `https://localhost:${stack.cf.httpsPort}/.well-known/est`, stack.root, stack.chain);
    const cacerts = await device.pkcs7Certs((await device.curl('/ext/cacerts')).body);
    assert.match(cacerts, /subject=CN = Ext Issuing CA/);
    assert.match(cacerts, /subject=CN = Outside Root CA, O = Outside/);
    const res = await device.curl('/ext/simpleenroll', {
      data: await device.csrBody('ext-dev', '/CN=ext-device-1'),
      user: `ext-dev:${PASSWORD}`,
    });
    assert.equal(res.status, 200, res.body.toString());
    const cert = await pemFile(stack.cf, 'ext-device.pem', firstCert(await device.pkcs7Certs(res.body)));
    const chain = await pemFile(stack.cf, 'ext-chain.pem', (await stack.cf.cli(['ca', 'export', 'ext-issuing'])).stdout);
    const v = await opensslVerify(['-CAfile', outside.cert, '-untrusted', chain, cert]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(existsSync(join(stack.cf.home, 'keys', 'outside-root-ca.key.pem')), false);
  });
});
