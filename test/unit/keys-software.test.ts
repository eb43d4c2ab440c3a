import assert from 'node:assert/strict';
import { constants as cryptoConstants, createPrivateKey, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CaError } from '../../src/core/errors.ts';
import { loadConfig } from '../../src/config/index.ts';
import { openKeyStore, resolvePassphrase, SoftwareKeyStore } from '../../src/keys/index.ts';
import { KEY_ALGS, type KeyAlg, type SignAlg } from '../../src/keys/types.ts';
import { publicKeyFromSpki, signAlgsFor, verifySignature } from '../helpers/signatures.ts';

const PASSPHRASE = 'correct horse battery staple';

function isCaError(kind: CaError['kind'], message?: RegExp) {
  return (e: unknown) => {
    assert.ok(CaError.is(e), `expected CaError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** What node:crypto says the SPKI is, in KeyAlg terms. */
function algOfSpki(spki: Uint8Array): string {
  const key = publicKeyFromSpki(spki);
  const d = key.asymmetricKeyDetails!;
  if (key.asymmetricKeyType === 'ec')
    return d.namedCurve === 'prime256v1' ? 'ec-p256' : d.namedCurve === 'secp384r1' ? 'ec-p384' : `ec-${d.namedCurve}`;
  assert.equal(d.publicExponent, 65537n);
  return `${key.asymmetricKeyType}-${d.modulusLength}`;
}

describe('SoftwareKeyStore', () => {
  let home: string;
  let dir: string;
  let store: SoftwareKeyStore;
  const data = randomBytes(1000);

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'certflow-keys-'));
    dir = join(home, 'keys');
    store = new SoftwareKeyStore({ dir, passphrase: PASSPHRASE });
  });
  after(async () => {
    await store.close();
    await rm(home, { recursive: true, force: true });
  });

  test("decrypt: RSA-OAEP-SHA256 of data encrypted with the key's SPKI; EC keys refuse", async () => {
    const info = await store.generate('archive-decrypt', 'rsa-2048', 'decrypt');
    const secret = randomBytes(32);
    const key = publicKeyFromSpki(info.spki);
    const wrapped = publicEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret);
    assert.deepEqual(Buffer.from(await store.decrypt('archive-decrypt', 'rsa-oaep-sha256', wrapped)), secret);
    // A fresh store (keys read from disk) decrypts too.
    const reopened = new SoftwareKeyStore({ dir, passphrase: PASSPHRASE });
    assert.deepEqual(Buffer.from(await reopened.decrypt('archive-decrypt', 'rsa-oaep-sha256', wrapped)), secret);
    await reopened.close();
    const corrupted = Buffer.from(wrapped);
    corrupted[10]! ^= 1;
    await assert.rejects(store.decrypt('archive-decrypt', 'rsa-oaep-sha256', corrupted), (e) => CaError.is(e, 'malformed'));
    await assert.rejects(store.decrypt('no-such-key', 'rsa-oaep-sha256', wrapped), (e) => CaError.is(e, 'notFound'));
    await store.generate('ec-decrypt', 'ec-p256');
    await assert.rejects(store.decrypt('ec-decrypt', 'rsa-oaep-sha256', wrapped), (e) => CaError.is(e, 'config'));
  });

  for (const alg of KEY_ALGS) {
    test(`${alg}: generate, get, sign with every fitting algorithm, verify`, async () => {
      const id = `key-${alg}`;
      const info = await store.generate(id, alg);
      assert.equal(info.id, id);
      assert.equal(info.alg, alg);
      assert.equal(algOfSpki(info.spki), alg);
      assert.deepEqual(await store.get(id), info);

      for (const signAlg of signAlgsFor(alg)) {
        const sig = await store.sign(id, signAlg, data);
        assert.ok(verifySignature(info.spki, signAlg, data, sig), `${signAlg} signature must verify`);
        assert.ok(!verifySignature(info.spki, signAlg, randomBytes(1000), sig), `${signAlg} must not verify other data`);
        if (alg.startsWith('rsa-')) assert.equal(sig.length, Number(alg.slice(4)) / 8);
        else assert.equal(sig[0], 0x30, 'ECDSA signatures are DER SEQUENCEs');
      }
    });
  }

  test('refuses sign algorithms of the other key family', async () => {
    await store.generate('mismatch-ec', 'ec-p256');
    await store.generate('mismatch-rsa', 'rsa-2048');
    await assert.rejects(
      store.sign('mismatch-ec', 'rsa-pkcs1-sha256', data),
      isCaError('config', /rsa-pkcs1-sha256 cannot be used with CA key "mismatch-ec" \(ec-p256\)/),
    );
    await assert.rejects(store.sign('mismatch-rsa', 'ecdsa-sha256', data), isCaError('config', /ecdsa-sha256 cannot be used/));
  });

  test('generate on an existing id is a conflict and keeps the first key', async () => {
    const first = await store.generate('dup', 'ec-p256');
    await assert.rejects(store.generate('dup', 'ec-p384'), isCaError('conflict'));
    assert.deepEqual((await store.get('dup'))?.spki, first.spki);
  });

  test('concurrent generate of one id: exactly one wins', async () => {
    const results = await Promise.allSettled([
      store.generate('race', 'ec-p256'),
      store.generate('race', 'ec-p256'),
      store.generate('race', 'ec-p256'),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') isCaError('conflict')(r.reason);
  });

  test('unknown keys: get() is undefined, sign() is notFound', async () => {
    assert.equal(await store.get('nope'), undefined);
    await assert.rejects(store.sign('nope', 'ecdsa-sha256', data), isCaError('notFound'));
  });

  test('files: encrypted PKCS#8, mode 0600, metadata, directory 0700', async () => {
    await store.generate('files', 'ec-p384');
    const pem = await readFile(join(dir, 'files.key.pem'), 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.doesNotMatch(pem, /BEGIN PRIVATE KEY|BEGIN EC PRIVATE KEY/);
    assert.throws(() => createPrivateKey({ key: pem, format: 'pem', passphrase: 'wrong' }));
    assert.equal(createPrivateKey({ key: pem, format: 'pem', passphrase: PASSPHRASE }).asymmetricKeyType, 'ec');

    assert.equal((await stat(join(dir, 'files.key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const meta = JSON.parse(await readFile(join(dir, 'files.json'), 'utf8')) as { id: string; alg: KeyAlg; created: string };
    assert.equal(meta.id, 'files');
    assert.equal(meta.alg, 'ec-p384');
    assert.ok(Math.abs(Date.parse(meta.created) - Date.now()) < 60_000);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('.tmp-')),
      [],
      'no temp files left behind',
    );
  });

  test('keys persist: a new store instance loads and signs with them', async () => {
    const info = await store.generate('persist', 'rsa-2048');
    const other = new SoftwareKeyStore({ dir, passphrase: PASSPHRASE });
    try {
      assert.deepEqual(await other.get('persist'), info);
      const sig = await other.sign('persist', 'rsa-pss-sha256', data);
      assert.ok(verifySignature(info.spki, 'rsa-pss-sha256', data, sig));
    } finally {
      await other.close();
    }
  });

  test('wrong passphrase: config error naming the key and the variable', async () => {
    await store.generate('locked', 'ec-p256');
    const wrong = new SoftwareKeyStore({ dir, passphrase: 'not the passphrase' });
    await assert.rejects(wrong.get('locked'), isCaError('config', /^cannot decrypt CA key locked: wrong CERTFLOW_KEY_PASSPHRASE\?$/));
    await assert.rejects(wrong.sign('locked', 'ecdsa-sha256', data), isCaError('config', /cannot decrypt CA key locked/));
  });

  test('metadata disagreeing with the key file is reported', async () => {
    await store.generate('tampered', 'ec-p256');
    await writeFile(join(dir, 'tampered.json'), JSON.stringify({ id: 'tampered', alg: 'rsa-4096', created: new Date().toISOString() }));
    const fresh = new SoftwareKeyStore({ dir, passphrase: PASSPHRASE });
    await assert.rejects(fresh.get('tampered'), isCaError('config', /is ec-p256 but .* says rsa-4096/));
  });

  test('key ids are validated so they cannot escape the directory', async () => {
    const bad = ['', '../escape', 'a/b', '..', '.hidden', '-rf', 'a b', 'x'.repeat(65), 'ключ', 'a\0b', 'C:\\x'];
    for (const id of bad) {
      await assert.rejects(store.generate(id, 'ec-p256'), isCaError('malformed', /invalid key id/), `id ${JSON.stringify(id)}`);
      await assert.rejects(store.get(id), isCaError('malformed'));
      await assert.rejects(store.sign(id, 'ecdsa-sha256', data), isCaError('malformed'));
    }
    assert.deepEqual((await readdir(home)).sort(), ['keys']);
    for (const ok of ['a', 'certflow-root', 'Issuing_CA.2', 'x'.repeat(64)]) {
      assert.equal((await store.generate(ok, 'ec-p256')).id, ok);
    }
  });
});

describe('passphrase and openKeyStore (software)', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'certflow-pass-'));
  });
  after(async () => rm(home, { recursive: true, force: true }));

  test('CERTFLOW_KEY_PASSPHRASE wins and creates no file, no warning', async () => {
    const config = loadConfig({ CERTFLOW_HOME: join(home, 'env'), CERTFLOW_KEY_PASSPHRASE: 's3cret' });
    assert.deepEqual(await resolvePassphrase(config), { passphrase: 's3cret', source: 'env' });
    const warnings: string[] = [];
    const ks = await openKeyStore(config, { warn: (m) => warnings.push(m) });
    assert.equal(ks.backend, 'software');
    assert.deepEqual(warnings, []);
    await assert.rejects(stat(join(home, 'env', 'keys', 'passphrase')), /ENOENT/);
    await ks.close();
  });

  test('dev mode: random passphrase file (0600), stable, with a warning', async () => {
    const config = loadConfig({ CERTFLOW_HOME: join(home, 'dev') });
    const first = await resolvePassphrase(config);
    assert.equal(first.source, 'file');
    assert.equal(first.file, join(home, 'dev', 'keys', 'passphrase'));
    assert.ok(first.passphrase.length >= 40);
    assert.equal((await stat(first.file!)).mode & 0o777, 0o600);
    assert.deepEqual(await resolvePassphrase(config), first, 'the same passphrase on every start');

    const warnings: string[] = [];
    const ks = await openKeyStore(config, { warn: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /passphrase.*CERTFLOW_KEY_PASSPHRASE/);
    const info = await ks.generate('root', 'ec-p256');
    await ks.close();

    // The key opens only with the file's passphrase.
    const direct = new SoftwareKeyStore({ dir: join(home, 'dev', 'keys'), passphrase: first.passphrase });
    assert.deepEqual(await direct.get('root'), info);
    const sig = await direct.sign('root', 'ecdsa-sha256' satisfies SignAlg, Buffer.from('x'));
    assert.ok(verifySignature(info.spki, 'ecdsa-sha256', Buffer.from('x'), sig));
  });

  test('concurrent first starts agree on one passphrase', async () => {
    const config = loadConfig({ CERTFLOW_HOME: join(home, 'race') });
    const all = await Promise.all([1, 2, 3, 4].map(() => resolvePassphrase(config)));
    assert.equal(new Set(all.map((r) => r.passphrase)).size, 1);
  });
});
