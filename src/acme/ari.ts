/**
 * ACME Renewal Information (RFC 9773): GET <renewalInfo>/<certID> tells a client when to
 * renew a certificate. certID = base64url(AKI keyIdentifier) "." base64url(serial octets).
 */
import type { Context } from 'koa';
import * as certificates from '../db/repos/certificates.ts';
import type { CertificateRow } from '../db/repos/certificates.ts';
import { describeCertificate, serialToHex } from '../pki/index.ts';
import type { AcmeDeps, ShellRoute } from './api.ts';
import { problem } from './problems.ts';

/** How often a client should ask again (RFC 9773 4.3.3 suggests hours). */
const ARI_RETRY_AFTER_SECONDS = 6 * 3600;

const B64URL_PART = /^[A-Za-z0-9_-]+$/;

/**
 * The parts of an ARI certID: the issuer's key identifier and the serial, both lower-case
 * hex; the serial without sign-padding zero octets, as the certificates table stores it.
 * A certID that is not two non-empty unpadded base64url parts is malformed.
 */
export function parseAriCertId(certId: string): { akiHex: string; serialHex: string } {
  const parts = certId.split('.');
  if (parts.length !== 2 || !parts.every((p) => B64URL_PART.test(p))) {
    throw problem('malformed', `"${certId}" is not an ARI certID: base64url(key identifier) "." base64url(serial), without padding`);
  }
  const aki = Buffer.from(parts[0]!, 'base64url');
  const serial = Buffer.from(parts[1]!, 'base64url');
  // A base64url string of length 4n+1 decodes to fewer bytes than it claims: not canonical.
  if (aki.toString('base64url') !== parts[0] || serial.toString('base64url') !== parts[1]) {
    throw problem('malformed', `"${certId}" is not canonical base64url`);
  }
  if (serial[0]! & 0x80) throw problem('malformed', 'the serial of the certID is negative; serials are positive DER INTEGERs');
  return { akiHex: aki.toString('hex'), serialHex: serialToHex(serial) };
}

/** The certID of a certificate (for tests and for clients of certflow's own tooling). */
export function ariCertId(akiHex: string, serialHex: string): string {
  const serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  // DER INTEGER content octets: a leading 0x00 keeps a high first bit from meaning "negative".
  const octets = serial[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial;
  return `${Buffer.from(akiHex, 'hex').toString('base64url')}.${octets.toString('base64url')}`;
}

export interface SuggestedWindow {
  start: Date;
  end: Date;
}

/**
 * When to renew: a certificate that is revoked or on hold at once (a window that has already
 * begun, RFC 9773 4.2), any other from 2/3 to 5/6 of its lifetime. The window ends well before
 * expiry so that a client that picks a late moment in it and then fails still has time to retry.
 */
export function suggestedWindow(cert: Pick<CertificateRow, 'status' | 'notBefore' | 'notAfter'>, now = new Date()): SuggestedWindow {
  if (cert.status === 'revoked' || cert.status === 'hold') {
    return { start: new Date(now.getTime() - 3600_000), end: new Date(now.getTime() - 1800_000) };
  }
  const from = cert.notBefore.getTime();
  const lifetime = cert.notAfter.getTime() - from;
  return { start: new Date(from + Math.round((lifetime * 2) / 3)), end: new Date(from + Math.round((lifetime * 5) / 6)) };
}

async function renewalInfo(deps: AcmeDeps, ctx: Context): Promise<void> {
  const certId = String(ctx.params.certId ?? '');
  const { akiHex, serialHex } = parseAriCertId(certId);
  const cert = await certificates.get(deps.pool, serialHex);
  // The AKI must match too: a serial alone could name a certificate of another issuer.
  const issued = cert?.certDer ? describeCertificate(cert.certDer) : undefined;
  if (!cert || !issued || issued.authorityKeyIdHex !== akiHex) {
    throw problem('malformed', `no certificate with certID ${certId}`, { status: 404 });
  }
  const window = suggestedWindow(cert);
  ctx.status = 200;
  ctx.set('Retry-After', String(ARI_RETRY_AFTER_SECONDS));
  ctx.body = { suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } };
}

/** GET /renewal-info/:certId (unauthenticated: RFC 9773 4.2). */
export function renewalInfoRoutes(deps: AcmeDeps): ShellRoute[] {
  return [{ method: 'GET', path: '/renewal-info/:certId', handler: (ctx) => renewalInfo(deps, ctx) }];
}
