/**
 * The CMP server's protection certificate (RFC 9483 3.1): signature-protected responses,
 * and errors to requests whose own protection could not be verified, are signed with it.
 * Its key is the server's own (never a CA key), generated into $CERTFLOW_HOME/cmp/ on first
 * start; the certificate (digitalSignature, id-kp-cmcCA, profile `cmp-signer`) comes from
 * the issuing CA through the issuance workflow, like the HTTPS certificate, and is renewed
 * once two thirds of its lifetime have passed — once, however many servers share cmp/
 * (src/http/own-certificates.ts).
 */
import type { Client } from '@temporalio/client';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { ensureOwnCertificate, type OwnCertificateSpec } from '../http/own-certificates.ts';
import { describeCertificate, pemDecodeAll } from '../pki/index.ts';

export interface CmpSigner {
  key: KeyObject;
  certDer: Uint8Array;
  /** The issuing CA chain above it (root excluded), DER. */
  chainDer: Uint8Array[];
  /** DER Name of the signer (the sender of our responses). */
  subjectDer: Uint8Array;
  /** Subject key identifier: our senderKID. */
  keyId: Uint8Array;
  notAfter: Date;
}

const CMP_SIGNER_SUBJECT = 'CN=certflow CMP signer,O=certflow';

/** The signer's key and certificate, shared by the servers of an installation (own-certificates.ts). */
export function cmpSignerCertificate(config: Pick<Config, 'home'>): OwnCertificateSpec {
  const dir = join(config.home, 'cmp');
  return {
    name: 'cmp-signer',
    keyFile: join(dir, 'signer-key.pem'),
    certFile: join(dir, 'signer.pem'),
    subject: CMP_SIGNER_SUBJECT,
    sans: { dns: [], ip: [], email: [], uri: [] },
    profile: 'cmp-signer',
    requester: 'certflow-server',
  };
}

function material(key: KeyObject, certPem: string): CmpSigner {
  const [leaf, ...chain] = pemDecodeAll(certPem).map((b) => b.der);
  if (!leaf) throw new CaError('config', 'the CMP signer certificate file is empty');
  const d = describeCertificate(leaf);
  return {
    key,
    certDer: leaf,
    chainDer: chain,
    subjectDer: d.subjectDer,
    keyId: new Uint8Array(Buffer.from(d.subjectKeyIdHex ?? '', 'hex')),
    notAfter: d.notAfter,
  };
}

export async function ensureCmpSigner(args: {
  config: Config;
  temporal: Client;
  issuingCaDer: Uint8Array;
  log: Logger;
  timeoutMs?: number;
}): Promise<CmpSigner> {
  const own = await ensureOwnCertificate({ ...args, spec: cmpSignerCertificate(args.config) });
  return material(createPrivateKey(own.keyPem), own.certPem);
}
