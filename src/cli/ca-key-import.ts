/**
 * `certflow ca import --key <PKCS#8 file>`: the key goes into the software key store
 * directly. Like `certflow keys recover`, this part of the CLI runs where the key store is
 * (the only front-end module that imports src/keys: .dependency-cruiser.cjs); the key never
 * travels through Temporal (a workflow's input is kept in its history).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadConfig, paths } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { resolvePassphrase, SoftwareKeyStore } from '../keys/index.ts';
import { describeCertificate, pemDecodeAll } from '../pki/index.ts';

/**
 * Puts an existing CA's PKCS#8 key into the software key store under the CA's name, after
 * checking it is the certificate's key (the workflow checks again, with a signature).
 */
export async function importKeyFile(name: string, certPem: string, file: string, passphraseFile?: string): Promise<string> {
  const config = loadConfig();
  if (config.keys.backend !== 'software') {
    throw new CaError(
      'malformed',
      'the worker keeps its keys in a PKCS#11 token: import the key into the token with your HSM tools, then use --pkcs11-uri',
    );
  }
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new CaError('malformed', `cannot read the key ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  const passphrase = passphraseFile
    ? (
        await readFile(passphraseFile, 'utf8').catch(() => {
          throw new CaError('malformed', `cannot read the passphrase file ${passphraseFile}`);
        })
      ).replace(/\r?\n$/, '')
    : undefined;
  let key: KeyObject;
  try {
    const pem = bytes.toString('latin1').includes('-----BEGIN');
    key = createPrivateKey(pem ? { key: bytes, format: 'pem', passphrase } : { key: bytes, format: 'der', type: 'pkcs8', passphrase });
  } catch (e) {
    throw new CaError(
      'malformed',
      `${file} is not a PKCS#8 private key${passphrase ? '' : ' (encrypted? give --key-passphrase-file)'}: ${(e as Error).message}`,
    );
  }
  const cert = pemDecodeAll(certPem).find((b) => b.label === 'CERTIFICATE');
  if (!cert) throw new CaError('malformed', 'the certificate file holds no PEM certificate');
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!spki.equals(Buffer.from(describeCertificate(cert.der).spki))) {
    throw new CaError('policy', `the key in ${file} does not match the certificate (another public key); nothing was imported`, {
      rule: 'ca.import.keyMismatch',
    });
  }
  const { passphrase: storePassphrase } = await resolvePassphrase(config);
  const store = new SoftwareKeyStore({ dir: paths(config).keysDir, passphrase: storePassphrase });
  try {
    await store.importKey(name, key);
  } finally {
    await store.close();
  }
  return name;
}
