/**
 * The HTTPS listeners' own certificates ("server": ACME/EST/CMP; "admin": the console),
 * issued by certflow's CA through the issuance workflow (see own-certificates.ts: one
 * renewal per certificate however many servers share $CERTFLOW_HOME/tls/). Their keys are
 * the servers' own (never a CA key).
 */
import type { Client } from '@temporalio/client';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import { ensureOwnCertificate, type OwnCertificateSpec } from './own-certificates.ts';

export interface TlsMaterial {
  key: string;
  cert: string; // leaf + chain, PEM
  notAfter: Date;
  /** Serial (hex) of the leaf: a server swaps its context when it changes. */
  serial: string;
}

function tlsNames(config: Pick<Config, 'tlsNames'>): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', ...config.tlsNames])];
}

/** `name` keeps listeners apart: "server" (HTTPS) and "admin" (the console) each have their key and certificate. */
export function listenerCertificate(config: Pick<Config, 'home' | 'tlsNames'>, name = 'server'): OwnCertificateSpec {
  const dir = paths(config).tlsDir;
  const names = tlsNames(config);
  return {
    name,
    keyFile: join(dir, `${name}-key.pem`),
    certFile: join(dir, `${name}.pem`),
    subject: 'CN=localhost',
    sans: { dns: names.filter((n) => !isIP(n)), ip: names.filter((n) => isIP(n)), email: [], uri: [] },
    profile: 'tls-server',
    requester: `certflow-${name}`,
  };
}

export async function ensureServerCertificate(args: {
  config: Config;
  temporal: Client;
  issuingCaDer: Uint8Array;
  log: Logger;
  timeoutMs?: number;
  /** Which listener (default "server"). */
  name?: string;
}): Promise<TlsMaterial> {
  const own = await ensureOwnCertificate({ ...args, spec: listenerCertificate(args.config, args.name) });
  return { key: own.keyPem, cert: own.certPem, notAfter: own.leaf.notAfter, serial: own.leaf.serialHex };
}
