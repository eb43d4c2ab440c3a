/**
 * Shared secrets of CMP clients at rest. Password-based MAC (RFC 4211 4.4 PasswordBasedMac,
 * RFC 8018 PBMAC1) derives the MAC key from the secret and a salt the *sender* picks for
 * each message, so the server needs the secret itself: it is stored encrypted under the
 * secrets key (src/core/secrets.ts, shared with the ACME EAB and nonce keys), with the
 * client reference as associated data, so a ciphertext cannot be moved to another client.
 */
import { openSecret, sealSecret, type SecretsKey } from '../core/secrets.ts';

export { secretsKey, type SecretsKey } from '../core/secrets.ts';

export function encryptSecret(k: SecretsKey, ref: string, secret: Uint8Array): string {
  return sealSecret(k, `cmp client ${ref}`, secret);
}

export function decryptSecret(k: SecretsKey, ref: string, enc: string): Buffer {
  return openSecret(k, `cmp client ${ref}`, enc, `the stored secret of CMP client "${ref}"`);
}
