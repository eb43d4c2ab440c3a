/**
 * Importing an existing CA (issue 19, part 3): its certificate and its key — a PKCS#8 file
 * (encrypted or not) put into the software key store, or a key in a PKCS#11 token named by
 * label or RFC 7512 URI, which never leaves the token. A key that does not match the
 * certificate is refused (nothing is stored); the imported CA then issues certificates
 * that openssl verifies against the outside root, and can be the parent of new CAs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { cliFails, cliJson, opensslVerify, recordHistory } from '../helpers/ca.ts';
import { makeOutsideCa, type OutsideCa } from '../helpers/outside-ca.ts';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../helpers/softhsm.ts';

async function withConfig(work: string, anchors: string[]): Promise<string> {
  const file = join(work, 'config.json');
  await writeFile(file, JSON.stringify({ ca: { trustAnchors: anchors } }));
  return file;
}

/** Issues a leaf from `ca` with the CLI and verifies it with openssl against `anchor`. */
async function issueAndVerify(cf: TestInstance, ca: string, anchor: string, name: string): Promise<void> {
  const csr = await opensslCsr(cf.home, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
  const out = join(cf.home, `${name}.pem`);
  const chain = join(cf.home, `${name}-chain.pem`);
  const r = await cf.cli(['cert', 'issue', '--csr', csr, '--ca', ca, '--out', out, '--chain-out', chain]);
  assert.equal(r.code, 0, r.stderr);
  const v = await opensslVerify(['-CAfile', anchor, '-untrusted', chain, out]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
}

describe('importing a CA with its PKCS#8 key', () => {
  let cf: TestInstance;
  let outside: OutsideCa;
  let work: string;
  let legacyCert: string;
  let legacyKey: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certflow-import-'));
    outside = await makeOutsideCa(join(work, 'outside'), { name: 'Legacy Root CA', keySpec: ['rsa', '-pkeyopt', 'rsa_keygen_bits:3072'] });
    // An existing issuing CA of the legacy PKI: its key, encrypted PKCS#8 under a passphrase.
    const plainKey = join(work, 'legacy-plain.key');
    const csr = await runTool('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      plainKey,
      '-subj',
      '/CN=Legacy Issuing CA/O=Outside',
      '-out',
      join(work, 'legacy.csr'),
    ]);
    assert.equal(csr.code, 0, csr.stderr);
    legacyCert = await outside.signCa(join(work, 'legacy.csr'), join(work, 'legacy.pem'));
    legacyKey = join(work, 'legacy.key');
    await writeFile(join(work, 'pass.txt'), 'a legacy key passphrase\n');
    const enc = await runTool('openssl', [
      'pkcs8',
      '-topk8',
      '-in',
      plainKey,
      '-out',
      legacyKey,
      '-v2',
      'aes-256-cbc',
      '-passout',
      'pass:a legacy key passphrase',
    ]);
    assert.equal(enc.code, 0, enc.stderr);
    cf = await createInstance({ CERTFLOW_CONFIG: await withConfig(work, [outside.cert]) });
    await cf.startWorker();
  });
  after(async () => {
    await cf?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it('refuses a key that does not match the certificate, before anything is stored', async () => {
    const other = join(work, 'other.key');
    assert.equal((await runTool('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other])).code, 0);
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'wrong', '--cert', legacyCert, '--key', other],
      2,
      /does not match the certificate \(another public key\); nothing was imported/,
    );
    assert.equal(existsSync(join(cf.home, 'keys', 'wrong.key.pem')), false);
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'locked', '--cert', legacyCert, '--key', legacyKey],
      2,
      /not a PKCS#8 private key \(encrypted\? give --key-passphrase-file\)/,
    );
    await cliFails(cf, ['ca', 'import', '--name', 'both', '--cert', legacyCert], 2, /exactly one of --key <pkcs8 file> or --pkcs11-uri/);
  });

  it('imports an issuing CA with its encrypted PKCS#8 key; it issues certificates openssl verifies against the outside root', async () => {
    const r = await cliJson(cf, [
      'ca',
      'import',
      '--name',
      'legacy',
      '--cert',
      legacyCert,
      '--key',
      legacyKey,
      '--key-passphrase-file',
      join(work, 'pass.txt'),
    ]);
    assert.equal(r.status, 'active');
    assert.equal(r.parent, 'legacy-root-ca');
    await recordHistory(r.workflowId, 'ca-import-pkcs8');
    // Stored encrypted under certflow's passphrase, like its own keys.
    const stored = await runTool('head', ['-1', join(cf.home, 'keys', 'legacy.key.pem')]);
    assert.match(stored.stdout, /BEGIN ENCRYPTED PRIVATE KEY/);
    await issueAndVerify(cf, 'legacy', outside.cert, 'from-legacy');
    const { rows } = await cf.pool.query("SELECT actor, details FROM audit_log WHERE action = 'ca.import' AND object = 'legacy'");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].details.trustAnchor, 'CN=Legacy Root CA,O=Outside');
  });

  it('gives the outside root recorded for the chain its key: it then signs new subordinate CAs', async () => {
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'legacy-root', '--cert', outside.cert, '--key', outside.key],
      2,
      /this certificate is CA "legacy-root-ca" already .* import it with --name legacy-root-ca/,
    );
    const r = await cliJson(cf, ['ca', 'import', '--name', 'legacy-root-ca', '--cert', outside.cert, '--key', outside.key]);
    assert.equal(r.status, 'active');
    assert.equal(r.parent, null);
    const sub = await cliJson(cf, ['ca', 'create', '--name', 'under-legacy', '--parent', 'legacy-root-ca']);
    assert.equal(sub.parent, 'legacy-root-ca');
    await issueAndVerify(cf, 'under-legacy', outside.cert, 'under-legacy-leaf');
  });
});

