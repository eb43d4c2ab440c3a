/**
 * Who sent a CMP request, from its protection (RFC 9810 5.1.3, RFC 9483 3.2):
 *  - a MAC (PasswordBasedMac or PBMAC1) under the shared secret of the registered client
 *    whose reference is the senderKID;
 *  - a signature by the first certificate in extraCerts, which must be a valid certificate
 *    issued by this CA (a device's own, e.g. for kur and rr) or a certificate registered
 *    with `certflow cmp-client add --cert` (a registration authority).
 * Unknown references and wrong secrets get the same answer (badMessageCheck).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type { CmpAlias, Config } from '../config/index.ts';
import * as cmpClients from '../db/repos/cmp-clients.ts';
import type { CmpClientRow } from '../db/repos/cmp-clients.ts';
import * as certificates from '../db/repos/certificates.ts';
import type { CertificateRow } from '../db/repos/certificates.ts';
import {
  describeProtection,
  macChoiceOf,
  protectWithMac,
  protectWithSignature,
  verifyMac,
  verifySignatureProtection,
  computeMac,
  type MacChoice,
  type PKIMessage,
} from '../pki/cmp/index.ts';
import { describeCertificate, type CertSummary } from '../pki/index.ts';
import { cmpError } from './errors.ts';
import { decryptSecret, secretsKey } from './secrets.ts';
import type { CmpSigner } from './signer.ts';

export type CmpIdentity =
  | { type: 'mac'; ref: string; client: CmpClientRow; secret: Buffer; mac: MacChoice; senderKID: Uint8Array; key: string }
  | { type: 'signature'; certDer: Uint8Array; summary: CertSummary; issued?: CertificateRow; client?: CmpClientRow; key: string };

const WRONG_MAC = 'the message protection does not verify (unknown reference or wrong secret)';

export async function authenticate(deps: { config: Config; pool: Pool }, msg: PKIMessage, alias: CmpAlias): Promise<CmpIdentity> {
  const h = msg.header;
  if (!h.protectionAlg || !msg.protection)
    throw cmpError('cmp.protection', 'the message is not protected; MAC or signature protection is required', 'unauthorized');
  const p = describeProtection(h.protectionAlg, deps.config.cmp.maxIterations);
  if (p.type === 'signature') {
    if (!alias.protection.includes('signature'))
      throw cmpError('cmp.protection.kind', `alias "${alias.name}" does not accept signature protection`, 'forbidden');
    return signatureIdentity(deps.pool, msg, p);
  }
  if (!alias.protection.includes('mac'))
    throw cmpError('cmp.protection.kind', `alias "${alias.name}" does not accept MAC protection`, 'forbidden');
  if (!h.senderKID?.length) throw cmpError('cmp.protection', 'a MAC-protected message must name its secret in senderKID', 'unauthorized');
  const ref = Buffer.from(h.senderKID).toString('utf8');
  const client = await cmpClients.get(deps.pool, ref);
  if (!client?.secretEnc) {
    // The same work as a real check, so the answer time does not tell which references exist.
    computeMac(p, randomBytes(16), msg.protectedPart());
    throw cmpError('cmp.protection', WRONG_MAC, 'unauthorized');
  }
  const secret = decryptSecret(await secretsKey(deps.config), ref, client.secretEnc);
  if (!verifyMac(msg, p, secret)) throw cmpError('cmp.protection', WRONG_MAC, 'unauthorized');
  if (!client.enabled) throw cmpError('cmp.notAuthorized', `CMP client "${ref}" is disabled`, 'forbidden');
  if (client.aliases.length && !client.aliases.includes(alias.name)) {
    throw cmpError('cmp.notAuthorized', `CMP client "${ref}" may not use alias "${alias.name || '(default)'}"`, 'forbidden');
  }
  return { type: 'mac', ref, client, secret, mac: macChoiceOf(p), senderKID: h.senderKID, key: `ref:${ref}` };
}

async function signatureIdentity(pool: Pool, msg: PKIMessage, p: Parameters<typeof verifySignatureProtection>[1]): Promise<CmpIdentity> {
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
  const sha256 = createHash('sha256').update(certDer).digest('hex');
  const client = await cmpClients.getByCertificate(pool, sha256);
  if (client) {
    if (!client.enabled) throw cmpError('cmp.notAuthorized', `CMP client "${client.ref}" is disabled`, 'forbidden');
    return { type: 'signature', certDer, summary, client, key: `ref:${client.ref}` };
  }
  const issued = await certificates.get(pool, summary.serialHex);
  if (!issued?.certDer || !Buffer.from(issued.certDer).equals(Buffer.from(certDer))) {
    throw cmpError(
      'cmp.signer',
      `the protection certificate ${summary.subject} (serial ${summary.serialHex}) was not issued by this CA nor registered`,
      'unauthorized',
    );
  }
  if (issued.status !== 'valid')
    throw cmpError('cmp.signer', `the protection certificate ${issued.serial} is ${issued.status}`, 'unauthorized');
  const now = Date.now();
  if (issued.notAfter.getTime() < now || issued.notBefore.getTime() > now)
    throw cmpError('cmp.signer', `the protection certificate ${issued.serial} is not within its validity`, 'unauthorized');
  return { type: 'signature', certDer, summary, issued, key: `cert:${issued.serial}` };
}

/** Whether a client with this identity may use the alias for new certificates. */
export function mayEnroll(identity: CmpIdentity, alias: CmpAlias): void {
  if (identity.type === 'signature' && !identity.client && !alias.allowCertificateEnrollment) {
    throw cmpError('cmp.notAuthorized', `alias "${alias.name || '(default)'}" issues certificates only to registered clients`, 'forbidden');
  }
}

/** Whether the identity is a registration authority (may send raVerified, revoke any certificate). */
export function isRa(identity: CmpIdentity): boolean {
  return Boolean(identity.type === 'mac' ? identity.client.ra : identity.client?.ra);
}

/**
 * Protects a response like the request: MAC with the client's secret (fresh salt), or a
 * signature by the CMP signer, whose certificate and chain lead extraCerts.
 */
export function protect(msg: PKIMessage, identity: CmpIdentity | undefined, signer: CmpSigner, extraCerts: Uint8Array[] = []): void {
  if (identity?.type === 'mac') {
    msg.header.senderKID = identity.senderKID;
    msg.extraCerts = extraCerts.length ? extraCerts : undefined;
    protectWithMac(msg, identity.secret, identity.mac);
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
