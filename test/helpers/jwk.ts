/**
 * JWKs of keys the tests generate. Node 20 can deadlock exporting the JWK of a key that
 * generateKeyPair(Sync) made: the JWK export holds the key's lock while it allocates the
 * JWK's strings, and a garbage collection in between runs the destructor of the finished
 * generation job, which takes the same lock. A full test run hung so, in
 * test/unit/acme-jws.test.ts (its main thread in ~KeyGenJob under ExportJWKRsaKey); a loop
 * of 3,000 RSA key generations, each followed by a JWK export, hangs in about one run out
 * of two with a 1 MB young generation, and did not in six runs when the JWK came from a copy
 * of the key made through DER, as here (nor with PEM or DER exports alone).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { publicKeyFromSpki } from './signatures.ts';

export function jwkOf(key: KeyObject): JWK {
  const copy =
    key.type === 'private'
      ? createPrivateKey({ key: key.export({ type: 'pkcs8', format: 'der' }), format: 'der', type: 'pkcs8' })
      : publicKeyFromSpki(key.export({ type: 'spki', format: 'der' }));
  return copy.export({ format: 'jwk' }) as JWK;
}
