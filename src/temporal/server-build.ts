/**
 * The Go programs `certflow cluster` runs, built from the Go module proxy with `go install
 * <module>/<cmd>@<version>`, once, and kept under the build directory:
 *
 * - the Temporal server (and its SQL schema tool): <dir>/<version>/bin
 * - the Temporal UI server, the release the Temporal CLI of the same server line bundles
 *   (CLI 1.9.1 = Server 1.32.0 + UI 2.54.1): <dir>/ui-<version>/bin
 *
 * The versions are pinned here and nowhere else. A Temporal server build takes about 5
 * minutes of 2 cores and about 5 GB of Go caches while it runs, the UI server about 2
 * minutes; the caches live next to the binaries (<dir>/go), and only the module cache is
 * kept after a build. Two processes building the same program take turns through a lock
 * directory; different programs share the module cache (safe for concurrent use), each
 * build with its own build cache.
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
/** The Temporal UI server release that goes with it (docker-compose.yml's temporalio/ui tag too). */
export const TEMPORAL_UI_VERSION = 'v2.54.1';

/** One program built from a Go module: where it goes and how to tell that a build is the right one. */
interface GoProgram {
  what: string;
  module: string;
  version: string;
  /** Directory under the build directory: <dir>/<subdir>/bin. */
  subdir: string;
  /** Go packages built, and the names their binaries get. */
  commands: ReadonlyArray<{ pkg: string; built: string; name: string }>;
  /** Roughly how long a build takes here (for the progress message). */
  takes: string;
}

const SERVER_MODULE = 'go.temporal.io/server';
const TEMPORAL_SERVER: GoProgram = {
  what: 'the Temporal server',
  module: SERVER_MODULE,
  version: TEMPORAL_SERVER_VERSION,
  subdir: TEMPORAL_SERVER_VERSION,
  commands: [
    { pkg: `${SERVER_MODULE}/cmd/server`, built: 'server', name: 'temporal-server' },
    { pkg: `${SERVER_MODULE}/cmd/tools/sql`, built: 'sql', name: 'temporal-sql-tool' },
  ],
  takes: 'about 5 minutes and 5 GB of Go caches',
};

const UI_MODULE = 'github.com/temporalio/ui-server/v2';
const TEMPORAL_UI: GoProgram = {
  what: 'the Temporal UI server',
  module: UI_MODULE,
  version: TEMPORAL_UI_VERSION,
  subdir: `ui-${TEMPORAL_UI_VERSION}`,
  // The module embeds the UI's built assets (ui/assets): the binary serves everything.
  commands: [{ pkg: `${UI_MODULE}/cmd/server`, built: 'server', name: 'temporal-ui-server' }],
  takes: 'about 2 minutes',
};

export interface TemporalServerBinaries {
  version: string;
  /** The all-in-one server: `temporal-server --config-file <f> start`. */
  server: string;
  /** temporal-sql-tool: creates and migrates the schemas (embedded in the binary). */
  sqlTool: string;
}

export interface TemporalUiBinary {
  version: string;
  /** `temporal-ui-server --root <dir> --config config --env <name> start`. */
  uiServer: string;
}

export interface TemporalServerBuildOptions {
  /** Where builds are kept: <dir>/<subdir>/bin, Go caches in <dir>/go. */
  dir: string;
  log?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
}

const binDir = (dir: string, p: GoProgram) => join(dir, p.subdir, 'bin');

/** True when every binary of `p` was built and the first says its version when asked. */
async function built(dir: string, p: GoProgram): Promise<boolean> {
  const bin = binDir(dir, p);
  for (const c of p.commands) if (!(await isExecutable(join(bin, c.name)))) return false;
  const out = await execFileAsync(join(bin, p.commands[0].name), ['--version'], { timeout: 30_000 }).catch(() => undefined);
  // "temporal version 1.32.1", "Temporal UI version 2.54.1"
  return Boolean(out?.stdout.includes(p.version.replace(/^v/, '')));
}

/** The Temporal server binaries if they were built (and run), else undefined. */
export async function findTemporalServer(dir: string): Promise<TemporalServerBinaries | undefined> {
  if (!(await built(dir, TEMPORAL_SERVER))) return undefined;
  const bin = binDir(dir, TEMPORAL_SERVER);
  return { version: TEMPORAL_SERVER_VERSION, server: join(bin, 'temporal-server'), sqlTool: join(bin, 'temporal-sql-tool') };
}

/** The Temporal UI server binary if it was built (and runs), else undefined. */
export async function findTemporalUi(dir: string): Promise<TemporalUiBinary | undefined> {
  if (!(await built(dir, TEMPORAL_UI))) return undefined;
  return { version: TEMPORAL_UI_VERSION, uiServer: join(binDir(dir, TEMPORAL_UI), 'temporal-ui-server') };
}

