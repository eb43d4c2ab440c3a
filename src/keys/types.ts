/** Key algorithms a CA key can have (CERTFLOW_CA_KEY_ALG). */
export const KEY_ALGS = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyAlg = (typeof KEY_ALGS)[number];

/**
 * Signature algorithms. The key store hashes the message itself (in the token where the
 * token can) and returns the signature in the form X.509/CMS carry it: ECDSA as the DER
 * Ecdsa-Sig-Value SEQUENCE { r, s }, RSA as the raw big-endian signature block.
 * PSS uses MGF1 with the same hash and a salt as long as the hash.
 */
export const SIGN_ALGS = [
  'ecdsa-sha256',
  'ecdsa-sha384',
  'ecdsa-sha512',
  'rsa-pkcs1-sha256',
  'rsa-pkcs1-sha384',
  'rsa-pkcs1-sha512',
  'rsa-pss-sha256',
  'rsa-pss-sha384',
  'rsa-pss-sha512',
] as const;
export type SignAlg = (typeof SIGN_ALGS)[number];

/** Decryption algorithms (for keys generated with usage 'decrypt'). OAEP uses MGF1-SHA256 and no label. */
export const DECRYPT_ALGS = ['rsa-oaep-sha256'] as const;
export type DecryptAlg = (typeof DECRYPT_ALGS)[number];

/** What a key is for: CA keys sign; key-archive keys decrypt (and never sign). */
export type KeyUsage = 'sign' | 'decrypt';

export interface KeyInfo {
  /** Stable identifier of the key inside its store (also CKA_LABEL / CKA_ID in PKCS#11). */
  id: string;
  alg: KeyAlg;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

export interface KeyStore {
  readonly backend: 'software' | 'pkcs11';
  /**
   * Creates a new key pair; fails with CaError('conflict') when `id` exists. `usage` (default 'sign')
   * matters for PKCS#11, where it sets CKA_SIGN/CKA_VERIFY or CKA_DECRYPT/CKA_ENCRYPT.
   */
  generate(id: string, alg: KeyAlg, usage?: KeyUsage): Promise<KeyInfo>;
  /** The key's public information, or undefined when the store has no such key. */
  get(id: string): Promise<KeyInfo | undefined>;
  /** Signs `data` (the whole message, not a digest). Safe to call concurrently. */
  sign(id: string, alg: SignAlg, data: Uint8Array): Promise<Uint8Array>;
  /** Decrypts `data` with the private key `id` (RSA keys only). */
  decrypt(id: string, alg: DecryptAlg, data: Uint8Array): Promise<Uint8Array>;
  /** Releases sessions / handles. */
  close(): Promise<void>;
}

/** The default signature algorithm for a key algorithm. */
export function defaultSignAlg(alg: KeyAlg): SignAlg {
  switch (alg) {
    case 'ec-p256':
      return 'ecdsa-sha256';
    case 'ec-p384':
      return 'ecdsa-sha384';
    default:
      return 'rsa-pkcs1-sha256';
  }
}

export function isKeyAlg(s: string): s is KeyAlg {
  return (KEY_ALGS as readonly string[]).includes(s);
}
