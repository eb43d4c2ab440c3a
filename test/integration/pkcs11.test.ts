/**
 * The same issuance path with the CA keys in an HSM: a worker with
 * CERTFLOW_KEY_BACKEND=pkcs11 on a SoftHSM2 token made by the test generates the CA keys
 * inside the token (sensitive, never extractable), and certificates signed through it
 * verify with openssl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../helpers/softhsm.ts';

const skip = softHsmSkip('pkcs11-tool');

describe('issuance with CA keys in a PKCS#11 token (SoftHSM2)', { skip }, () => {
  let token: SoftHsmToken;
  let cf: TestInstance;

  before(async () => {
    token = await createSoftHsmToken({ label: 'certflow-it' });
    cf = await createInstance({
      ...token.env,
      CERTFLOW_KEY_BACKEND: 'pkcs11',
      CERTFLOW_CA_KEY_ALG: 'ec-p384',
      CERTFLOW_KEY_PASSPHRASE: '',
    });
    await cf.startWorker();
  });
  after(async () => {
    await cf?.cleanup();
    await token?.cleanup();
  });

  it('issues certificates that openssl verifies, with ECDSA P-384 CA keys from the token', async () => {
    const csr = await opensslCsr(cf.home, 'hsm', { key: 'rsa:2048', subj: '/CN=hsm.example.test', san: 'DNS:hsm.example.test' });
    const out = join(cf.home, 'hsm.pem');
    const r = await cf.cli(['cert', 'issue', '--csr', csr, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const verify = await runTool('openssl', [
      'verify',
      '-CAfile',
      join(cf.home, 'ca', 'root.pem'),
      '-untrusted',
      join(cf.home, 'ca', 'chain.pem'),
      out,
    ]);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const text = (await runTool('openssl', ['x509', '-in', out, '-noout', '-text'])).stdout;
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
    const ca = JSON.parse((await cf.cli(['--json', 'ca', 'list'])).stdout) as Array<{ keyBackend: string; keyAlg: string }>;
    assert.ok(ca.every((c) => c.keyBackend === 'pkcs11' && c.keyAlg === 'ec-p384'));
  });

  it('keeps the private keys in the token: sensitive, never extractable, no key files', async () => {
    const list = await runTool(
      'pkcs11-tool',
      ['--module', token.module, '--token-label', token.label, '--login', '--pin', token.pin, '--list-objects', '--type', 'privkey'],
      { env: { ...process.env, ...token.env } },
    );
    assert.equal(list.code, 0, list.stderr);
    for (const label of ['certflow-root', 'certflow-issuing']) {
      const block = list.stdout.split(/\n(?=Private Key Object)/).find((b) => new RegExp(`label:\\s+${label}\\s*$`, 'm').test(b));
      assert.ok(block, `private key ${label} in the token:\n${list.stdout}`);
      assert.match(block, /Access:\s+.*\bsensitive\b/);
      assert.match(block, /never extractable/);
    }
    const keysDir = join(cf.home, 'keys');
    assert.ok(!existsSync(keysDir) || readdirSync(keysDir).every((f) => !f.endsWith('.key.pem')), 'no software key files');
  });

  it('creates a subordinate CA whose RSA key is generated in the token, and issues from it', async () => {
    const r = await cf.cli(['--json', 'ca', 'create', '--name', 'hsm-sub', '--parent', 'certflow-root', '--key-alg', 'rsa-2048']);
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout) as { certPem: string };
    const list = await runTool(
      'pkcs11-tool',
      ['--module', token.module, '--token-label', token.label, '--login', '--pin', token.pin, '--list-objects', '--type', 'privkey'],
      { env: { ...process.env, ...token.env } },
    );
    const block = list.stdout.split(/\n(?=Private Key Object)/).find((b) => /label:\s+hsm-sub\s*$/m.test(b));
    assert.ok(block, `private key hsm-sub in the token:\n${list.stdout}`);
    assert.match(block, /Private Key Object; RSA/);
    assert.match(block, /sensitive/);
    assert.match(block, /never extractable/);
    const csr = await opensslCsr(cf.home, 'hsm-sub-leaf', { subj: '/CN=leaf.example.test', san: 'DNS:leaf.example.test' });
    const out = join(cf.home, 'hsm-sub-leaf.pem');
    const issued = await cf.cli(['cert', 'issue', '--csr', csr, '--ca', 'hsm-sub', '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
    await writeFile(join(cf.home, 'hsm-sub.pem'), created.certPem);
    const verify = await runTool('openssl', [
      'verify',
      '-CAfile',
      join(cf.home, 'ca', 'root.pem'),
      '-untrusted',
      join(cf.home, 'hsm-sub.pem'),
      out,
    ]);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    assert.match(
      (await runTool('openssl', ['x509', '-in', out, '-noout', '-text'])).stdout,
      /Signature Algorithm: sha256WithRSAEncryption/,
    );
  });
});
