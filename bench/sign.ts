/**
 * Signing throughput of the key stores: SoftwareKeyStore and Pkcs11KeyStore (on a SoftHSM
 * token in a temp directory) for ec-p256 and rsa-2048, with one sequential caller and with
 * 8 concurrent callers, next to `openssl speed` as the single-core ceiling.
 *
 *   npm run bench:sign [-- --seconds 2] [--concurrency 8]
 *
 * Prints one JSON document on stdout; progress goes to stderr.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DEFAULT_PKCS11_SESSIONS, Pkcs11KeyStore } from '../src/keys/pkcs11.ts';
import { SoftwareKeyStore } from '../src/keys/software.ts';
import type { KeyAlg, KeyStore, SignAlg } from '../src/keys/types.ts';
import { createSoftHsmToken, softHsmAvailable } from '../test/helpers/softhsm.ts';
import { verifySignature } from '../test/helpers/signatures.ts';

const execFileAsync = promisify(execFile);

const CASES: Array<{ alg: KeyAlg; signAlg: SignAlg }> = [
  { alg: 'ec-p256', signAlg: 'ecdsa-sha256' },
  { alg: 'rsa-2048', signAlg: 'rsa-pkcs1-sha256' },
];

interface Run {
  signPerSec: number;
  signatures: number;
  seconds: number;
}

interface CaseResult {
  signAlg: SignAlg;
  sequential: Run;
  concurrent: Run & { callers: number };
}

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '8' } },
});
const seconds = Number(values.seconds);
const callers = Number(values.concurrency);
if (!(seconds > 0) || !Number.isInteger(callers) || callers < 1) {
  console.error('usage: bench/sign.ts [--seconds N] [--concurrency N]');
  process.exit(2);
}

const progress = (msg: string) => process.stderr.write(`${msg}\n`);
// A TBSCertificate is typically 300-1500 bytes.
const message = randomBytes(1024);

/** `workers` callers each signing back to back until the time is up. */
async function measure(sign: () => Promise<unknown>, workers: number): Promise<Run> {
  for (let i = 0; i < 5; i++) await sign(); // warm-up: key cache, sessions, JIT
  let signatures = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        await sign();
        signatures++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { signPerSec: Math.round(signatures / elapsed), signatures, seconds: Number(elapsed.toFixed(3)) };
}

async function benchStore(name: string, store: KeyStore): Promise<Record<string, CaseResult>> {
  const results: Record<string, CaseResult> = {};
  for (const { alg, signAlg } of CASES) {
    const id = `bench-${alg}`;
    const { spki } = await store.generate(id, alg);
    // A benchmark of wrong signatures would be worthless: check one first.
    if (!verifySignature(spki, signAlg, message, await store.sign(id, signAlg, message))) {
      throw new Error(`${name} ${alg}: signature does not verify`);
    }
    const sign = () => store.sign(id, signAlg, message);
    progress(`${name} ${alg}: sequential ${seconds}s ...`);
    const sequential = await measure(sign, 1);
    progress(`${name} ${alg}: ${callers} concurrent callers ${seconds}s ...`);
    const concurrent = { ...(await measure(sign, callers)), callers };
    progress(`${name} ${alg}: ${sequential.signPerSec}/s sequential, ${concurrent.signPerSec}/s concurrent`);
    results[alg] = { signAlg, sequential, concurrent };
  }
  return results;
}

async function benchSoftware(): Promise<Record<string, CaseResult>> {
  const dir = await mkdtemp(join(tmpdir(), 'certflow-bench-keys-'));
  const store = new SoftwareKeyStore({ dir, passphrase: randomBytes(16).toString('hex') });
  try {
    return await benchStore('software', store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchPkcs11(): Promise<Record<string, unknown>> {
  if (!softHsmAvailable()) {
    progress('pkcs11: SoftHSM not installed, skipped');
    return { skipped: 'SoftHSM not installed' };
  }
  const token = await createSoftHsmToken({ label: 'certflow-bench' });
  const store = await Pkcs11KeyStore.open({ module: token.module, tokenLabel: token.label, pin: token.pin });
  try {
    return { module: token.module, sessions: DEFAULT_PKCS11_SESSIONS, ...(await benchStore('pkcs11', store)) };
  } finally {
    await store.close();
    await token.cleanup();
  }
}

/** sign/s of `openssl speed` (one core); null when openssl is missing or its format changed. */
async function benchOpenssl(): Promise<{ ecdsap256: number | null; rsa2048: number | null }> {
  progress(`openssl speed -seconds ${seconds} ecdsap256 rsa2048 ...`);
  try {
    const { stdout } = await execFileAsync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256', 'rsa2048'], {
      maxBuffer: 1 << 20,
    });
    return parseOpensslSpeed(stdout);
  } catch (e) {
    progress(`openssl speed failed: ${(e as Error).message}`);
    return { ecdsap256: null, rsa2048: null };
  }
}

/**
 * The result tables look like (OpenSSL 3):
 *                   sign    verify    sign/s verify/s
 *   rsa 2048 bits 0.000263s 0.000014s   3803.0  70782.0
 *    256 bits ecdsa (nistp256)   0.0000s   0.0001s  55190.0  17589.0
 */
export function parseOpensslSpeed(out: string): { ecdsap256: number | null; rsa2048: number | null } {
  const rsa = /^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)/m.exec(out);
  const ec = /^\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)/m.exec(out);
  return { ecdsap256: ec ? Number(ec[1]) : null, rsa2048: rsa ? Number(rsa[1]) : null };
}

const software = await benchSoftware();
const pkcs11 = await benchPkcs11();
const openssl = await benchOpenssl();
const report = {
  software,
  pkcs11,
  openssl,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
  settings: { seconds, concurrency: callers, messageBytes: message.length },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
