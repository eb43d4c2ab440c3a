import type { Config } from '../config/index.ts';
import type { CaUrls } from './issuer.ts';

/**
 * Where relying parties find a CA's certificate, CRL and OCSP responder (HTTP listener).
 * Each key generation of a CA has its own certificate and CRL: the first keeps the plain
 * `/ca/<name>.crt` and `/crl/<name>.crl` (what certificates issued before any rollover
 * name), later ones `/ca/<name>/<generation>.crt` and `/crl/<name>/<generation>.crl`.
 */
export function caUrls(config: Pick<Config, 'publicHttpUrl'>, caName: string, generation = 1, opts: { delta?: boolean } = {}): CaUrls {
  const base = generation === 1 ? caName : `${caName}/${generation}`;
  return {
    crl: `${config.publicHttpUrl}/crl/${base}.crl`,
    ocsp: `${config.publicHttpUrl}/ocsp`,
    caIssuers: `${config.publicHttpUrl}/ca/${base}.crt`,
    // Delta CRLs (a CRL profile with deltaCrls): /crl/<name>/delta.crl, /crl/<name>/<generation>/delta.crl.
    ...(opts.delta ? { deltaCrl: `${config.publicHttpUrl}/crl/${base}/delta.crl` } : {}),
  };
}

/**
 * The CA name and generation of a `/crl/…` or `/ca/…` file name ("name.crl", "name/2.crl",
 * and for CRLs "name/delta.crl", "name/2/delta.crl"), or undefined.
 */
export function parseCaFile(path: string, ext: string): { name: string; generation: number; delta: boolean } | undefined {
  const delta = ext === 'crl' && path.endsWith('/delta.crl');
  const rest = delta ? `${path.slice(0, -'/delta.crl'.length)}.crl` : path;
  const m = new RegExp(`^([A-Za-z0-9][A-Za-z0-9._-]*?)(?:/([1-9][0-9]{0,5}))?\\.${ext}$`).exec(rest);
  return m ? { name: m[1]!, generation: m[2] ? Number(m[2]) : 1, delta } : undefined;
}
