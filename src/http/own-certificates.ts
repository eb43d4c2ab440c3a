/**
 * certflow's own certificates — the HTTPS listeners' (server, admin) and the CMP signer's —
 * issued by its CA through the issuance workflow like every other certificate (servers
 * hold no CA key). Their keys are the servers' own, in files under $CERTFLOW_HOME that
 * every server of an installation shares (`certflow cluster` runs two; docker-compose.yml
 * gives them one volume).
 *
 * One renewal per certificate, however many servers share it: the request of a renewal
 * has a fixed id, derived from the certificate it replaces (and for the first one, from
 * the key, the names and the issuing CA). Servers that find the certificate due at the
 * same moment start the same workflow (REJECT_DUPLICATE: the second attaches to the
 * first), so the CA signs once and all of them write the same file. A server that did not
 * renew picks the new file up at its next check; nothing restarts.
 *
 * `certflow tls renew` asks for a renewal now: it leaves a marker (<cert>.renew, naming the
 * serial to replace) that the running servers act on at their next check.
 */
import type { Client } from '@temporalio/client';
import { createHash, createPublicKey } from 'node:crypto';
import { p256KeyFile } from '../pki/keygen.ts';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import type { Logger } from '../core/logger.ts';
import { buildCsr, describeCertificate, pemDecodeAll, type CertSummary, type SanSet } from '../pki/index.ts';
import { issueAndWait } from '../ra/enrollment.ts';

/** One of certflow's own certificates: where it lives and what it says. */
export interface OwnCertificateSpec {
  /** server | admin | cmp-signer: names the request ids and the log lines. */
  name: string;
  keyFile: string;
  certFile: string;
  subject: string;
  /** Names it must carry (SANs); the listeners' are localhost, 127.0.0.1, ::1 and CERTFLOW_TLS_NAMES. */
  sans: SanSet;
  profile: string;
  requester: string;
}

export interface OwnCertificate {
  keyPem: string;
  /** Leaf and chain, PEM. */
  certPem: string;
  leaf: CertSummary;
}

/** The marker `certflow tls renew` leaves next to a certificate. */
export const renewalMarker = (certFile: string) => `${certFile}.renew`;

const sanNames = (sans: SanSet) => [...sans.dns, ...sans.ip, ...sans.email, ...sans.uri];

/** Why the stored certificate will not do, or undefined when it does. */
function whyRenew(
  leaf: CertSummary,
  spec: Pick<OwnCertificateSpec, 'sans'>,
  keySpki: Uint8Array,
  issuerDer: Uint8Array,
  now: Date,
  marker?: string,
): string | undefined {
  const have = new Set(sanNames(leaf.sans));
  const missing = sanNames(spec.sans).filter((n) => !have.has(n));
  if (missing.length) return `it lacks ${missing.join(', ')}`;
  if (leaf.authorityKeyIdHex !== describeCertificate(issuerDer).subjectKeyIdHex) return 'another CA issued it';
  if (!Buffer.from(leaf.spki).equals(Buffer.from(keySpki))) return 'it is for another key';
  // Renew once two thirds of the lifetime have passed.
  const lifetime = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  if (now.getTime() > leaf.notAfter.getTime() - lifetime / 3) return 'two thirds of its lifetime have passed';
  if (marker === leaf.serialHex) return '`certflow tls renew` asked for it';
  return undefined;
}

function readLeaf(certFile: string): { pem: string; leaf: CertSummary } | undefined {
  if (!existsSync(certFile)) return undefined;
  const pem = readFileSync(certFile, 'utf8');
  const [first] = pemDecodeAll(pem);
  return first ? { pem, leaf: describeCertificate(first.der) } : undefined;
}

/**
 * The fixed request id of the next certificate: a renewal of the current one, or the first
 * one for this key, these names and this CA.
 */
function ownRequestId(
  spec: Pick<OwnCertificateSpec, 'name' | 'sans'>,
  replaces: string | undefined,
  keySpki: Uint8Array,
  issuerDer: Uint8Array,
): string {
  if (replaces) return `${spec.name}-renew-${replaces}`;
  const h = createHash('sha256')
    .update(keySpki)
    .update(sanNames(spec.sans).sort().join(','))
    .update(describeCertificate(issuerDer).subjectKeyIdHex ?? '')
    .digest('base64url')
    .slice(0, 22);
  return `${spec.name}-first-${h}`;
}

/** Returns the certificate, renewing it through the workflow first when it is missing, due, or marked. */
export async function ensureOwnCertificate(args: {
  config: Config;
  temporal: Client;
  issuingCaDer: Uint8Array;
  log: Logger;
  spec: OwnCertificateSpec;
  timeoutMs?: number;
}): Promise<OwnCertificate> {
  const { spec, log } = args;
  await mkdir(dirname(spec.keyFile), { recursive: true, mode: 0o700 });
  const { pem: keyPem, key } = await p256KeyFile(spec.keyFile);
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const marker = existsSync(renewalMarker(spec.certFile)) ? readFileSync(renewalMarker(spec.certFile), 'utf8').trim() : undefined;

  let current = readLeaf(spec.certFile);
  // A renewal can return a certificate that does not do either (the request was made for
  // older names, or long ago): then that one is renewed in turn.
  for (let round = 0; round < 3; round++) {
    const why = current ? whyRenew(current.leaf, spec, spki, args.issuingCaDer, new Date(), marker) : 'there is none';
    if (!why) {
      if (marker !== undefined && marker !== current!.leaf.serialHex) await rm(renewalMarker(spec.certFile), { force: true });
      return { keyPem, certPem: current!.pem, leaf: current!.leaf };
    }
    const requestId = ownRequestId(spec, current?.leaf.serialHex, spki, args.issuingCaDer);
    log.info({ requestId, reason: why, certificate: spec.name }, `requesting the ${spec.name} certificate from the CA: ${why} (workflow)`);
    const csr = buildCsr({ subject: spec.subject, sans: spec.sans, privateKey: key });
    const result = await issueAndWait(
      { temporal: args.temporal, config: args.config },
      {
        requestId,
        protocol: 'operator',
        csr: Buffer.from(csr).toString('base64'),
        profile: spec.profile,
        requester: spec.requester,
        replaces: current?.leaf.serialHex,
      },
      args.timeoutMs ?? 120_000,
    );
    if (result.status !== 'issued') throw new CaError('config', `the CA refused the ${spec.name} certificate: ${result.message}`);
    const pem = result.certPem + result.chainPem;
    // Every server waiting for this request writes the same certificate.
    await writeFileAtomic(spec.certFile, pem, 0o600);
    current = readLeaf(spec.certFile);
  }
  throw new CaError('internal', `the ${spec.name} certificate still does not fit after three requests`);
}
