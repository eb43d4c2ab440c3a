/**
 * Shared by the CRL and OCSP tests: a root + issuing CA hierarchy in a memory key store,
 * leaf certificates from it, and openssl runs whose stderr is kept on success (openssl
 * reports "verify OK" / "Response verify OK" there).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { DEFAULT_PROFILES } from '../../src/config/profiles.ts';
import type { KeyAlg } from '../../src/keys/types.ts';
import { createRootCertificate, createSubordinateCertificate } from '../../src/ca/hierarchy.ts';
import { prepareCertificate, signCertificate, type CaUrls, type IssuingCa } from '../../src/ca/issuer.ts';
import { parseCsr, randomSerial } from '../../src/pki/index.ts';
import { MemoryKeyStore } from './memory-keystore.ts';
import { makeCsr, tmpFile, workDir } from './openssl.ts';

export const ISSUING_CRL_URL = 'http://ca.test:8080/crl/issuing.crl';

const urls = (ca: string): CaUrls => ({
  crl: `http://ca.test:8080/crl/${ca}.crl`,
  ocsp: 'http://ca.test:8080/ocsp',
  caIssuers: `http://ca.test:8080/ca/${ca}.crt`,
});

export interface Hierarchy {
  keys: MemoryKeyStore;
  root: IssuingCa;
  issuing: IssuingCa;
}

export async function hierarchy(keyAlg: KeyAlg): Promise<Hierarchy> {
  const keys = new MemoryKeyStore();
  const now = new Date();
  await keys.generate('root', keyAlg);
  await keys.generate('issuing', keyAlg);
  const rootDer = await createRootCertificate(keys, {
    keyId: 'root',
    keyAlg,
    subject: 'CN=Test Root CA,O=certflow',
    validityDays: 3650,
    now,
  });
  const root: IssuingCa = { name: 'root', certDer: rootDer, keyId: 'root', keyAlg };
  const issuingDer = await createSubordinateCertificate(keys, {
    issuer: root,
    keyId: 'issuing',
    keyAlg,
    subject: 'CN=Test Issuing CA 1,O=certflow',
    validityDays: 1825,
    now,
    pathLen: 0,
    urls: urls('root'),
  });
  return { keys, root, issuing: { name: 'issuing', certDer: issuingDer, keyId: 'issuing', keyAlg } };
}

/** A tls-server leaf issued by the issuing CA, with CDP = ISSUING_CRL_URL. */
export async function issueLeaf(h: Hierarchy, cn: string): Promise<{ der: Uint8Array; serialHex: string }> {
  const csr = makeCsr({ subj: `/CN=${cn}`, san: `DNS:${cn}` });
  const profile = structuredClone(DEFAULT_PROFILES.find((p) => p.name === 'tls-server')!);
  const prepared = prepareCertificate({
    csr: parseCsr(csr.pem),
    profile,
    ca: h.issuing,
    serial: randomSerial(),
    now: new Date(),
    urls: urls('issuing'),
  });
  const der = await signCertificate(h.keys, { keyId: h.issuing.keyId, keyAlg: h.issuing.keyAlg }, prepared.tbsDer, prepared.sigAlg);
  return { der, serialHex: prepared.serialHex };
}

/** Writes DER bytes to a new file in the work directory and returns its path. */
export function writeDer(name: string, der: Uint8Array): string {
  const file = tmpFile(name);
  writeFileSync(file, der);
  return file;
}

/** Runs openssl and returns its exit code and stdout + stderr (both kept, on success too). */
export function opensslAll(args: string[]): { code: number; out: string } {
  const r = spawnSync('openssl', args, { cwd: workDir, encoding: 'latin1' });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}
