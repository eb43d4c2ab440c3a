/**
 * Who is asking: a registered client (HTTP Basic) or the holder of a certificate this CA
 * issued (TLS client authentication, verified by the TLS layer against our CA chain and
 * here against the certificate store: it must be the stored, valid, unexpired certificate).
 */
import type { Context } from 'koa';
import type { TLSSocket } from 'node:tls';
import type { Pool } from 'pg';
import { CaError } from '../core/errors.ts';
import * as certificates from '../db/repos/certificates.ts';
import type { CertificateRow } from '../db/repos/certificates.ts';
import type { EstClientRow } from '../db/repos/est-clients.ts';
import { describeCertificate, type CertSummary } from '../pki/index.ts';
import { guardAuthentication } from '../http/auth-limiter.ts';
import { authenticateBasic, parseBasicAuth } from './auth.ts';

export type EstIdentity =
  | { type: 'basic'; client: EstClientRow; key: string; name: string }
  | { type: 'cert'; cert: CertificateRow; summary: CertSummary; key: string; name: string };

/** Which certificates may authenticate a TLS client: this CA's store, and which issuing CAs the label trusts. */
export interface CertTrust {
  pool: Pool;
  trusts(caName: string): boolean;
}

/**
 * The TLS client certificate, if the client presented one. The TLS layer proved that the
 * client holds its key; that the certificate is one this certflow issued is proved here by
 * finding exactly these bytes in the certificate store (so certificates of every issuing CA
 * of this certflow work, whatever the listener's CA list); its issuing CA must be one the
 * label trusts, and it must be valid now and neither revoked nor on hold.
 */
export async function certificateIdentity(ctx: Context, trust: CertTrust): Promise<EstIdentity | undefined> {
  const socket = ctx.req.socket as TLSSocket;
  if (!socket.encrypted) return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  const summary = describeCertificate(peer.raw);
  const row = await certificates.get(trust.pool, summary.serialHex);
  if (!row || !row.certDer || !Buffer.from(row.certDer).equals(peer.raw)) {
    throw new CaError('unauthorized', `the TLS client certificate ${summary.serialHex} is not one this CA issued`);
  }
  if (!trust.trusts(row.caName)) {
    throw new CaError(
      'forbidden',
      `the TLS client certificate ${row.serial} was issued by CA "${row.caName}", which this EST label does not trust`,
    );
  }
  if (row.status !== 'valid') throw new CaError('forbidden', `the TLS client certificate ${row.serial} is ${row.status}`);
  const now = Date.now();
  if (row.notAfter.getTime() < now) throw new CaError('forbidden', `the TLS client certificate ${row.serial} has expired`);
  if (row.notBefore.getTime() > now) throw new CaError('forbidden', `the TLS client certificate ${row.serial} is not valid yet`);
  return { type: 'cert', cert: row, summary, key: `cert:${row.serial}`, name: `cert:${row.serial}` };
}

/** The registered client of an HTTP Basic Authorization header; undefined without one (another scheme is no Basic). */
export async function basicIdentity(ctx: Context, deps: Parameters<typeof guardAuthentication>[0]): Promise<EstIdentity | undefined> {
  const header = ctx.get('Authorization');
  if (!header || !parseBasicAuth(header)) return undefined;
  const client = await guardAuthentication(deps, 'est', { address: ctx.ip }, () => authenticateBasic(deps.pool, header));
  return { type: 'basic', client, key: `basic:${client.name}`, name: client.name };
}
