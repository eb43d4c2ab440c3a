/**
 * Which certificates authenticate a client (EST TLS client certificates, CMP signature
 * protection): issue 16 item 2. A certificate authenticates only when it is one this CA
 * issued (exactly these bytes in the store) or one an operator registered, is valid now,
 * is neither revoked nor on hold in the read model, and carries the extended key usage
 * clientAuth — or id-kp-cmcRA, for a client registered as a registration authority.
 * Where it may authenticate, and what it may then ask for, are the other rules of src/authz.
 */
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as certificates from '../db/repos/certificates.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';
import { describeCertificate, type CertSummary } from '../pki/index.ts';
import { EKU_OIDS } from '../config/profiles.ts';

export interface ClientCertificate {
  summary: CertSummary;
  /** The stored certificate with the label / alias it came through; null for a registered certificate of another CA. */
  issued: CertificateWithOrigin | null;
}

export interface ClientCertificateOptions {
  /** The certificate is pinned by an operator's registration: it need not be this CA's. */
  registered?: { ra: boolean };
  now?: Date;
}

/**
 * The presented certificate (DER) as a client credential, or a CaError: 'unauthorized'
 * (rule clientCert.unknown) for a certificate that is neither this CA's nor registered,
 * 'forbidden' for one that is revoked or on hold (clientCert.status), outside its validity
 * (clientCert.validity) or without clientAuth (clientCert.eku).
 */
export async function clientCertificate(db: Queryable, der: Uint8Array, opts: ClientCertificateOptions = {}): Promise<ClientCertificate> {
  let summary: CertSummary;
  try {
    summary = describeCertificate(der);
  } catch {
    throw new CaError('unauthorized', 'the client certificate cannot be read', { rule: 'clientCert.unknown' });
  }
  const name = `the client certificate ${summary.serialHex} (${summary.subject})`;
  const stored = await certificates.getWithOrigin(db, summary.serialHex);
  const issued = stored?.certDer && Buffer.from(stored.certDer).equals(Buffer.from(der)) ? stored : null;
  if (!issued && !opts.registered) {
    throw new CaError('unauthorized', `${name} is not one this CA issued`, { rule: 'clientCert.unknown' });
  }
  if (issued && (issued.status === 'revoked' || issued.status === 'hold')) {
    const why = issued.status === 'hold' ? 'is on hold' : `is revoked (${issued.revocationReason ?? 'unspecified'})`;
    throw new CaError('forbidden', `${name} ${why}`, { rule: 'clientCert.status' });
  }
  const now = (opts.now ?? new Date()).getTime();
  if (summary.notAfter.getTime() < now) {
    throw new CaError('forbidden', `${name} has expired (${summary.notAfter.toISOString()})`, { rule: 'clientCert.validity' });
  }
  if (summary.notBefore.getTime() > now) {
    throw new CaError('forbidden', `${name} is not valid yet (${summary.notBefore.toISOString()})`, { rule: 'clientCert.validity' });
  }
  const usages = opts.registered?.ra ? [EKU_OIDS.clientAuth!, EKU_OIDS.cmcRA!] : [EKU_OIDS.clientAuth!];
  if (!summary.extKeyUsage.some((oid) => usages.includes(oid))) {
    throw new CaError(
      'forbidden',
      `${name} does not carry the extended key usage clientAuth${opts.registered?.ra ? ' or id-kp-cmcRA' : ''}: it is not meant to authenticate a client`,
      { rule: 'clientCert.eku' },
    );
  }
  return { summary, issued };
}
