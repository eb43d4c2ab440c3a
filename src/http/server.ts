/**
 * `certflow server`: the HTTPS and HTTP listeners. Waits for the CA hierarchy (created by
 * a worker), obtains its own TLS certificate through the issuance workflow, then serves.
 * The certificate is renewed in the background and swapped in without a restart.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'pg';
import { writeTrustFiles } from '../ca/trust-files.ts';
import { unknownCaReferences } from '../ra/ca-references.ts';
import { loadManagedProfiles, watchManagedProfiles } from '../ra/profiles.ts';
import type { Config } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { databaseUrl, FRONT_END_POOL, openDatabase } from '../db/open.ts';
import { sealPlaintextEabKeys } from '../acme/eab.ts';
import { AccountCache } from '../acme/account-cache.ts';
import * as cas from '../db/repos/cas.ts';
import { connectTemporal } from '../temporal/client.ts';
import { httpApp, httpsApp } from './app.ts';
import { createMetrics } from './metrics.ts';
import { ensureServerCertificate } from './tls-cert.ts';
import { ensureCmpSigner } from '../cmp/signer.ts';
import { pemEncode } from '../pki/index.ts';

export interface RunningServer {
  httpsUrl: string;
  httpUrl: string;
  acmeDirectoryUrl: string;
  close(): Promise<void>;
}

/** Waits until a worker has created the issuing CA; logs while it waits. Returns its chain, root last. */
export async function waitForCa(config: Config, pool: Pool, log: Logger) {
  for (let i = 0; ; i++) {
    const issuing = await cas.get(pool, config.ca.issuingName);
    const chain = issuing?.parent ? await cas.issuingChain(pool, issuing.name, { includeRoot: true }) : [];
    if (issuing && chain.length > 1) return { issuing, chain };
    if (i % 10 === 0) log.info(`waiting for a worker to create the CA hierarchy (issuing CA "${config.ca.issuingName}")`);
    await sleep(500);
  }
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const pool = await openDatabase(config, log, { pool: FRONT_END_POOL });
  await loadManagedProfiles(config, pool, log);
  const profileWatch = watchManagedProfiles(config, { url: databaseUrl(config), pool, log });
  const sealed = await sealPlaintextEabKeys(pool, config);
  if (sealed) log.info({ sealed }, 'EAB MAC keys stored in clear by an older certflow are now encrypted under the secrets key');
  const { issuing, chain } = await waitForCa(config, pool, log);
  await writeTrustFiles(config, chain);
  for (const r of await unknownCaReferences(config, pool)) log.error({ path: r.path, ca: r.name }, r.message);
  const temporal = await connectTemporal(config);
  const tls = await ensureServerCertificate({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log });

  let cmpSigner = await ensureCmpSigner({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log });

  const metrics = createMetrics(pool, config.stuck);
  const accountCache = new AccountCache(pool, { url: databaseUrl(config), log });
  const deps = { config, pool, temporal: temporal.client, log, metrics, accountCache, cmpSigner: () => cmpSigner };
  // Client certificates are asked for, not required: EST re-enrollment (and enrollment
  // where a label allows it) authenticates with a certificate this certflow issued, from
  // any of its CAs; the EST handlers check the certificate store and the label's CAs.
  const clientCas = (await cas.list(pool)).map((ca) => pemEncode('CERTIFICATE', ca.certDer));
  const httpsServer = https.createServer(
    { key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false, ca: clientCas },
    httpsApp(deps).callback(),
  );
  const httpServer = http.createServer(httpApp(deps).callback());
  const httpsPort = await listen(httpsServer, config.httpsPort, config.bind);
  const httpPort = await listen(httpServer, config.httpPort, config.bind);

  // Own certificates: renewed when due or asked for (`certflow tls renew`), or picked up
  // from the file another server renewed; a new one applies to new connections at once.
  let serial = tls.serial;
  let checking = false;
  const renew = setInterval(async () => {
    if (checking) return; // a renewal in flight takes longer than the interval
    checking = true;
    try {
      const next = await ensureServerCertificate({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log });
      if (next.serial !== serial) {
        httpsServer.setSecureContext({ key: next.key, cert: next.cert, ca: clientCas });
        serial = next.serial;
        log.info({ serial, notAfter: next.notAfter }, 'HTTPS certificate replaced');
      }
      cmpSigner = await ensureCmpSigner({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log });
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'HTTPS certificate renewal failed; will retry');
    } finally {
      checking = false;
    }
  }, config.tlsCheckSeconds * 1000);
  renew.unref();

  const host = 'localhost';
  const httpsUrl = `https://${host}:${httpsPort}`;
  const httpUrl = `http://${host}:${httpPort}`;
  log.info({ https: `${config.bind}:${httpsPort}`, http: `${config.bind}:${httpPort}` }, 'listening');
  return {
    httpsUrl,
    httpUrl,
    acmeDirectoryUrl: `${httpsUrl}/acme/directory`,
    async close() {
      clearInterval(renew);
      await Promise.all(
        [httpsServer, httpServer].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await accountCache.close().catch(() => {});
      await profileWatch.close().catch(() => {});
      await temporal.close().catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}
