/**
 * Secrets certflow must be able to read back, at rest (issue 16, item 8): CMP clients'
 * shared secrets, ACME EAB MAC keys, the ACME nonce HMAC key. A one-way hash cannot work
 * for them (the server computes MACs with the secret itself), so they are stored encrypted
 * — AES-256-GCM, with what the secret is for as associated data, so that a ciphertext
 * cannot be moved to another row or purpose — under the secrets key, which lives outside
 * the database: `CERTFLOW_CMP_SECRETS_KEY` (32 bytes, base64) or
 * `$CERTFLOW_HOME/keys/cmp-secrets.key` (created with mode 0600 on first use; backups carry
 * it). A stolen database alone reveals no secret. This module is the one home of that
 * encryption; callers name the purpose (`sealSecret(key, "acme eab key <kid>", bytes)`).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import { CaError } from './errors.ts';

export interface SecretsKey {
  key: Buffer;
  /** First 8 bytes of SHA-256 of the key (hex): names the key in each ciphertext. */
  id: string;
}

const cache = new Map<string, Promise<SecretsKey>>();

function secretsKeyFile(config: Pick<Config, 'home'>): string {
  return join(paths(config).keysDir, 'cmp-secrets.key');
}

/** A secrets key from its 32 bytes. */
export function secretsKeyOf(key: Buffer): SecretsKey {
  return { key, id: createHash('sha256').update(key).digest('hex').slice(0, 16) };
}

function fromBase64(text: string, where: string): SecretsKey {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32)
    throw new CaError('config', `${where} must hold 32 bytes in base64 (it has ${key.length})`, { rule: 'cmp.secretsKey' });
  return secretsKeyOf(key);
}

/** The key from CERTFLOW_CMP_SECRETS_KEY, else the key file (created on first use). */
export function secretsKey(config: Pick<Config, 'home' | 'secretsKey'>): Promise<SecretsKey> {
  if (config.secretsKey) return Promise.resolve(fromBase64(config.secretsKey, 'CERTFLOW_CMP_SECRETS_KEY'));
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

const aad = (purpose: string) => Buffer.from(`certflow ${purpose}`);

/** `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts); `purpose` says what the secret is for. */
export function sealSecret(k: SecretsKey, purpose: string, secret: Uint8Array): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', k.key, iv);
  cipher.setAAD(aad(purpose));
  const ct = Buffer.concat([cipher.update(secret), cipher.final()]);
  return ['v1', k.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

/** The secret sealed for `purpose`; 'config' errors name `what` (e.g. 'the secret of CMP client "x"'). */
export function openSecret(k: SecretsKey, purpose: string, enc: string, what: string): Buffer {
  const [v, id, iv, tag, ct] = enc.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined)
    throw new CaError('config', `${what} is not stored in a known format`, { rule: 'secrets.format' });
  if (id !== k.id) {
    throw new CaError(
      'config',
      `${what} was encrypted under another secrets key (${id}, this process has ${k.id}); set CERTFLOW_CMP_SECRETS_KEY alike on every server and CLI, or restore keys/cmp-secrets.key`,
      { rule: 'cmp.secretsKey' },
    );
  }
  try {
    const d = createDecipheriv('aes-256-gcm', k.key, Buffer.from(iv, 'base64url'));
    d.setAAD(aad(purpose));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]);
  } catch (e) {
    throw new CaError('config', `${what} does not decrypt (altered or moved row?)`, { rule: 'secrets.altered', cause: e });
  }
}
