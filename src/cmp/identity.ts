/**
 * Who sent a CMP request, from its protection (RFC 9810 5.1.3, RFC 9483 3.2):
 *  - a MAC (PasswordBasedMac or PBMAC1) under the shared secret of the registered client
 *    whose reference is the senderKID — derived in a worker thread (src/http/cpu-pool.ts), and only
 *    for a registered reference: an unknown senderKID costs no hashing;
 *  - a signature by the first certificate in extraCerts, which must be a certificate
 *    registered with `certflow cmp-client add --cert` (a client such as an RA) or a
 *    certificate of this CA (a device's own, e.g. for kur and rr), and pass the rule of
 *    src/authz/client-certificate.ts: valid now, neither revoked nor on hold, clientAuth
 *    (or id-kp-cmcRA for an RA).
 * Registered clients are held to their aliases. Unknown references and wrong secrets get
 * the same answer (badMessageCheck) and are reported as failed authentications.
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { checkCertificateEnrollmentNames, type RequestedNames } from '../authz/certificate-names.ts';
import { certificateMayEnroll } from '../authz/client-cert-scope.ts';
import { clientCertificate } from '../authz/client-certificate.ts';
import { cmpClientMayUse } from '../authz/cmp-client.ts';
import type { CmpAlias, Config } from '../config/index.ts';
import * as cmpClients from '../db/repos/cmp-clients.ts';
import type { CmpClientRow } from '../db/repos/cmp-clients.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';
import { authenticationFailed } from '../http/auth-failures.ts';
import { deriveMacKeyOffLoop } from '../http/cpu-pool.ts';
import {
  describeProtection,
  macChoiceOf,
  macKeyDerivation,
  macWithKey,
  protectWithSignature,
  setMacProtection,
  verifyMacWithKey,
  verifySignatureProtection,
  type MacChoice,
  type PKIMessage,
} from '../pki/cmp/index.ts';
import { describeCertificate, type CertSummary } from '../pki/index.ts';
import { cmpError } from './errors.ts';
import { decryptSecret, secretsKey } from './secrets.ts';
import type { CmpSigner } from './signer.ts';

export type CmpIdentity =
  | { type: 'mac'; ref: string; client: CmpClientRow; secret: Buffer; mac: MacChoice; senderKID: Uint8Array; key: string }
  | {
      type: 'signature';
      certDer: Uint8Array;
      summary: CertSummary;
      /** The signer certificate as this CA stored it; null for a registered certificate of another CA. */
      issued: CertificateWithOrigin | null;
      /** The registration of the signer certificate, if any. */
      client?: CmpClientRow;
      key: string;
    };

const WRONG_MAC = 'the message protection does not verify (unknown reference or wrong secret)';

export async function authenticate(
  deps: { config: Config; pool: Pool },
  msg: PKIMessage,
  alias: CmpAlias,
  remote?: string,
): Promise<CmpIdentity> {
  const h = msg.header;
  if (!h.protectionAlg || !msg.protection)
    throw cmpError('cmp.protection', 'the message is not protected; MAC or signature protection is required', 'unauthorized');
  const p = describeProtection(h.protectionAlg, deps.config.cmp.maxIterations);
  if (p.type === 'signature') {
    if (!alias.protection.includes('signature'))
      throw cmpError('cmp.protection.kind', `alias "${alias.name}" does not accept signature protection`, 'forbidden');
    return signatureIdentity(deps.pool, msg, p, alias);
  }
  if (!alias.protection.includes('mac'))
    throw cmpError('cmp.protection.kind', `alias "${alias.name}" does not accept MAC protection`, 'forbidden');
  if (!h.senderKID?.length) throw cmpError('cmp.protection', 'a MAC-protected message must name its secret in senderKID', 'unauthorized');
  const ref = Buffer.from(h.senderKID).toString('utf8');
  const client = await cmpClients.get(deps.pool, ref);
  const failed = () => {
    authenticationFailed({ protocol: 'cmp', address: remote, credential: ref });
    return cmpError('cmp.protection', WRONG_MAC, 'unauthorized');
  };
  // No derivation for a reference that is not registered: it would buy hashing for nothing.
  if (!client?.secretEnc) throw failed();
  const secret = decryptSecret(await secretsKey(deps.config), ref, client.secretEnc);
  if (!verifyMacWithKey(msg, p, await deriveMacKeyOffLoop(secret, macKeyDerivation(p)))) throw failed();
  cmpClientMayUse(client, alias.name);
  return { type: 'mac', ref, client, secret, mac: macChoiceOf(p), senderKID: h.senderKID, key: `ref:${ref}` };
}