const hsmSkip = softHsmSkip('pkcs11-tool');

describe('importing a CA whose key is in a PKCS#11 token', { skip: hsmSkip }, () => {
  let cf: TestInstance;
  let token: SoftHsmToken;
  let outside: OutsideCa;
  let work: string;
  let hsmCert: string;

  const p11 = (args: string[]) =>
    runTool('pkcs11-tool', ['--module', token.module, '--token-label', token.label, '--login', '--pin', token.pin, ...args], {
      env: { ...process.env, ...token.env },
    });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certflow-import-hsm-'));
    token = await createSoftHsmToken({ label: 'legacy-hsm' });
    outside = await makeOutsideCa(join(work, 'outside'), { name: 'HSM Root CA' });
    // The legacy CA's key, generated in the token by the HSM's own tools.
    for (const [label, id] of [
      ['legacy-ca-key', '0a01'],
      ['unrelated-key', '0a02'],
    ]) {
      const g = await p11(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', label!, '--id', id!, '--usage-sign']);
      assert.equal(g.code, 0, g.stderr + g.stdout);
    }
    // Its certificate from the outside root, for the token's public key (read, not the private key).
    const pub = join(work, 'legacy-pub.der');
    assert.equal((await p11(['--read-object', '--type', 'pubkey', '--label', 'legacy-ca-key', '-o', pub])).code, 0);
    const pubPem = join(work, 'legacy-pub.pem');
    assert.equal((await runTool('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', pub, '-out', pubPem])).code, 0);
    const dummy = await opensslCsr(work, 'dummy', { subj: '/CN=Token Issuing CA/O=Outside' });
    hsmCert = await outside.signCa(dummy, join(work, 'hsm-ca.pem'), { forcePubkey: pubPem });
    cf = await createInstance({
      ...token.env,
      CERTFLOW_KEY_BACKEND: 'pkcs11',
      CERTFLOW_KEY_PASSPHRASE: '',
      CERTFLOW_CONFIG: await withConfig(work, [outside.cert]),
    });
    await cf.startWorker();
  });
  after(async () => {
    await cf?.cleanup();
    await token?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it("refuses a URI naming another token, and a key that is not the certificate's", async () => {
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'hsm-legacy', '--cert', hsmCert, '--pkcs11-uri', 'pkcs11:token=other;object=legacy-ca-key'],
      2,
      /names token "other", but the worker's key store is token "legacy-hsm"/,
    );
    await cliFails(
      cf,
      [
        'ca',
        'import',
        '--name',
        'hsm-legacy',
        '--cert',
        hsmCert,
        '--pkcs11-uri',
        'pkcs11:token=legacy-hsm;object=unrelated-key;type=private',
      ],
      2,
      /the key "unrelated-key" does not match the certificate/,
    );
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'hsm-legacy', '--cert', hsmCert, '--pkcs11-uri', 'pkcs11:object=missing-key'],
      2,
      /no key "missing-key" in the pkcs11 key store \(token "legacy-hsm"\)/,
    );
  });

  it('imports it by RFC 7512 URI: the key stays in the token, the CA issues certificates openssl verifies', async () => {
    const r = await cliJson(cf, [
      'ca',
      'import',
      '--name',
      'hsm-legacy',
      '--cert',
      hsmCert,
      '--pkcs11-uri',
      'pkcs11:token=legacy-hsm;object=legacy-ca-key;type=private',
    ]);
    assert.equal(r.status, 'active');
    await recordHistory(r.workflowId, 'ca-import-pkcs11');
    const list = await cliJson<Array<{ name: string; keyBackend: string; keyId: string }>>(cf, ['ca', 'list']);
    const row = list.find((c) => c.name === 'hsm-legacy');
    assert.deepEqual([row?.keyBackend, row?.keyId], ['pkcs11', 'legacy-ca-key']);
    await issueAndVerify(cf, 'hsm-legacy', outside.cert, 'from-token');
    // Still one private key object of that label, in the token; no key file anywhere.
    const objects = await p11(['--list-objects', '--type', 'privkey']);
    assert.equal(objects.stdout.match(/label:\s+legacy-ca-key/g)?.length, 1);
    assert.equal(existsSync(join(cf.home, 'keys', 'legacy-ca-key.key.pem')), false);
  });

  it('imports by plain label; one key belongs to one CA', async () => {
    const pub = join(work, 'unrelated-pub.der');
    assert.equal((await p11(['--read-object', '--type', 'pubkey', '--label', 'unrelated-key', '-o', pub])).code, 0);
    const pubPem = join(work, 'unrelated-pub.pem');
    assert.equal((await runTool('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', pub, '-out', pubPem])).code, 0);
    const cert = await outside.signCa(await opensslCsr(work, 'dummy2', { subj: '/CN=Token CA 2' }), join(work, 'hsm-ca-2.pem'), {
      forcePubkey: pubPem,
    });
    const r = await cliJson(cf, ['ca', 'import', '--name', 'hsm-second', '--cert', cert, '--pkcs11-uri', 'unrelated-key']);
    assert.equal(r.status, 'active');
    await issueAndVerify(cf, 'hsm-second', outside.cert, 'from-token-2');
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'hsm-again', '--cert', cert, '--pkcs11-uri', 'unrelated-key'],
      2,
      /this certificate is CA "hsm-second"'s already/,
    );
    const another = await outside.signCa(await opensslCsr(work, 'dummy3', { subj: '/CN=Token CA 3' }), join(work, 'hsm-ca-3.pem'), {
      forcePubkey: pubPem,
    });
    await cliFails(
      cf,
      ['ca', 'import', '--name', 'hsm-again', '--cert', another, '--pkcs11-uri', 'unrelated-key'],
      2,
      /the key "unrelated-key" belongs to CA "hsm-second"/,
    );
  });
});