/** The `go` command on PATH (GOTOOLCHAIN=local below: no other toolchain is downloaded). */
export async function findGo(env: NodeJS.ProcessEnv = processEnv()): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await isExecutable(join(dir, 'go'))) return join(dir, 'go');
  }
  return undefined;
}

/** Returns the Temporal server binaries, building them first if they are missing. */
export async function ensureTemporalServer(opts: TemporalServerBuildOptions): Promise<TemporalServerBinaries> {
  await ensureBuilt(opts, TEMPORAL_SERVER);
  return (await findTemporalServer(opts.dir))!;
}

/** Returns the Temporal UI server binary, building it first if it is missing. */
export async function ensureTemporalUi(opts: TemporalServerBuildOptions): Promise<TemporalUiBinary> {
  await ensureBuilt(opts, TEMPORAL_UI);
  return (await findTemporalUi(opts.dir))!;
}

async function ensureBuilt(opts: TemporalServerBuildOptions, p: GoProgram): Promise<void> {
  const log = opts.log ?? (() => {});
  if (await built(opts.dir, p)) return;
  mkdirSync(opts.dir, { recursive: true });
  const lock = join(opts.dir, `${p.subdir}.building`);
  while (!tryLockDir(lock, 60 * 60_000)) {
    log(`waiting for another process building ${p.what} ${p.version} (lock ${lock})`);
    for (let i = 0; i < 30 && existsSync(lock); i++) await sleep(1000);
    if (await built(opts.dir, p)) return;
  }
  try {
    if (!(await built(opts.dir, p))) await build(opts.dir, p, log, opts.env ?? processEnv());
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function build(dir: string, p: GoProgram, log: (msg: string) => void, env: NodeJS.ProcessEnv): Promise<void> {
  const go = await findGo(env);
  if (!go) {
    throw new CaError(
      'config',
      `${p.what} ${p.version} is not built in ${join(dir, p.subdir)} and there is no \`go\` on PATH to build it. ` +
        `Install Go (the version ${p.module}@${p.version} asks for in its go.mod), or copy a build made elsewhere with ` +
        '`certflow cluster build` into that directory (or point CERTFLOW_TEMPORAL_SERVER_DIR at one)',
      { rule: 'cluster.temporalServer' },
    );
  }
  const gopath = join(dir, 'go');
  const staging = join(dir, `${p.subdir}.staging`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  // The module cache is shared by the builds; each build has its own build cache, dropped
  // afterwards (another build running at the same time keeps its own).
  const cache = join(gopath, `cache-${p.subdir}`);
  const goEnv: NodeJS.ProcessEnv = {
    ...env,
    GOPATH: gopath,
    GOMODCACHE: join(gopath, 'pkg', 'mod'),
    GOCACHE: cache,
    GOBIN: staging,
    // Pure Go: static binaries that run on any Linux of the architecture.
    CGO_ENABLED: '0',
    // Never download another Go toolchain: the machine's Go must be new enough.
    GOTOOLCHAIN: 'local',
    // Module cache files writable, so that the directory can be deleted.
    GOFLAGS: '-modcacherw',
  };
  const goVersion = (await execFileAsync(go, ['version'], { env: goEnv })).stdout.trim();
  log(`building ${p.what} ${p.version} with ${goVersion} (go install: ${p.takes} in ${gopath})`);
  const started = Date.now();
  // go install is silent while it compiles: say every minute that it is still at it.
  const progress = setInterval(() => log(`still building ${p.what} (${Math.round((Date.now() - started) / 1000)} s)`), 60_000);
  try {
    await runCommand(go, ['install', ...p.commands.map((c) => `${c.pkg}@${p.version}`)], {
      what: `go install ${p.commands.map((c) => c.pkg).join(' ')}@${p.version}`,
      env: goEnv,
      hint: 'The Go module proxy must be reachable (GOPROXY), and the Go on PATH new enough for the module.',
    });
  } finally {
    clearInterval(progress);
  }
  const bin = binDir(dir, p);
  mkdirSync(bin, { recursive: true });
  for (const c of p.commands) renameSync(join(staging, c.built), join(bin, c.name));
  rmSync(staging, { recursive: true, force: true });
  // The build cache (~4 GB for the server) is only worth keeping to rebuild the same
  // version: drop it. The module cache stays, so that another version downloads less.
  rmSync(cache, { recursive: true, force: true });
  writeFileSync(join(dir, p.subdir, 'BUILD'), `${p.module}@${p.version}\n${goVersion}\nCGO_ENABLED=0\nbuilt ${new Date().toISOString()}\n`);
  if (!(await built(dir, p)))
    throw new CaError('internal', `${p.what} was built into ${bin}, but \`${p.commands[0].name} --version\` does not say ${p.version}`);
  log(`built ${p.what} ${p.version} in ${Math.round((Date.now() - started) / 1000)} s: ${bin}`);
}
