/**
 * `certflow keys recover <serial> --out <file>`: recovers a private key archived by EST
 * server-side key generation (labels with archiveServerKeys). Unwrapping needs the
 * key-archive key, so this runs where the CA key store is (like `certflow worker`).
 * Every recovery is audited (actor "operator").
 */
import type { Command } from 'commander';
import { createPrivateKey } from 'node:crypto';
import { audit } from '../db/repos/audit.ts';
import { recoverWithLocalKeyStore } from '../../activities/key-archive.ts';
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
        const { pkcs8, requestId, keyId } = await recoverWithLocalKeyStore(config, pool, serial);
        // A sanity check that what was archived is a private key.
        const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
        await writeFileAtomic(opts.out, pemEncode('PRIVATE KEY', pkcs8), 0o600);
        pkcs8.fill(0);
        await audit(pool, { actor: 'operator', action: 'key.recover', object: serial, details: { requestId, keyId, out: opts.out } });
        if (ctx.json()) ctx.printJson({ serial, requestId, keyType: key.asymmetricKeyType, out: opts.out });
        else ctx.say(`recovered the ${key.asymmetricKeyType} private key of ${serial} -> ${opts.out}`);
      });
    });
}
