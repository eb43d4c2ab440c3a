/**
 * mTLS between certflow and its Temporal cluster (`certflow cluster`, docker-compose.yml):
 * certflow's own cluster CA issues the Temporal server's certificate (frontend and
 * internode) and the client certificate of certflow's processes and the Temporal UI
 * server. The frontend requires a client certificate of this CA and nothing else.
 *
 * Why a CA of its own, apart from the root and issuing CAs: the issuing CA gives
 * clientAuth certificates to anyone who enrolls (every EST/CMP device, every ACME
 * subscriber with a client profile); if those opened Temporal's frontend, any device could
 * start a key-recovery or an enrollment workflow there directly. The cluster CA is a
 * self-signed CA used for nothing else, so each TLS stack (Go, OpenSSL, rustls) can use it
 * as the one trust anchor on both sides.
 *
 * Its key lives in the CA key store like the other CA keys (software or PKCS#11); the
 * certificates and the leaf keys are files under $CERTFLOW_HOME/temporal-tls/ (the
 * processes that connect to Temporal read them). Issuance happens here, not through a
 * workflow: Temporal cannot be reached without these certificates. Run by the one-shot
 * `certflow cluster certs` (before the Temporal server starts, daily while the cluster
 * runs, and in docker-compose.yml's `temporal-certs` service, through
 * src/temporal/cluster-certs.ts, which audits every certificate issued). A certificate is
 * renewed once two thirds of its lifetime have passed.
 */
import { createPublicKey } from 'node:crypto';
import { p256KeyFile } from '../pki/keygen.ts';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { clusterTlsFiles, TEMPORAL_TLS_SERVER_NAME, type ClusterTlsFiles } from '../config/index.ts';
import type { CertProfile } from '../config/profiles.ts';
import { writeFileAtomic } from '../core/files.ts';
import { defaultSignAlg, type KeyAlg, type KeyStore } from '../keys/types.ts';
import { buildCsr, describeCertificate, parseCsr, pemDecodeAll, pemEncode, randomSerial, type SanSet } from '../pki/index.ts';
import { createRootCertificate } from './hierarchy.ts';
import { prepareCertificate, signCertificate } from './issuer.ts';

/** Key id of the cluster CA in the key store. */
const CLUSTER_CA_KEY_ID = 'certflow-cluster-ca';
const CLUSTER_CA_SUBJECT = 'CN=certflow cluster CA,O=certflow';
const CLUSTER_CA_VALIDITY_DAYS = 10 * 365;
const LEAF_VALIDITY_SECONDS = 365 * 86_400;

const leafProfile = (name: string, eku: string[], sans: boolean): CertProfile => ({
  name,
  description: `certflow cluster: ${name}`,
  validitySeconds: LEAF_VALIDITY_SECONDS,
  backdateSeconds: 300,
  keyUsage: ['digitalSignature'],
  rsaKeyEncipherment: false,
  extKeyUsage: eku,
  keys: { ec: { curves: ['P-256'] } },
  san: { dns: sans, dnsWildcard: false, ip: sans, email: false, uri: false, required: sans, max: 20 },
  subject: { allowed: ['CN', 'O'], required: ['CN'], dropDisallowed: false, cnFromFirstSan: false, cnMustBeSan: false },
  // Nothing publishes CRLs or OCSP for the cluster CA: its certificates are short-lived
  // and replaced by the cluster itself.
  crlDistributionPoint: false,
  aia: { caIssuers: false, ocsp: false },
});

interface Leaf {
  purpose: 'temporal-server' | 'temporal-client';
  certFile: string;
  keyFile: string;
  subject: string;
  sans: SanSet;
  profile: CertProfile;
}

function leaves(files: ClusterTlsFiles, serverNames: string[]): Leaf[] {
  const names = [...new Set([TEMPORAL_TLS_SERVER_NAME, '127.0.0.1', '::1', ...serverNames])];
  return [
    {
      purpose: 'temporal-server',
      certFile: files.serverCert,
      keyFile: files.serverKey,
      subject: 'CN=certflow Temporal server,O=certflow',
      sans: { dns: names.filter((n) => !isIP(n)), ip: names.filter((n) => isIP(n)), email: [], uri: [] },
      // The Temporal server also presents it as a client: internode calls, and its system
      // workers calling the frontend.
      profile: leafProfile('temporal-server', ['serverAuth', 'clientAuth'], true),
    },
    {
      purpose: 'temporal-client',
      certFile: files.clientCert,
      keyFile: files.clientKey,
      subject: 'CN=certflow,O=certflow',
      sans: { dns: [], ip: [], email: [], uri: [] },
      profile: leafProfile('temporal-client', ['clientAuth'], false),
    },
  ];
}

