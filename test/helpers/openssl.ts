/**
 * The openssl command line (3.0) as an independent implementation to test against: it makes
 * real CSRs and checks the certificates certflow issues. Keys are generated once per spec
 * and reused, which keeps the tests fast (RSA key generation dominates otherwise).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pemEncode } from '../../src/pki/index.ts';

export const workDir = mkdtempSync(join(tmpdir(), 'certflow-pki-test-'));
process.on('exit', () => rmSync(workDir, { recursive: true, force: true }));

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs openssl; never throws for a non-zero exit (tests look at `code`). */
export function openssl(args: string[], input?: string | Uint8Array): OpensslResult {
  try {
    const stdout = execFileSync('openssl', args, { input, cwd: workDir, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'latin1' });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

function mustOpenssl(args: string[], input?: string | Uint8Array): string {
  const r = openssl(args, input);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Key specs: "ec:P-256", "ec:P-384", "ec:P-521", "rsa:1024", "rsa:2048", "ed25519", "ed448". */
export type KeySpec = string;

const keyFiles = new Map<KeySpec, string>();

/** A private key file for `spec`, generated on first use. */
export function keyFile(spec: KeySpec): string {
  const known = keyFiles.get(spec);
  if (known) return known;
  const file = join(workDir, `key-${spec.replace(/[^a-z0-9]/gi, '_')}.pem`);
  const [type, param] = spec.split(':');
  const args = ['genpkey', '-out', file];
  if (type === 'ec') args.push('-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${param}`);
  else if (type === 'rsa') args.push('-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${param}`);
  else args.push('-algorithm', type.toUpperCase());
  mustOpenssl(args);
  keyFiles.set(spec, file);
  return file;
}

let counter = 0;

/** A fresh file name in the work directory. */
export function tmpFile(name: string): string {
  return join(workDir, `${++counter}-${name}`);
}

/**
 * A CSR made by `openssl req`.
 * @param subj OpenSSL -subj form ("/CN=foo/O=bar"; "/" for an empty subject)
 * @param san subjectAltName value ("DNS:a.example,IP:10.0.0.1"), omitted when undefined
 * @param extra more `openssl req` arguments (e.g. ["-sha384"], PSS -sigopt's)
 */
export function makeCsr(opts: { key?: KeySpec; subj: string; san?: string; extra?: string[] }): { der: Uint8Array; pem: string } {
  const args = ['req', '-new', '-key', keyFile(opts.key ?? 'ec:P-256'), '-subj', opts.subj, '-outform', 'DER'];
  if (opts.san !== undefined) args.push('-addext', `subjectAltName=${opts.san}`);
  args.push(...(opts.extra ?? []));
  const der = new Uint8Array(Buffer.from(mustOpenssl(args), 'latin1'));
  return { der, pem: pemEncode('CERTIFICATE REQUEST', der) };
}

/** Writes PEM certificates (concatenated) to a new file and returns its path. */
export function writePem(name: string, ...certs: Uint8Array[]): string {
  const file = tmpFile(name);
  writeFileSync(file, certs.map((c) => pemEncode('CERTIFICATE', c)).join(''));
  return file;
}

/** `openssl x509 -text -noout` of a DER certificate. */
export function x509Text(der: Uint8Array): string {
  return mustOpenssl(['x509', '-inform', 'DER', '-text', '-noout'], der);
}

/** `openssl verify` with strict X.509 checks; returns the result for assertions. */
export function verifyChain(opts: { root: Uint8Array; chain?: Uint8Array[]; leaf: Uint8Array; purpose?: string }): OpensslResult {
  const args = ['verify', '-x509_strict', '-CAfile', writePem('root.pem', opts.root)];
  if (opts.chain?.length) args.push('-untrusted', writePem('chain.pem', ...opts.chain));
  if (opts.purpose) args.push('-purpose', opts.purpose);
  args.push(writePem('leaf.pem', opts.leaf));
  return openssl(args);
}
