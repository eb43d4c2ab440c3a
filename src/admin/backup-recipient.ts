/**
 * The backup recipient (issue 16, item 4): a public key the CA Administrator sets; every
 * backup's file key is then encrypted to it, so whoever makes a backup (an Operator) cannot
 * open it — only the holder of the recipient's private key can restore it.
 *
 * Keys: RSA of 3072 bits or more (RSA-OAEP with SHA-256), EC P-256 / P-384 / P-521 and
 * X25519 (ECDH with a key made for this backup, HKDF-SHA256, AES-256-GCM). The recipient
 * is named by the SHA-256 of its SubjectPublicKeyInfo (hex), as `openssl pkey -pubin
 * -outform DER | sha256sum` prints it.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { generateKeyPairSync } from '../pki/keygen.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';

export interface RecipientKey {
  /** The public key (PEM, SubjectPublicKeyInfo). */
  pem: string;
  /** SHA-256 (hex) of the DER SubjectPublicKeyInfo. */
  fingerprint: string;
  /** "RSA 4096", "EC P-384", "X25519". */
  type: string;
}

/** How the file key of one archive is encrypted to the recipient (part of the archive's header). */
export interface RecipientHeader {
  alg: 'rsa-oaep-256' | 'ecdh-es+hkdf-sha256+a256gcm';
  fingerprint: string;
  /** The encrypted file key (base64); for ECDH: AES-256-GCM ciphertext and tag. */
  wrappedKey: string;
  /** ECDH: the ephemeral public key (DER SPKI, base64) and the GCM nonce. */
  epk?: string;
  iv?: string;
}

const EC_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
const HKDF_INFO = Buffer.from('certflow backup file key');

function bad(message: string): never {
  throw new CaError('malformed', message, { rule: 'backup.recipient' });
}

/** Checks a recipient public key (PEM) and describes it. */
function parseRecipientKey(pem: string): RecipientKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    bad('the backup recipient must be a public key in PEM ("-----BEGIN PUBLIC KEY-----"), e.g. `openssl pkey -in key.pem -pubout`');
  }
  const der = key.export({ type: 'spki', format: 'der' });
  const d = key.asymmetricKeyDetails ?? {};
  let type: string;
  if (key.asymmetricKeyType === 'rsa') {
    if ((d.modulusLength ?? 0) < 3072) bad(`an RSA backup recipient needs 3072 bits or more (this key has ${d.modulusLength})`);
    type = `RSA ${d.modulusLength}`;
  } else if (key.asymmetricKeyType === 'ec' && d.namedCurve && EC_CURVES[d.namedCurve]) {
    type = `EC ${EC_CURVES[d.namedCurve]}`;
  } else if (key.asymmetricKeyType === 'x25519') {
    type = 'X25519';
  } else {
    bad(`a backup recipient is an RSA (3072+), EC P-256/P-384/P-521 or X25519 key, not ${key.asymmetricKeyType}`);
  }
  return {
    pem: key.export({ type: 'spki', format: 'pem' }) as string,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    type,
  };
}

function kek(shared: Buffer, epkDer: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, epkDer, HKDF_INFO, 32));
}

/** Encrypts a 32-byte file key to the recipient. */
export function wrapFileKey(recipient: RecipientKey, fileKey: Buffer): RecipientHeader {
  const pub = createPublicKey(recipient.pem);
  if (pub.asymmetricKeyType === 'rsa') {
    const wrapped = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, fileKey);
    return { alg: 'rsa-oaep-256', fingerprint: recipient.fingerprint, wrappedKey: wrapped.toString('base64') };
  }
  const eph =
    pub.asymmetricKeyType === 'x25519'
      ? generateKeyPairSync('x25519')
      : generateKeyPairSync('ec', { namedCurve: pub.asymmetricKeyDetails!.namedCurve! });
  const epkDer = eph.publicKey.export({ type: 'spki', format: 'der' });
  const key = kek(diffieHellman({ privateKey: eph.privateKey, publicKey: pub }), epkDer);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const wrapped = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
  return {
    alg: 'ecdh-es+hkdf-sha256+a256gcm',
    fingerprint: recipient.fingerprint,
    wrappedKey: wrapped.toString('base64'),
    epk: epkDer.toString('base64'),
    iv: iv.toString('base64'),
  };
}

/** The file key, with the recipient's private key (PEM, encrypted PEM with its passphrase). */
export function unwrapFileKey(header: RecipientHeader, privateKeyPem: string, keyPassphrase?: string): Buffer {
  let priv: KeyObject;
  try {
    priv = createPrivateKey({ key: privateKeyPem, passphrase: keyPassphrase });
  } catch (e) {
    throw new CaError(
      'malformed',
      `cannot read the recipient's private key${keyPassphrase === undefined ? ' (if it is encrypted, give its passphrase with --key-passphrase)' : ' (wrong passphrase?)'}: ${(e as Error).message}`,
      { rule: 'backup.recipientKey' },
    );
  }
  const fingerprint = createHash('sha256')
    .update(createPublicKey(priv).export({ type: 'spki', format: 'der' }))
    .digest('hex');
  if (fingerprint !== header.fingerprint) {
    throw new CaError(
      'malformed',
      `this backup is encrypted to the recipient key ${header.fingerprint.slice(0, 16)}…, not to the key given (${fingerprint.slice(0, 16)}…)`,
      { rule: 'backup.recipientKey' },
    );
  }
  try {
    if (header.alg === 'rsa-oaep-256') {
      return privateDecrypt(
        { key: priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        Buffer.from(header.wrappedKey, 'base64'),
      );
    }
    const epkDer = Buffer.from(header.epk ?? '', 'base64');
    const epk = createPublicKey({ key: epkDer, format: 'der', type: 'spki' });
    const key = kek(diffieHellman({ privateKey: priv, publicKey: epk }), epkDer);
    const wrapped = Buffer.from(header.wrappedKey, 'base64');
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(header.iv ?? '', 'base64'));
    d.setAuthTag(wrapped.subarray(wrapped.length - 16));
    return Buffer.concat([d.update(wrapped.subarray(0, wrapped.length - 16)), d.final()]);
  } catch {
    throw new CaError('malformed', 'cannot decrypt the backup: the file is damaged', { rule: 'backup.damaged' });
  }
}

/**
 * Where the recipient is kept: a file of the host that makes backups (the console's and
 * the CLI's, which also read the key files), out of reach of a database login — whoever
 * could write the database could otherwise have backups encrypted to their own key.
 */
export function recipientFile(home: string): string {
  return join(home, 'ca', 'backup-recipient.pem');
}

/** The recipient set for this installation, or undefined. */
export async function currentRecipient(home: string): Promise<RecipientKey | undefined> {
  try {
    return parseRecipientKey(await readFile(recipientFile(home), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Sets (or replaces) the recipient; audited by the caller as backup.recipient.set. */
export async function setRecipient(home: string, pem: string): Promise<RecipientKey> {
  const recipient = parseRecipientKey(pem);
  await writeFileAtomic(recipientFile(home), recipient.pem, 0o644);
  return recipient;
}
