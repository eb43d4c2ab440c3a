/**
 * First start: create the CA hierarchy (root CA + issuing CA) with keys in the configured
 * key store. Later starts check that the stored CAs' keys are reachable. The caller runs
 * this under a cluster-wide lock (two workers starting together create one hierarchy).
 */
import type { CaConfig } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { describeCertificate } from '../pki/index.ts';
import type { KeyAlg, KeyStore } from '../keys/types.ts';
import { createRootCertificate, createSubordinateCertificate } from './hierarchy.ts';
import type { CaUrls } from './issuer.ts';

export interface CaRecord {
  name: string;
  role: 'root' | 'issuing';
  parent: string | null;
  keyId: string;
  keyAlg: string;
  keyBackend: 'software' | 'pkcs11' | 'none';
  subject: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  certDer: Uint8Array;
}

export interface CaStore {
  get(name: string): Promise<CaRecord | undefined>;
  insert(ca: CaRecord): Promise<void>;
}

export interface BootstrapResult {
  /** The configured root, or undefined when the default issuing CA existed already (its chain says which root it has). */
  root?: CaRecord;
  issuing: CaRecord;
  created: string[];
}

export async function ensureHierarchy(args: {
  ca: CaConfig;
  keys: KeyStore;
  store: CaStore;
  urls: (caName: string) => CaUrls;
  log: (msg: string) => void;
  now?: Date;
}): Promise<BootstrapResult> {
  const { ca, keys, store, log } = args;
  const now = args.now ?? new Date();
  const created: string[] = [];

  // An issuing CA that exists is checked, whatever its parent: it may have been created or
  // imported under another root (an offline or outside root whose key is not here).
  const existing = await store.get(ca.issuingName);
  if (existing) {
    await checkKey(keys, existing);
    return { issuing: existing, created };
  }

  let root = await store.get(ca.rootName);
  if (!root) {
    log(`creating root CA "${ca.rootName}" (${ca.keyAlg}, key in ${keys.backend} store)`);
    const key = await keyFor(keys, ca.rootName, ca.keyAlg);
    const der = await createRootCertificate(keys, {
      keyId: key,
      keyAlg: ca.keyAlg,
      subject: ca.rootSubject,
      validityDays: ca.rootValidityDays,
      now,
    });
    root = record(der, { name: ca.rootName, role: 'root', parent: null, keyId: key, keyAlg: ca.keyAlg, keyBackend: keys.backend });
    await store.insert(root);
    created.push(root.name);
  }
  await checkKey(keys, root);

  let issuing = await store.get(ca.issuingName);
  if (!issuing) {
    log(`creating issuing CA "${ca.issuingName}" under "${root.name}"`);
    const key = await keyFor(keys, ca.issuingName, ca.keyAlg);
    const der = await createSubordinateCertificate(keys, {
      issuer: { name: root.name, certDer: root.certDer, keyId: root.keyId, keyAlg: root.keyAlg as KeyAlg },
      keyId: key,
      keyAlg: ca.keyAlg,
      subject: ca.issuingSubject,
      validityDays: ca.issuingValidityDays,
      now,
      pathLen: 0,
      urls: args.urls(root.name),
    });
    issuing = record(der, {
      name: ca.issuingName,
      role: 'issuing',
      parent: root.name,
      keyId: key,
      keyAlg: ca.keyAlg,
      keyBackend: keys.backend,
    });
    await store.insert(issuing);
    created.push(issuing.name);
  }
  await checkKey(keys, issuing);
  return { root, issuing, created };
}

/** The key for a new CA; a key left by a start that crashed before storing the CA is reused. */
async function keyFor(keys: KeyStore, id: string, alg: KeyAlg): Promise<string> {
  const existing = await keys.get(id);
  if (existing && existing.alg !== alg) {
    throw new CaError('config', `key "${id}" exists in the ${keys.backend} key store with algorithm ${existing.alg}, not ${alg}`);
  }
  if (!existing) await keys.generate(id, alg);
  return id;
}

async function checkKey(keys: KeyStore, ca: CaRecord): Promise<void> {
  if (ca.keyBackend === 'none') return; // a CA outside certflow (an external root)
  if (ca.keyBackend !== keys.backend) {
    throw new CaError('config', `CA "${ca.name}" has its key in the ${ca.keyBackend} key store, but CERTFLOW_KEY_BACKEND=${keys.backend}`);
  }
  const key = await keys.get(ca.keyId);
  if (!key) {
    throw new CaError('config', `the key "${ca.keyId}" of CA "${ca.name}" is not in the ${keys.backend} key store`);
  }
  const certSpki = Buffer.from(describeCertificate(ca.certDer).spki);
  if (!certSpki.equals(Buffer.from(key.spki))) {
    throw new CaError('config', `the key "${ca.keyId}" in the ${keys.backend} key store does not match CA "${ca.name}"'s certificate`);
  }
}

function record(der: Uint8Array, base: Omit<CaRecord, 'subject' | 'serial' | 'notBefore' | 'notAfter' | 'certDer'>): CaRecord {
  const d = describeCertificate(der);
  return { ...base, subject: d.subject, serial: d.serialHex, notBefore: d.notBefore, notAfter: d.notAfter, certDer: der };
}
