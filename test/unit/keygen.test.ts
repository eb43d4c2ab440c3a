/**
 * src/pki/keygen.ts: key pairs whose KeyObjects cannot deadlock Node 20 (the reason is in
 * that file). The stress below hangs with node:crypto's own generators: many generations,
 * each followed by the native methods that hold the key's lock while they allocate (a JWK
 * export, asymmetricKeyDetails), with a 1 MB young generation so that garbage collections
 * land inside them. A hang is for ever, so a child process with a time limit tells it apart.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { generateDerKeyPairSync, generateKeyPair, generateKeyPairSync } from '../../src/pki/keygen.ts';

const execFileAsync = promisify(execFile);

describe('key generation', () => {
  test('every kind of key pair comes back as KeyObjects of the requested kind', async () => {
    const cases = [
      { type: 'ec', options: { namedCurve: 'P-384' }, detail: { namedCurve: 'secp384r1' } },
      { type: 'rsa', options: { modulusLength: 1024 }, detail: { modulusLength: 1024, publicExponent: 65537n } },
      { type: 'ed25519', options: {}, detail: {} },
      { type: 'x25519', options: {}, detail: {} },
    ] as const;
    for (const { type, options, detail } of cases) {
      for (const pair of [generateKeyPairSync(type, options), await generateKeyPair(type, options)]) {
        assert.equal(pair.privateKey.type, 'private');
        assert.equal(pair.publicKey.type, 'public');
        assert.equal(pair.privateKey.asymmetricKeyType, type);
        assert.deepEqual(pair.publicKey.asymmetricKeyDetails, detail);
        // The public key is the private key's.
        assert.deepEqual(
          createPublicKey(pair.privateKey).export({ type: 'spki', format: 'der' }),
          pair.publicKey.export({ type: 'spki', format: 'der' }),
        );
      }
    }
    const der = generateDerKeyPairSync('ec', { namedCurve: 'P-256' });
    const fromDer = createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' });
    assert.equal(fromDer.asymmetricKeyType, 'ec');
    assert.deepEqual(createPublicKey(fromDer).export({ type: 'spki', format: 'der' }), der.publicKey);
  });

  test('a thousand generations, each followed by JWK exports and key details, end (no deadlock in a GC)', async () => {
    // Each key is exported twenty times at once, so that nearly all the child's allocations
    // happen with the key's lock held: with node:crypto's generateKeyPairSync in place of
    // keygen.ts, this hung in every run (3 of 3); with keygen.ts it ends in about a second.
    const script = `
      const { generateKeyPair, generateKeyPairSync } = await import(${JSON.stringify(new URL('../../src/pki/keygen.ts', import.meta.url).href)});
      for (let i = 0; i < 1000; i++) {
        const pair = i % 10 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : await generateKeyPair('ec', { namedCurve: 'P-256' });
        const key = i % 2 ? pair.privateKey : pair.publicKey;
        for (let j = 0; j < 20; j++) {
          key.export({ format: 'jwk' });
          key.asymmetricKeyDetails;
        }
      }
      console.log('done');
    `;
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--max-semi-space-size=1', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        timeout: 60_000,
      },
    );
    assert.equal(stdout.trim(), 'done');
  });
});
