import { writeFileAtomic } from '../core/files.ts';
import { paths, type Config } from '../config/index.ts';
import { pemEncode } from '../pki/index.ts';

/**
 * Writes the trust anchor ($CERTFLOW_HOME/ca/root.pem) and the chain of issuing CAs
 * ($CERTFLOW_HOME/ca/chain.pem) that clients use with `openssl verify -CAfile root.pem
 * -untrusted chain.pem`, from the default issuing CA's chain (leaf side first, the root last).
 */
export async function writeTrustFiles(config: Pick<Config, 'home'>, chainWithRoot: Uint8Array[]): Promise<void> {
  const p = paths(config);
  const root = chainWithRoot.at(-1);
  if (!root) return;
  await writeFileAtomic(p.rootPem, pemEncode('CERTIFICATE', root));
  await writeFileAtomic(
    p.chainPem,
    chainWithRoot
      .slice(0, -1)
      .map((d) => pemEncode('CERTIFICATE', d))
      .join(''),
  );
}
