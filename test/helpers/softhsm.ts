/**
 * Throw-away SoftHSM tokens for tests and benchmarks: each token lives in its own temp
 * directory with its own softhsm2.conf, so runs never touch /var/lib/softhsm or each other.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Debian puts the module under the multiarch directory; /usr/lib/softhsm holds a symlink. */
const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
];

function findSoftHsmModule(): string | undefined {
  return MODULE_CANDIDATES.find((p) => existsSync(p));
}

/** True when `command` is an executable on $PATH. */
function commandAvailable(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function softHsmAvailable(): boolean {
  return findSoftHsmModule() !== undefined && commandAvailable('softhsm2-util');
}

/**
 * The `skip` option for SoftHSM tests: a reason outside CI when SoftHSM is missing, and
 * false in CI, where the tests then run and fail loudly instead of passing by skipping.
 */
export function softHsmSkip(...extraCommands: string[]): string | false {
  if (process.env.CI) return false;
  const missing = [
    ...(findSoftHsmModule() ? [] : ['libsofthsm2.so']),
    ...['softhsm2-util', ...extraCommands].filter((c) => !commandAvailable(c)),
  ];
  return missing.length ? `SoftHSM not available (missing ${missing.join(', ')}; apt-get install softhsm2 opensc)` : false;
}

export interface SoftHsmToken {
  module: string;
  label: string;
  pin: string;
  /** SOFTHSM2_CONF plus CERTFLOW_KEY_BACKEND and CERTFLOW_PKCS11_*, for child processes. */
  env: Record<string, string>;
  /** The temp directory holding softhsm2.conf and the token files. */
  dir: string;
  cleanup(): Promise<void>;
}

/**
 * Creates a fresh token and points this process at it through SOFTHSM2_CONF. SoftHSM reads
 * that variable in C_Initialize, so the token must be created before the first key store
 * of the process opens the module (or after every store on it was closed).
 */
export async function createSoftHsmToken(opts: { label?: string; pin?: string; soPin?: string } = {}): Promise<SoftHsmToken> {
  const module = findSoftHsmModule();
  if (!module) throw new Error(`SoftHSM module not found (looked in ${MODULE_CANDIDATES.join(', ')}); apt-get install softhsm2`);
  const label = opts.label ?? 'certflow-test';
  const pin = opts.pin ?? '123456';
  const soPin = opts.soPin ?? '12345678';

  const dir = await mkdtemp(join(tmpdir(), 'certflow-softhsm-'));
  const conf = join(dir, 'softhsm2.conf');
  await mkdir(join(dir, 'tokens'), { mode: 0o700 });
  await writeFile(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );

  const previousConf = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  try {
    await execFileAsync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
    });
  } catch (e) {
    restoreEnv(previousConf);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`softhsm2-util --init-token failed: ${(e as Error).message}`, { cause: e });
  }

  return {
    module,
    label,
    pin,
    dir,
    env: {
      SOFTHSM2_CONF: conf,
      CERTFLOW_KEY_BACKEND: 'pkcs11',
      CERTFLOW_PKCS11_MODULE: module,
      CERTFLOW_PKCS11_TOKEN_LABEL: label,
      CERTFLOW_PKCS11_PIN: pin,
    },
    async cleanup() {
      if (process.env.SOFTHSM2_CONF === conf) restoreEnv(previousConf);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function restoreEnv(previous: string | undefined): void {
  if (previous === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = previous;
}