async function signatureIdentity(
  pool: Pool,
  msg: PKIMessage,
  p: Parameters<typeof verifySignatureProtection>[1],
  alias: CmpAlias,
): Promise<CmpIdentity> {
  const certDer = msg.extraCerts?.[0];
  if (!certDer)
    throw cmpError('cmp.signer', 'a signature-protected message must carry its protection certificate first in extraCerts', 'unauthorized');
  let summary: CertSummary;
  try {
    summary = describeCertificate(certDer);
  } catch {
    throw cmpError('cmp.signer', 'the first certificate in extraCerts cannot be read', 'unauthorized');
  }
  if (!verifySignatureProtection(msg, p, summary.spki)) {
    throw cmpError(
      'cmp.protection',
      `the message signature (${p.name}) does not verify with the certificate ${summary.subject}`,
      'unauthorized',
    );
  }
  if (summary.keyUsage.length && !summary.keyUsage.includes('digitalSignature')) {
    throw cmpError('cmp.signer', `the protection certificate ${summary.serialHex} does not allow digitalSignature`, 'unauthorized');
  }
  const client = await cmpClients.getByCertificate(pool, createHash('sha256').update(certDer).digest('hex'));
  if (client) {
    const { issued } = await clientCertificate(pool, certDer, { registered: { ra: client.ra } });
    cmpClientMayUse(client, alias.name);
    return { type: 'signature', certDer, summary, issued, client, key: `ref:${client.ref}` };
  }
  const { issued } = await clientCertificate(pool, certDer);
  return { type: 'signature', certDer, summary, issued, key: `cert:${issued!.serial}` };
}

/**
 * Whether this identity may ask `alias` for a new certificate with these names (ir, cr,
 * p10cr). Registered clients (MAC or certificate) may, within the profile; a certificate of
 * this CA that is not registered only where the alias allows certificate enrollment, when
 * it is of a profile and protocol the alias accepts, and for its own subject and SANs.
 */
export function mayEnroll(identity: CmpIdentity, alias: CmpAlias, names: RequestedNames): void {
  if (identity.type !== 'signature' || identity.client) return;
  const place = `alias "${alias.name || '(default)'}"`;
  if (!alias.allowCertificateEnrollment) {
    throw cmpError('cmp.notAuthorized', `${place} issues certificates only to registered clients`, 'forbidden');
  }
  certificateMayEnroll(identity.issued!, { place, profiles: alias.clientCertProfiles, protocols: alias.clientCertProtocols });
  checkCertificateEnrollmentNames(names, identity.summary);
}

/** Whether the identity is a registration authority (may send raVerified, revoke certificates of its aliases). */
export function isRa(identity: CmpIdentity): boolean {
  return Boolean(identity.client?.ra);
}

/**
 * Protects a response like the request: MAC with the client's secret (fresh salt, the
 * request's algorithms and iteration count; the derivation runs off the event loop), or a
 * signature by the CMP signer, whose certificate and chain lead extraCerts.
 */
export async function protect(
  msg: PKIMessage,
  identity: CmpIdentity | undefined,
  signer: CmpSigner,
  extraCerts: Uint8Array[] = [],
): Promise<void> {
  if (identity?.type === 'mac') {
    msg.header.senderKID = identity.senderKID;
    msg.extraCerts = extraCerts.length ? extraCerts : undefined;
    const p = setMacProtection(msg, identity.mac);
    const key = await deriveMacKeyOffLoop(identity.secret, macKeyDerivation(p));
    msg.protection = macWithKey(p, key, msg.protectedPart());
    return;
  }
  msg.header.senderKID = signer.keyId.length ? signer.keyId : undefined;
  const seen = new Set<string>();
  msg.extraCerts = [signer.certDer, ...signer.chainDer, ...extraCerts].filter((c) => {
    const k = Buffer.from(c).toString('base64');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  protectWithSignature(msg, signer.key, 'ecdsa-sha256');
}
