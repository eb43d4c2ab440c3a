/**
 * `certflow admin`: the operator console and its API on their own HTTPS listener
 * (CERTFLOW_ADMIN_BIND:CERTFLOW_ADMIN_PORT, default 127.0.0.1:8444), with a certificate
 * from the CA obtained like the main listener's (through the issuance workflow). Client
 * certificates chained to the CA are asked for, not required (login by certificate).
 * The console holds no CA key: actions start the existing workflows.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { databaseUrl, openDatabase } from '../db/open.ts';
import * as sessions from '../db/repos/admin-sessions.ts';
import { waitForCa } from '../http/server.ts';
import { unknownCaReferences } from '../ra/ca-references.ts';
import { loadManagedProfiles, watchManagedProfiles } from '../ra/profiles.ts';
import { ensureServerCertificate } from '../http/tls-cert.ts';
import { pemEncode } from '../pki/index.ts';
import { connectTemporal } from '../temporal/client.ts';
import { adminApp } from './app.ts';
import { AuthLimiter } from '../http/auth-limiter.ts';
import type { AuthSettings } from './auth.ts';
import { consoleAreas } from './areas/index.ts';
import { certflowVersion } from './version.ts';

export interface RunningAdmin {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startAdmin(config: Config, log: Logger): Promise<RunningAdmin> {
  const pool = await openDatabase(config, log);
  await loadManagedProfiles(config, pool, log);
  const profileWatch = watchManagedProfiles(config, { url: databaseUrl(config), pool, log });
  const { issuing, chain } = await waitForCa(config, pool, log);
  for (const r of await unknownCaReferences(config, pool)) log.error({ path: r.path, ca: r.name }, r.message);
  const temporal = await connectTemporal(config);
  const tls = await ensureServerCertificate({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log, name: 'admin' });
  const deps = { config, pool, temporal: temporal.client, log };
  const settings: AuthSettings = {
    idleSeconds: config.admin.idleSeconds,
    maxSessionSeconds: config.admin.maxSessionSeconds,
    limiter: new AuthLimiter(pool, config.authFailures, log),
  };
  const { routes, pages } = consoleAreas(settings);
  const app = adminApp(deps, { routes, pages, settings, version: certflowVersion() });
  const clientCas = chain.map((der) => pemEncode('CERTIFICATE', der));
  const server = https.createServer(
    { key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false, ca: clientCas },
    app.callback(),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.admin.port, config.admin.bind, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

  let serial = tls.serial;
  let checking = false;
  const renewal = setInterval(async () => {
    if (checking) return; // a renewal in flight takes longer than the interval
    checking = true;
    try {
      const next = await ensureServerCertificate({ config, temporal: temporal.client, issuingCaDer: issuing.certDer, log, name: 'admin' });
      if (next.serial !== serial) {
        server.setSecureContext({ key: next.key, cert: next.cert, ca: clientCas });
        serial = next.serial;
        log.info({ serial, notAfter: next.notAfter }, 'admin HTTPS certificate replaced');
      }
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'admin HTTPS certificate renewal failed; will retry');
    } finally {
      checking = false;
    }
  }, config.tlsCheckSeconds * 1000);
  renewal.unref();
  const housekeeping = setInterval(async () => {
    try {
      await sessions.sweep(pool, config.admin.idleSeconds);
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'admin housekeeping failed; will retry');
    }
  }, 3600_000);
  housekeeping.unref();

  const host =
    config.admin.bind === '0.0.0.0' || config.admin.bind === '::'
      ? 'localhost'
      : config.admin.bind.includes(':')
        ? `[${config.admin.bind}]`
        : config.admin.bind;
  const url = `https://${host === '127.0.0.1' ? 'localhost' : host}:${port}/`;
  log.info({ listen: `${config.admin.bind}:${port}`, url }, 'admin console listening');
  return {
    url,
    port,
    async close() {
      clearInterval(housekeeping);
      clearInterval(renewal);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await temporal.close().catch(() => {});
      await profileWatch.close().catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}