/** Due for renewal once two thirds of the lifetime have passed. */
export function renewalDue(notBefore: Date, notAfter: Date, now: Date): boolean {
  return now.getTime() >= notAfter.getTime() - (notAfter.getTime() - notBefore.getTime()) / 3;
}

function certOf(file: string) {
  if (!existsSync(file)) return undefined;
  const [first] = pemDecodeAll(readFileSync(file, 'utf8'));
  return first ? describeCertificate(first.der) : undefined;
}

export interface ClusterTlsResult {
  files: ClusterTlsFiles;
  /** What was (re)issued now: 'ca', 'temporal-server', 'temporal-client'. */
  issued: string[];
}

/**
 * Makes sure the cluster CA and both certificates exist, are current and fit `serverNames`
 * (names the Temporal server is reached by besides localhost, 127.0.0.1 and ::1); issues
 * what is missing or due. The caller holds a cluster-wide lock (two runs at once would each
 * issue). `force` renews both certificates now.
 */
export async function ensureClusterTls(args: {
  dir: string;
  keys: KeyStore;
  keyAlg: KeyAlg;
  /** Told of every certificate issued (the caller audits it). */
  onIssued: (purpose: string, serial: string, details: Record<string, unknown>) => Promise<void>;
  serverNames?: string[];
  force?: boolean;
  now?: Date;
  log?: (msg: string) => void;
}): Promise<ClusterTlsResult> {
  const now = args.now ?? new Date();
  const files = clusterTlsFiles(args.dir);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  const issued: string[] = [];

  let caKey = await args.keys.get(CLUSTER_CA_KEY_ID);
  if (!caKey) {
    args.log?.(`creating the cluster CA key "${CLUSTER_CA_KEY_ID}" (${args.keyAlg}) in the ${args.keys.backend} key store`);
    caKey = await args.keys.generate(CLUSTER_CA_KEY_ID, args.keyAlg);
  }
  const caAlg = caKey.alg;
  let ca = certOf(files.ca);
  if (!ca || !Buffer.from(ca.spki).equals(Buffer.from(caKey.spki)) || renewalDue(ca.notBefore, ca.notAfter, now)) {
    const der = await createRootCertificate(args.keys, {
      keyId: CLUSTER_CA_KEY_ID,
      keyAlg: caAlg,
      subject: CLUSTER_CA_SUBJECT,
      validityDays: CLUSTER_CA_VALIDITY_DAYS,
      now,
    });
    await writeFileAtomic(files.ca, pemEncode('CERTIFICATE', der));
    ca = describeCertificate(der);
    issued.push('ca');
    await args.onIssued('ca', ca.serialHex, { subject: ca.subject, notAfter: ca.notAfter.toISOString() });
    args.log?.(`cluster CA certificate ${ca.serialHex} written to ${files.ca}`);
  }
  const caDer = pemDecodeAll(readFileSync(files.ca, 'utf8'))[0]!.der;

  for (const leaf of leaves(files, args.serverNames ?? [])) {
    const { key } = await p256KeyFile(leaf.keyFile);
    const current = certOf(leaf.certFile);
    const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    const fits =
      current &&
      current.authorityKeyIdHex === ca.subjectKeyIdHex &&
      Buffer.from(current.spki).equals(Buffer.from(spki)) &&
      [...leaf.sans.dns, ...leaf.sans.ip].every((n) => current.sans.dns.includes(n) || current.sans.ip.includes(n)) &&
      !renewalDue(current.notBefore, current.notAfter, now);
    if (fits && !args.force) continue;
    const csr = parseCsr(buildCsr({ subject: leaf.subject, sans: leaf.sans, privateKey: key }));
    const prepared = prepareCertificate({
      csr,
      profile: leaf.profile,
      ca: { name: 'certflow-cluster', certDer: caDer, keyId: CLUSTER_CA_KEY_ID, keyAlg: caAlg },
      serial: randomSerial(),
      now,
      urls: {},
    });
    const der = await signCertificate(args.keys, { keyId: CLUSTER_CA_KEY_ID, keyAlg: caAlg }, prepared.tbsDer, defaultSignAlg(caAlg));
    await writeFileAtomic(leaf.certFile, pemEncode('CERTIFICATE', der));
    issued.push(leaf.purpose);
    await args.onIssued(leaf.purpose, prepared.serialHex, {
      subject: prepared.subject,
      sans: [...prepared.sans.dns, ...prepared.sans.ip],
      notAfter: prepared.notAfter.toISOString(),
      replaces: current?.serialHex ?? null,
    });
    args.log?.(`${leaf.purpose} certificate ${prepared.serialHex} (until ${prepared.notAfter.toISOString()}) written to ${leaf.certFile}`);
  }
  return { files, issued };
}
