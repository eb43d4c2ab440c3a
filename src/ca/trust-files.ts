import { writeFileAtomic } from '../core/files.ts';
import { paths, type Config } from '../config/index.ts';
import { pemEncode } from '../pki/index.ts';

/**
 * Writes the trust anchor ($CERTFLOW_HOME/ca/root.pem) and the chain of issuing CAs
 * ($CERTFLOW_HOME/ca/chain.pem) that clients use with `openssl verify -CAfile root.pem
 * -untrusted chain.pem`.
 */
export async function writeTrustFiles(config: Pick<Config, 'home'>, rootDer: Uint8Array, chainDers: Uint8Array[]): Promise<void> {
  const p = paths(config);
  await writeFileAtomic(p.rootPem, pemEncode('CERTIFICATE', rootDer));
  await writeFileAtomic(p.chainPem, chainDers.map((d) => pemEncode('CERTIFICATE', d)).join(''));
}
