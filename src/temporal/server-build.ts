/**
 * The Temporal server that `certflow cluster` runs: built from the Go module proxy with
 * `go install go.temporal.io/server/cmd/server@<version>` (and its SQL schema tool), once,
 * and kept under <dir>/<version>/bin. The version is pinned here and nowhere else.
 *
 * A build takes about 5 minutes of 2 cores and about 5 GB of Go caches while it runs; they
 * live next to the binaries (<dir>/go), and only the module cache (~1.5 GB) is kept after a
 * build. Two processes building at once take turns through a lock directory.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { runCommand } from '../core/child.ts';
import { CaError } from '../core/errors.ts';
import { tryLockDir } from '../core/files.ts';
import { isExecutable } from './cli.ts';
import { processEnv } from '../config/env.ts';

const execFileAsync = promisify(execFile);

/** The Temporal server release certflow's cluster runs (and docker-compose.yml names). */
export const TEMPORAL_SERVER_VERSION = 'v1.32.1';
const MODULE = 'go.temporal.io/server';
/** Go packages built, and the names their binaries get. */
const COMMANDS = [
  { pkg: `${MODULE}/cmd/server`, built: 'server', name: 'temporal-server' },
  { pkg: `${MODULE}/cmd/tools/sql`, built: 'sql', name: 'temporal-sql-tool' },
] as const;

export interface TemporalServerBinaries {
  version: string;
  /** The all-in-one server: `temporal-server --config-file <f> --allow-no-auth start`. */
  server: string;
  /** temporal-sql-tool: creates and migrates the schemas (embedded in the binary). */
  sqlTool: string;
}

export interface TemporalServerBuildOptions {
  /** Where builds are kept: <dir>/<version>/bin, Go caches in <dir>/go. */
  dir: string;
  version?: string;
  log?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
}

function binariesIn(dir: string, version: string): TemporalServerBinaries {
  const bin = join(dir, version, 'bin');
  return { version, server: join(bin, 'temporal-server'), sqlTool: join(bin, 'temporal-sql-tool') };
}

/** The binaries of `version` if they were built (and run), else undefined. */
export async function findTemporalServer(dir: string, version = TEMPORAL_SERVER_VERSION): Promise<TemporalServerBinaries | undefined> {
  const b = binariesIn(dir, version);
  if (!(await isExecutable(b.server)) || !(await isExecutable(b.sqlTool))) return undefined;
  const out = await execFileAsync(b.server, ['--version'], { timeout: 30_000 }).catch(() => undefined);
  // "temporal version 1.32.1"
  if (!out?.stdout.includes(version.replace(/^v/, ''))) return undefined;
  return b;
}

/** The `go` command on PATH (GOTOOLCHAIN=local below: no other toolchain is downloaded). */
export async function findGo(env: NodeJS.ProcessEnv = processEnv()): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await isExecutable(join(dir, 'go'))) return join(dir, 'go');
  }
  return undefined;
}

/** Returns the binaries of the pinned version, building them first if they are missing. */
export async function ensureTemporalServer(opts: TemporalServerBuildOptions): Promise<TemporalServerBinaries> {
  const version = opts.version ?? TEMPORAL_SERVER_VERSION;
  const log = opts.log ?? (() => {});
  const found = await findTemporalServer(opts.dir, version);
  if (found) return found;
  mkdirSync(opts.dir, { recursive: true });
  const lock = join(opts.dir, `${version}.building`);
  while (!tryLockDir(lock, 60 * 60_000)) {
    log(`waiting for another process building the Temporal server ${version} (lock ${lock})`);
    for (let i = 0; i < 30 && existsSync(lock); i++) await sleep(1000);
    const done = await findTemporalServer(opts.dir, version);
    if (done) return done;
  }
  try {
    return (await findTemporalServer(opts.dir, version)) ?? (await build(opts.dir, version, log, opts.env ?? processEnv()));
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function build(dir: string, version: string, log: (msg: string) => void, env: NodeJS.ProcessEnv): Promise<TemporalServerBinaries> {
  const go = await findGo(env);
  if (!go) {
    throw new CaError(
      'config',
      `the Temporal server ${version} is not built in ${join(dir, version)} and there is no \`go\` on PATH to build it. ` +
        `Install Go (the version ${MODULE}@${version} asks for in its go.mod), or copy a build made elsewhere with ` +
        '`certflow cluster build` into that directory (or point CERTFLOW_TEMPORAL_SERVER_DIR at one)',
      { rule: 'cluster.temporalServer' },
    );
  }
  const gopath = join(dir, 'go');
  const staging = join(dir, `${version}.staging`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const goEnv: NodeJS.ProcessEnv = {
    ...env,
    GOPATH: gopath,
    GOMODCACHE: join(gopath, 'pkg', 'mod'),
    GOCACHE: join(gopath, 'cache'),
    GOBIN: staging,
    // Pure Go: static binaries that run on any Linux of the architecture.
    CGO_ENABLED: '0',
    // Never download another Go toolchain: the machine's Go must be new enough.
    GOTOOLCHAIN: 'local',
    // Module cache files writable, so that the directory can be deleted.
    GOFLAGS: '-modcacherw',
  };
  const goVersion = (await execFileAsync(go, ['version'], { env: goEnv })).stdout.trim();
  log(`building the Temporal server ${version} with ${goVersion} (go install: about 5 minutes and 5 GB of Go caches in ${gopath})`);
  const started = Date.now();
  // go install is silent while it compiles: say every minute that it is still at it.
  const progress = setInterval(() => log(`still building the Temporal server (${Math.round((Date.now() - started) / 1000)} s)`), 60_000);
  try {
    await runCommand(go, ['install', ...COMMANDS.map((c) => `${c.pkg}@${version}`)], {
      what: `go install ${MODULE}/cmd/{server,tools/sql}@${version}`,
      env: goEnv,
      hint: 'The Go module proxy must be reachable (GOPROXY), and the Go on PATH new enough for the module.',
    });
  } finally {
    clearInterval(progress);
  }
  const bin = join(dir, version, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const c of COMMANDS) renameSync(join(staging, c.built), join(bin, c.name));
  rmSync(staging, { recursive: true, force: true });
  // The build cache (~4 GB) is only worth keeping to rebuild the same version: drop it. The
  // module cache (~1.5 GB of sources) stays, so that another version downloads less.
  rmSync(goEnv.GOCACHE!, { recursive: true, force: true });
  writeFileSync(join(dir, version, 'BUILD'), `${MODULE}@${version}\n${goVersion}\nCGO_ENABLED=0\nbuilt ${new Date().toISOString()}\n`);
  const built = await findTemporalServer(dir, version);
  if (!built)
    throw new CaError('internal', `the Temporal server was built into ${bin}, but \`temporal-server --version\` does not say ${version}`);
  log(`built the Temporal server ${version} in ${Math.round((Date.now() - started) / 1000)} s: ${bin}`);
  return built;
}
