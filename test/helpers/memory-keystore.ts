/**
 * An in-memory KeyStore for tests: real node:crypto keys and real signatures, in the form
 * the KeyStore contract demands (ECDSA as DER Ecdsa-Sig-Value, RSA raw; PSS with MGF1 of
 * the same hash and salt = hash length). `tamper` lets a test simulate a faulty HSM.
 */
import { constants, privateDecrypt, sign, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { CaError } from '../../src/core/errors.ts';
import type { DecryptAlg, KeyAlg, KeyInfo, KeyStore, SignAlg } from '../../src/keys/types.ts';

interface Entry {
  info: KeyInfo;
  privateKey: KeyObject;
}

const HASH_BYTES = { sha256: 32, sha384: 48, sha512: 64 } as const;

function generate(alg: KeyAlg): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (alg) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 });
  }
}

export class MemoryKeyStore implements KeyStore {
  readonly backend = 'software' as const;
  private readonly keys = new Map<string, Entry>();
  /** When set, every signature passes through it (e.g. to flip a bit like a failing HSM). */
  tamper?: (signature: Uint8Array) => Uint8Array;

  async generate(id: string, alg: KeyAlg): Promise<KeyInfo> {
    if (this.keys.has(id)) throw new CaError('conflict', `key "${id}" exists`);
    const { publicKey, privateKey } = generate(alg);
    const info: KeyInfo = { id, alg, spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
    this.keys.set(id, { info, privateKey });
    return info;
  }

  async get(id: string): Promise<KeyInfo | undefined> {
    return this.keys.get(id)?.info;
  }

  async sign(id: string, alg: SignAlg, data: Uint8Array): Promise<Uint8Array> {
    const entry = this.keys.get(id);
    if (!entry) throw new CaError('notFound', `no key "${id}"`);
    const [scheme, ...rest] = alg.split('-');
    const hash = rest[rest.length - 1] as keyof typeof HASH_BYTES;
    const isEc = entry.info.alg.startsWith('ec-');
    if ((scheme === 'ecdsa') !== isEc) throw new CaError('internal', `${alg} does not fit key ${entry.info.alg}`);
    let signature: Buffer;
    if (scheme === 'ecdsa') {
      signature = sign(hash, data, { key: entry.privateKey, dsaEncoding: 'der' });
    } else if (alg.startsWith('rsa-pss-')) {
      signature = sign(hash, data, { key: entry.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[hash] });
    } else {
      signature = sign(hash, data, { key: entry.privateKey, padding: constants.RSA_PKCS1_PADDING });
    }
    const out = new Uint8Array(signature);
    return this.tamper ? this.tamper(out) : out;
  }

  async decrypt(id: string, _alg: DecryptAlg, data: Uint8Array): Promise<Uint8Array> {
    const entry = this.keys.get(id);
    if (!entry) throw new CaError('notFound', `no key "${id}"`);
    return new Uint8Array(privateDecrypt({ key: entry.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data));
  }

  async close(): Promise<void> {
    this.keys.clear();
  }
}
