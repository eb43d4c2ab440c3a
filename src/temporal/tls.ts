/**
 * TLS options of every connection certflow makes to Temporal (client, worker, readiness
 * checks): mTLS with the cluster's client certificate when config.temporal.tls names one
 * (`certflow cluster`, docker-compose.yml), plain gRPC otherwise (dev mode). The files are
 * read at each connect, so a renewed certificate is used by the next connection.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config.js';
import type { TemporalTlsFiles } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';

export function temporalTlsOptions(tls: TemporalTlsFiles | undefined): TLSConfig | undefined {
  if (!tls) return undefined;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new CaError('config', `cannot read the ${what} for TLS to Temporal (${file}): ${errorMessage(e)}`, {
        rule: 'env.TEMPORAL_TLS',
      });
    }
  };
  return {
    serverNameOverride: tls.serverName,
    serverRootCACertificate: read(tls.caFile, 'CA certificate'),
    clientCertPair: { crt: read(tls.certFile, 'client certificate'), key: read(tls.keyFile, 'client key') },
  };
}
