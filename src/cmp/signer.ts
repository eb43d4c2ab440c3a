/**
 * The CMP server's protection certificate (RFC 9483 3.1): signature-protected responses,
 * and errors to requests whose own protection could not be verified, are signed with it.
 * Its key is the server's own (never a CA key), generated into $CERTFLOW_HOME/cmp/ on first
 * start; the certificate (digitalSignature, id-kp-cmcCA, profile `cmp-signer`) comes from
 * the issuing CA through the issuance workflow, like the HTTPS certificate, and is renewed
 * once two thirds of its lifetime have passed. A request in flight is remembered in
 * cmp/pending-request, so a restarted server re-attaches to it.
 */
import type { Client } from '@temporalio/client';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { buildCsr, describeCertificate, pemDecodeAll } from '../pki/index.ts';
import { issueAndWait } from '../ra/enrollment.ts';

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

function files(config: Pick<Config, 'home'>) {
  const dir = join(config.home, 'cmp');
  return { dir, key: join(dir, 'signer-key.pem'), cert: join(dir, 'signer.pem'), pending: join(dir, 'pending-request') };
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

/** The stored signer if it is from `issuingCaDer`'s key and not due for renewal. */
function usable(certPem: string, issuerDer: Uint8Array, now: Date): boolean {
  const [leaf] = pemDecodeAll(certPem);
  if (!leaf) return false;
  const d = describeCertificate(leaf.der);
  if (d.authorityKeyIdHex !== describeCertificate(issuerDer).subjectKeyIdHex) return false;
  const lifetime = d.notAfter.getTime() - d.notBefore.getTime();
  return now.getTime() < d.notAfter.getTime() - lifetime / 3;
}

export async function ensureCmpSigner(args: {
  config: Config;
  temporal: Client;
  issuingCaDer: Uint8Array;
  log: Logger;
  timeoutMs?: number;
}): Promise<CmpSigner> {
  const { config, log } = args;
  const f = files(config);
  await mkdir(f.dir, { recursive: true, mode: 0o700 });
  let key: KeyObject;
  if (existsSync(f.key)) key = createPrivateKey(await readFile(f.key, 'utf8'));
  else {
    key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await writeFileAtomic(f.key, key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  if (existsSync(f.cert)) {
    const pem = await readFile(f.cert, 'utf8');
    if (usable(pem, args.issuingCaDer, new Date())) return material(key, pem);
    log.info('CMP signer certificate missing, from another CA or due for renewal: requesting a new one');
  }
  const requestId = existsSync(f.pending) ? (await readFile(f.pending, 'utf8')).trim() : `cmp-signer-${newId()}`;
  await writeFileAtomic(f.pending, requestId, 0o600);
  log.info({ requestId }, 'requesting the CMP signer certificate from the CA (workflow)');
  const csr = buildCsr({ subject: CMP_SIGNER_SUBJECT, privateKey: key });
  const result = await issueAndWait(
    { temporal: args.temporal, config: config },
    { requestId, protocol: 'operator', csr: Buffer.from(csr).toString('base64'), profile: 'cmp-signer', requester: 'certflow-server' },
    args.timeoutMs ?? 120_000,
  );
  if (result.status !== 'issued') {
    await rm(f.pending, { force: true });
    throw new CaError('config', `the CA refused the CMP signer certificate: ${result.message}`);
  }
  const pem = result.certPem + result.chainPem;
  await writeFileAtomic(f.cert, pem, 0o600);
  await rm(f.pending, { force: true });
  return material(key, pem);
}
