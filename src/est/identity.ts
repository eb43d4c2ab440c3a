/**
 * Who is asking: a registered client (HTTP Basic) or the holder of a certificate this CA
 * issued (TLS client authentication: the chain must verify in the TLS handshake, for client
 * authentication, and the certificate must pass the rule of src/authz/client-certificate.ts
 * — stored, valid now, neither revoked nor on hold, clientAuth).
 */
import type { Context } from 'koa';
import type { TLSSocket } from 'node:tls';
import type { Pool } from 'pg';
import { clientCertificate } from '../authz/client-certificate.ts';
import { CaError } from '../core/errors.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';
import type { EstClientRow } from '../db/repos/est-clients.ts';
import { authenticationFailed } from '../http/auth-failures.ts';
import { guardAuthentication } from '../http/auth-limiter.ts';
import type { CertSummary } from '../pki/index.ts';
import { authenticateBasic, parseBasicAuth } from './auth.ts';

export type CertIdentity = { type: 'cert'; cert: CertificateWithOrigin; summary: CertSummary; key: string; name: string };
export type EstIdentity = { type: 'basic'; client: EstClientRow; key: string; name: string } | CertIdentity;

/** Which certificates may authenticate a TLS client: this CA's store, and which issuing CAs the label trusts. */
export interface CertTrust {
  pool: Pool;
  trusts(caName: string): boolean;
}

/**
 * The TLS client certificate, if the client presented one. The handshake asked for it
 * without requiring it (EST serves Basic clients too), so its verification result is
 * checked here: the chain must lead to one of this certflow's CAs and the certificate must
 * be fit for TLS client authentication (OpenSSL's purpose check: clientAuth if it has an
 * extended key usage). Its issuing CA must be one the label trusts.
 */
export async function certificateIdentity(ctx: Context, trust: CertTrust): Promise<CertIdentity | undefined> {
  const socket = ctx.req.socket as TLSSocket;
  if (!socket.encrypted) return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  if (!socket.authorized) {
    throw new CaError(
      'unauthorized',
      `the TLS client certificate ${peer.serialNumber?.toLowerCase() ?? ''} (${peer.subject?.CN ?? 'no CN'}) did not verify for TLS client ` +
        `authentication (${String(socket.authorizationError)}): present a certificate of this CA with extended key usage clientAuth`,
      { rule: 'clientCert.unverified' },
    );
  }
  const { summary, issued } = await clientCertificate(trust.pool, peer.raw);
  const cert = issued!;
  if (!trust.trusts(cert.caName)) {
    throw new CaError(
      'forbidden',
      `the TLS client certificate ${cert.serial} was issued by CA "${cert.caName}", which this EST label does not trust`,
      { rule: 'clientCert.ca' },
    );
  }
  return { type: 'cert', cert, summary, key: `cert:${cert.serial}`, name: `cert:${cert.serial}` };
}

/** The registered client of an HTTP Basic Authorization header; undefined without one (another scheme is no Basic). */
export async function basicIdentity(ctx: Context, deps: Parameters<typeof guardAuthentication>[0]): Promise<EstIdentity | undefined> {
  const header = ctx.get('Authorization');
  if (!header || !parseBasicAuth(header)) return undefined;
  // Failed attempts per address are limited before the password check (guard), and counted for /metrics.
  const client = await guardAuthentication(deps, 'est', { address: ctx.ip }, async () => {
    try {
      return await authenticateBasic(deps.pool, header);
    } catch (e) {
      if (CaError.is(e, 'unauthorized'))
        authenticationFailed({ protocol: 'est', address: ctx.ip, credential: parseBasicAuth(header)?.user });
      throw e;
    }
  });
  return { type: 'basic', client, key: `basic:${client.name}`, name: client.name };
}
