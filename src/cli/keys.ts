/**
 * `certflow keys recover <serial> --out <file>`: recovers a private key archived by EST
 * server-side key generation (labels with archiveServerKeys). Unwrapping needs the
 * key-archive key, so this runs where the CA key store is (like `certflow worker`).
 * Every recovery is audited (actor "operator").
 */
import type { Command } from 'commander';
import { createDecipheriv, createPrivateKey } from 'node:crypto';
import { CaError, errorMessage } from '../core/errors.ts';
import { audit } from '../db/repos/audit.ts';
import * as certificates from '../db/repos/certificates.ts';
import * as keyArchive from '../db/repos/key-archive.ts';
import { archiveAad } from '../est/archive.ts';
import { openKeyStore } from '../keys/index.ts';
import { pemEncode } from '../pki/index.ts';
import type { CliContext } from './context.ts';
import { normalizeSerial, writeFileAtomic } from './output.ts';

export function registerKeyCommands(root: Command, ctx: CliContext): void {
  const keys = root.command('keys').description('archived private keys (EST server-side key generation)');
  keys
    .command('recover <serial>')
    .description('decrypt the archived private key of a certificate and write it as PKCS#8 PEM (mode 0600); needs the CA key store')
    .requiredOption('--out <file>', 'where to write the private key')
    .action(async (serialArg: string, opts: { out: string }) => {
      const serial = normalizeSerial(serialArg);
      await ctx.withPool(async (pool, config) => {
        const row = await keyArchive.getArchivedKey(pool, serial);
        if (!row) {
          const cert = await certificates.get(pool, serial);
          throw new CaError(
            'notFound',
            cert
              ? `certificate ${serial} has no archived key (only EST serverkeygen on labels with archiveServerKeys archives keys)`
              : `no certificate with serial ${serial}`,
          );
        }
        const archive = await keyArchive.getArchiveKey(pool, row.keyId);
        const store = await openKeyStore(config, { warn: () => undefined });
        let pkcs8: Buffer;
        try {
          if (archive && archive.keyBackend !== store.backend) {
            throw new CaError('config', `archive key "${row.keyId}" is in the ${archive.keyBackend} key store, but CERTFLOW_KEY_BACKEND=${store.backend}`);
          }
          if (!(await store.get(row.keyId))) {
            throw new CaError('config', `the archive key "${row.keyId}" is not in the ${store.backend} key store`);
          }
          const aesKey = Buffer.from(await store.decrypt(row.keyId, 'rsa-oaep-sha256', row.wrappedKey));
          try {
            const decipher = createDecipheriv('aes-256-gcm', aesKey, row.iv);
            decipher.setAAD(archiveAad(row.serial));
            decipher.setAuthTag(row.tag);
            pkcs8 = Buffer.concat([decipher.update(row.ciphertext), decipher.final()]);
          } catch (e) {
            throw new CaError('internal', `the archived key of ${serial} does not decrypt (corrupted or tampered with): ${errorMessage(e)}`, { cause: e });
          } finally {
            aesKey.fill(0);
          }
        } finally {
          await store.close();
        }
        // A sanity check that what was archived is a private key.
        const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
        await writeFileAtomic(opts.out, pemEncode('PRIVATE KEY', pkcs8), 0o600);
        pkcs8.fill(0);
        await audit(pool, { actor: 'operator', action: 'key.recover', object: serial, details: { requestId: row.requestId, keyId: row.keyId, out: opts.out } });
        if (ctx.json()) ctx.printJson({ serial, requestId: row.requestId, keyType: key.asymmetricKeyType, out: opts.out });
        else ctx.say(`recovered the ${key.asymmetricKeyType} private key of ${serial} -> ${opts.out}`);
      });
    });
}
