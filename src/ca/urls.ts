import type { Config } from '../config/index.ts';
import type { CaUrls } from './issuer.ts';

/** Where relying parties find a CA's certificate, CRL and OCSP responder (HTTP listener). */
export function caUrls(config: Pick<Config, 'publicHttpUrl'>, caName: string): CaUrls {
  return {
    crl: `${config.publicHttpUrl}/crl/${caName}.crl`,
    ocsp: `${config.publicHttpUrl}/ocsp`,
    caIssuers: `${config.publicHttpUrl}/ca/${caName}.crt`,
  };
}
