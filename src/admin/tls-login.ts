/**
 * Login by TLS client certificate: the admin listener asks for (never requires) a client
 * certificate chained to this CA. A certificate counts only if the TLS layer verified it
 * and it is the stored, valid, unexpired certificate of that serial; the user it logs in
 * as is the one it is bound to (`certflow users add --cert`, or the Users page).
 */
import type { TLSSocket } from 'node:tls';
import type { Pool } from 'pg';
import { CaError } from '../core/errors.ts';
import * as certificates from '../db/repos/certificates.ts';
import { describeCertificate } from '../pki/index.ts';

export interface PeerCertificate {
  der: Buffer;
  authorized: boolean;
  error?: string;
}

export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  if (!socket.encrypted) return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer?.raw) return undefined;
  return { der: peer.raw, authorized: socket.authorized, error: socket.authorizationError ? String(socket.authorizationError) : undefined };
}

/** The serial and subject of a peer certificate this CA issued and still vouches for. */
export async function verifiedPeer(pool: Pool, peer: PeerCertificate | undefined): Promise<{ serial: string; subject: string }> {
  if (!peer) throw new CaError('unauthorized', 'no TLS client certificate was presented', { rule: 'auth.certificate.missing' });
  if (!peer.authorized)
    throw new CaError('unauthorized', `the TLS client certificate is not accepted: ${peer.error ?? 'not issued by this CA'}`, {
      rule: 'auth.certificate',
    });
  const summary = describeCertificate(peer.der);
  const row = await certificates.get(pool, summary.serialHex);
  if (!row?.certDer || !Buffer.from(row.certDer).equals(peer.der)) {
    throw new CaError('unauthorized', `the TLS client certificate ${summary.serialHex} is not one this CA issued`, {
      rule: 'auth.certificate',
    });
  }
  if (row.status !== 'valid')
    throw new CaError('unauthorized', `the TLS client certificate ${row.serial} is ${row.status}`, { rule: 'auth.certificate' });
  if (row.notAfter.getTime() < Date.now())
    throw new CaError('unauthorized', `the TLS client certificate ${row.serial} has expired`, { rule: 'auth.certificate' });
  return { serial: row.serial, subject: summary.subject };
}
