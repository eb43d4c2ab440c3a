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
import { authenticateBasic } from './auth.ts';

export type EstIdentity =
  | { type: 'basic'; client: EstClientRow; key: string; name: string }
  | { type: 'cert'; cert: CertificateRow; summary: CertSummary; key: string; name: string };

/** The verified TLS client certificate, if the client presented one. */
export async function certificateIdentity(ctx: Context, pool: Pool): Promise<EstIdentity | undefined> {
  const socket = ctx.req.socket as TLSSocket;
  if (!socket.encrypted) return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  if (!socket.authorized) {
    throw new CaError('unauthorized', `the TLS client certificate is not accepted: ${String(socket.authorizationError ?? 'not issued by this CA')}`);
  }
  const summary = describeCertificate(peer.raw);
  const row = await certificates.get(pool, summary.serialHex);
  if (!row || !row.certDer || !Buffer.from(row.certDer).equals(peer.raw)) {
    throw new CaError('unauthorized', `the TLS client certificate ${summary.serialHex} is not one this CA issued`);
  }
  if (row.status !== 'valid') throw new CaError('forbidden', `the TLS client certificate ${row.serial} is ${row.status}`);
  if (row.notAfter.getTime() < Date.now()) throw new CaError('forbidden', `the TLS client certificate ${row.serial} has expired`);
  return { type: 'cert', cert: row, summary, key: `cert:${row.serial}`, name: `cert:${row.serial}` };
}

export async function basicIdentity(ctx: Context, pool: Pool): Promise<EstIdentity | undefined> {
  const header = ctx.get('Authorization');
  if (!header) return undefined;
  const client = await authenticateBasic(pool, header);
  return { type: 'basic', client, key: `basic:${client.name}`, name: client.name };
}
