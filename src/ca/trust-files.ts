import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import { pemEncode } from '../pki/index.ts';

async function writeAtomic(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, file);
}

/**
 * Writes the trust anchor ($CERTFLOW_HOME/ca/root.pem) and the chain of issuing CAs
 * ($CERTFLOW_HOME/ca/chain.pem) that clients use with `openssl verify -CAfile root.pem
 * -untrusted chain.pem`.
 */
export async function writeTrustFiles(config: Pick<Config, 'home'>, rootDer: Uint8Array, chainDers: Uint8Array[]): Promise<void> {
  const p = paths(config);
  await writeAtomic(p.rootPem, pemEncode('CERTIFICATE', rootDer));
  await writeAtomic(p.chainPem, chainDers.map((d) => pemEncode('CERTIFICATE', d)).join(''));
}
