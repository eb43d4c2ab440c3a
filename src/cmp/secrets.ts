/**
 * Shared secrets of CMP clients at rest. Password-based MAC (RFC 4211 4.4 PasswordBasedMac,
 * RFC 8018 PBMAC1) derives the MAC key from the secret and a salt the *sender* picks for
 * each message, so the server needs the secret itself: a one-way hash (as for EST
 * passwords) cannot work. Secrets are therefore stored encrypted (AES-256-GCM, the client
 * reference as associated data, so a ciphertext cannot be moved to another client) under
 * the CMP secrets key, which lives outside the database: `CERTFLOW_CMP_SECRETS_KEY`
 * (32 bytes, base64) or `$CERTFLOW_HOME/keys/cmp-secrets.key` (created with mode 0600 on
 * first use). A stolen database alone does not reveal a secret.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';

export interface SecretsKey {
  key: Buffer;
  /** First 8 bytes of SHA-256 of the key (hex): names the key in each ciphertext. */
  id: string;
}

const cache = new Map<string, Promise<SecretsKey>>();

function secretsKeyFile(config: Pick<Config, 'home'>): string {
  return join(paths(config).keysDir, 'cmp-secrets.key');
}

function fromBase64(text: string, where: string): SecretsKey {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32)
    throw new CaError('config', `${where} must hold 32 bytes in base64 (it has ${key.length})`, { rule: 'cmp.secretsKey' });
  return { key, id: createHash('sha256').update(key).digest('hex').slice(0, 16) };
}

/** The key from the environment, else the key file (created on first use). */
export function secretsKey(config: Pick<Config, 'home' | 'cmp'>): Promise<SecretsKey> {
  const fromEnv = config.cmp.secretsKey;
  if (fromEnv) return Promise.resolve(fromBase64(fromEnv, 'CERTFLOW_CMP_SECRETS_KEY'));
  const file = secretsKeyFile(config);
  let p = cache.get(file);
  if (!p) {
    p = loadOrCreate(file);
    cache.set(file, p);
    p.catch(() => cache.delete(file));
  }
  return p;
}

async function loadOrCreate(file: string): Promise<SecretsKey> {
  try {
    return fromBase64(await readFile(file, 'utf8'), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
  try {
    // 'wx': whoever creates the file first wins; the others read the winner's key.
    await writeFile(file, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return fromBase64(await readFile(file, 'utf8'), file);
}

/** `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts). */
export function encryptSecret(k: SecretsKey, ref: string, secret: Uint8Array): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', k.key, iv);
  cipher.setAAD(Buffer.from(`certflow cmp client ${ref}`));
  const ct = Buffer.concat([cipher.update(secret), cipher.final()]);
  return ['v1', k.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

export function decryptSecret(k: SecretsKey, ref: string, enc: string): Buffer {
  const [v, id, iv, tag, ct] = enc.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined)
    throw new CaError('config', `the stored secret of CMP client "${ref}" is not in a known format`, { rule: 'cmp.secretsKey' });
  if (id !== k.id) {
    throw new CaError(
      'config',
      `the secret of CMP client "${ref}" was encrypted under another CMP secrets key (${id}, this server has ${k.id}); set CERTFLOW_CMP_SECRETS_KEY alike on every server and CLI`,
      {
        rule: 'cmp.secretsKey',
      },
    );
  }
  try {
    const d = createDecipheriv('aes-256-gcm', k.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(`certflow cmp client ${ref}`));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]);
  } catch (e) {
    throw new CaError('config', `the stored secret of CMP client "${ref}" does not decrypt (altered row?)`, {
      rule: 'cmp.secretsKey',
      cause: e,
    });
  }
}
