/**
 * Opens the key store selected by CERTFLOW_KEY_BACKEND ("software" or "pkcs11").
 */
import { existsSync } from 'node:fs';
import { CaError } from '../core/errors.ts';
import { paths, type Config } from '../config/index.ts';
import { Pkcs11KeyStore } from './pkcs11.ts';
import { ReopeningKeyStore } from './reopening.ts';
import { resolvePassphrase, SoftwareKeyStore } from './software.ts';
import type { KeyStore } from './types.ts';

export * from './types.ts';
export { SoftwareKeyStore, resolvePassphrase } from './software.ts';
export { Pkcs11KeyStore } from './pkcs11.ts';
export interface OpenKeyStoreOptions {
  /** Receives operational warnings (e.g. the dev-mode passphrase file). */
  warn?: (msg: string) => void;
  /** Number of PKCS#11 sessions (concurrent signatures); default 4. */
  pkcs11Sessions?: number;
}

export async function openKeyStore(config: Config, opts: OpenKeyStoreOptions = {}): Promise<KeyStore> {
  if (config.keys.backend === 'pkcs11') return openPkcs11(config, opts);
  const resolved = await resolvePassphrase(config);
  if (resolved.source === 'file') {
    opts.warn?.(
      `CA keys are protected by a passphrase kept in ${resolved.file} next to them (dev mode); ` +
        'production deployments must set CERTFLOW_KEY_PASSPHRASE (or use CERTFLOW_KEY_BACKEND=pkcs11)',
    );
  }
  return new SoftwareKeyStore({ dir: paths(config).keysDir, passphrase: resolved.passphrase });
}

async function openPkcs11(config: Config, opts: OpenKeyStoreOptions): Promise<KeyStore> {
  const { module, tokenLabel, pin } = config.keys.pkcs11;
  const missing = [
    module ? undefined : 'CERTFLOW_PKCS11_MODULE',
    tokenLabel ? undefined : 'CERTFLOW_PKCS11_TOKEN_LABEL',
    pin ? undefined : 'CERTFLOW_PKCS11_PIN',
  ].filter((v): v is string => v !== undefined);
  if (missing.length > 0 || !module || !tokenLabel || !pin) {
    throw new CaError('config', `CERTFLOW_KEY_BACKEND=pkcs11 needs ${missing.join(', ')}`, { rule: 'env.CERTFLOW_PKCS11' });
  }
  if (!existsSync(module)) {
    throw new CaError('config', `CERTFLOW_PKCS11_MODULE=${module} does not exist`, { rule: 'env.CERTFLOW_PKCS11_MODULE' });
  }
  const open = () => Pkcs11KeyStore.open({ module, tokenLabel, pin, sessions: opts.pkcs11Sessions });
  // A token that goes away and comes back is found again without restarting the worker.
  return new ReopeningKeyStore(await open(), open, { describe: `PKCS#11 token "${tokenLabel}"`, warn: opts.warn });
}
