/**
 * The HTTPS listener's own certificate, issued by certflow's CA through the same workflow
 * every other certificate takes (the server holds no CA key). Its key is the server's own
 * (not a CA key) and lives in $CERTFLOW_HOME/tls/. A request in flight is remembered in
 * tls/pending-request, so a server killed while waiting re-attaches to the same request
 * instead of asking for a second certificate.
 */
import type { Client } from '@temporalio/client';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { paths, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { buildCsr, describeCertificate, pemDecodeAll, type SanSet } from '../pki/index.ts';
import { issueAndWait } from '../ra/enrollment.ts';

export interface TlsMaterial {
  key: string;
  cert: string; // leaf + chain, PEM
  notAfter: Date;
}

function tlsNames(config: Pick<Config, 'tlsNames'>): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', ...config.tlsNames])];
}

/** `name` keeps listeners apart: "server" (HTTPS) and "admin" (the console) each have their key and certificate. */
function files(config: Pick<Config, 'home'>, name = 'server') {
  const dir = paths(config).tlsDir;
  return {
    dir,
    key: join(dir, `${name}-key.pem`),
    cert: join(dir, `${name}.pem`),
    pending: join(dir, name === 'server' ? 'pending-request' : `${name}-pending-request`),
  };
}

const writePrivate = (file: string, content: string) => writeFileAtomic(file, content, 0o600);

async function serverKey(file: string): Promise<KeyObject> {
  if (existsSync(file)) return createPrivateKey(await readFile(file, 'utf8'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writePrivate(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  return privateKey;
}

/** True when the stored certificate covers `names`, is issued by `issuerDer`'s key and is not due for renewal. */
function usable(certPem: string, names: string[], issuerDer: Uint8Array, now: Date): Date | undefined {
  const [leaf] = pemDecodeAll(certPem);
  if (!leaf) return undefined;
  const d = describeCertificate(leaf.der);
  const have = new Set([...d.sans.dns, ...d.sans.ip]);
  if (!names.every((n) => have.has(n))) return undefined;
  const issuer = describeCertificate(issuerDer);
  if (d.authorityKeyIdHex !== issuer.subjectKeyIdHex) return undefined;
  const lifetime = d.notAfter.getTime() - d.notBefore.getTime();
  // Renew once two thirds of the lifetime have passed.
  if (now.getTime() > d.notAfter.getTime() - lifetime / 3) return undefined;
  return d.notAfter;
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
  const { config, log } = args;
  const name = args.name ?? 'server';
  const f = files(config, name);
  await mkdir(f.dir, { recursive: true, mode: 0o700 });
  const key = await serverKey(f.key);
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const names = tlsNames(config);

  if (existsSync(f.cert)) {
    const certPem = await readFile(f.cert, 'utf8');
    const notAfter = usable(certPem, names, args.issuingCaDer, new Date());
    if (notAfter) return { key: keyPem, cert: certPem, notAfter };
    log.info('HTTPS certificate missing names, from another CA or due for renewal: requesting a new one');
  }

  const sans: SanSet = { dns: names.filter((n) => !isIP(n)), ip: names.filter((n) => isIP(n)), email: [], uri: [] };
  const csr = buildCsr({ subject: 'CN=localhost', sans, privateKey: key });
  const requestId = existsSync(f.pending) ? (await readFile(f.pending, 'utf8')).trim() : `${name}-tls-${newId()}`;
  await writePrivate(f.pending, requestId);
  log.info({ requestId, names }, 'requesting the HTTPS certificate from the CA (workflow)');
  const result = await issueAndWait(
    { temporal: args.temporal, config: config },
    {
      requestId,
      protocol: 'operator',
      csr: Buffer.from(csr).toString('base64'),
      profile: 'tls-server',
      requester: `certflow-${name}`,
    },
    args.timeoutMs ?? 120_000,
  );
  if (result.status !== 'issued') {
    await rm(f.pending, { force: true });
    throw new CaError('config', `the CA refused the HTTPS certificate: ${result.message}`);
  }
  const cert = result.certPem + result.chainPem;
  await writePrivate(f.cert, cert);
  await rm(f.pending, { force: true });
  return { key: keyPem, cert, notAfter: new Date(result.notAfter) };
}
