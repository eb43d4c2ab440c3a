/**
 * globalsign/est's `estclient` (Go), an independent EST client (RFC 7030) to test certflow's
 * EST server against. .ci/run builds it into the project-local Go tree
 * (.certflow/go/bin/estclient); an `estclient` on $PATH is used otherwise.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliResult } from './certflow.ts';

/** Where .ci/run puts the binary. */
const projectEstclient = fileURLToPath(new URL('../../.certflow/go/bin/estclient', import.meta.url));

/** How to build it by hand, the way .ci/run does (`go install ...@latest` is refused by the proxy). */
export const estclientBuildHint =
  'build it with the estclient step of .ci/run (bash .ci/run builds it when go is installed): ' +
  'go install github.com/globalsign/est/cmd/estclient from a module requiring github.com/globalsign/est v1.0.6, ' +
  'with GOBIN=.certflow/go/bin';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The estclient binary: the project-local build, else `estclient` on $PATH; undefined when neither exists. */
export function estclientPath(): string | undefined {
  if (executable(projectEstclient)) return projectEstclient;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'estclient');
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The `skip` option for estclient tests: a reason outside CI when the binary is missing,
 * and false in CI, where the tests then run and fail loudly instead of passing by skipping.
 */
export function estclientSkip(): string | false {
  if (process.env.CI) return false;
  return estclientPath() ? false : `estclient not found (looked at ${projectEstclient} and $PATH); ${estclientBuildHint}`;
}

/**
 * Runs estclient with `args`; never throws for a non-zero exit (tests look at `code`), but
 * throws when the binary is missing. estclient reports errors on stderr as
 * "estclient: <message>" and exits 1.
 */
export function runEstclient(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const bin = estclientPath();
  if (!bin) return Promise.reject(new Error(`estclient not found (looked at ${projectEstclient} and $PATH); ${estclientBuildHint}`));
  return new Promise((resolve) => {
    const child = execFile(
      bin,
      args,
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        let code = 0;
        if (err) {
          const e = err as { code?: unknown; killed?: boolean; signal?: string | null };
          code = typeof e.code === 'number' ? e.code : 1;
          if (e.killed || e.signal) stderr = `${String(stderr)}\n[killed: ${e.signal ?? 'timeout'}]`;
        }
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end();
  });
}
