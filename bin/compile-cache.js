// V8's compiled code for the CommonJS modules a certflow process loads, kept on disk.
//
// Every `certflow` process (a CLI call, a server, a worker) compiles the same few hundred
// modules again: the command's bundle and the packages it requires (Temporal's SDK alone is
// ~600 modules in a worker). Node 22 caches that itself (module.enableCompileCache); Node 20,
// which certflow supports, does not. So this file compiles CommonJS modules the way Node does
// (the same wrapper, the same require), but through vm.Script with V8's code cache: the first
// process stores the compiled code, later ones load it instead of compiling the source again.
//
// It is only a cache, next to the bundle it belongs to (node_modules/.cache/certflow/cli-<key>/,
// whose key already changes with every source file and package-lock.json):
// - an entry is used only for the same file with the same content (SHA-1; the bundle's own
//   files, in a directory named by their content, by name), compiled by the same Node and V8
//   (the file's name carries them; V8 also refuses data from another version or other flags,
//   and the module is then compiled from source);
// - ES modules, modules that may use import() (in Node 20, V8 loses a script's dynamic-import
//   callback when it comes from cached data) and anything that fails to compile this way go
//   through Node's own compiler;
// - a process that compiled something new adds it to the file a second later and at exit
//   (merged with what the file holds then, written aside and renamed, so a reader never sees
//   half a file); two processes writing at once lose one's additions, which a later process
//   adds again.
import { createHash } from 'node:crypto';
import { Module } from 'node:module';
import { readFileSync, renameSync, writeFileSync, unlinkSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

const digest = (text) => createHash('sha1').update(text).digest('base64');

/** The entries of a cache file: filename → { hash, data }; empty if there is none or it is unreadable. */
function readCache(file) {
  const entries = new Map();
  try {
    const buf = readFileSync(file);
    const headerLength = buf.readUInt32LE(0);
    const header = JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8'));
    let offset = 4 + headerLength;
    for (const [filename, hash, length] of header) {
      entries.set(filename, { hash, data: buf.subarray(offset, offset + length) });
      offset += length;
    }
  } catch {
    return new Map();
  }
  return entries;
}

/** Writes `entries` to `file`, aside and renamed, so that a reader never sees half a file. */
function writeCache(file, entries) {
  const header = [...entries].map(([filename, { hash, data }]) => [filename, hash, data.length]);
  const headerBuf = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBuf.length);
  mkdirSync(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, Buffer.concat([length, headerBuf, ...[...entries.values()].map((e) => e.data)]));
  try {
    renameSync(partial, file);
  } catch {
    unlinkSync(partial);
  }
}

/**
 * Reads the cache file `<dir>/v8-<node>-<arch>.bin` (if any) and makes the CommonJS loader use
 * and extend it for the rest of this process. Returns the counts of modules loaded from the
 * cache and compiled from source so far (undefined where Node caches by itself, or source maps
 * are on).
 */
export function enableCompileCache(dir) {
  if (Module.enableCompileCache) {
    // Node >= 22.1 does it itself, for ES modules too.
    Module.enableCompileCache(join(dir, 'node'));
    return undefined;
  }
  // With --enable-source-maps (debugging) Node's own compiler runs: it registers each
  // module's source map, which stack traces then use.
  if (process.sourceMapsEnabled) return undefined;
  const counts = { cached: 0, compiled: 0 };
  const file = join(dir, `v8-${process.version}-${process.arch}.bin`);
  const entries = readCache(file);
  /** Scripts compiled without usable cached data, whose code is not stored yet. */
  const fresh = new Map();
  let saveTimer;

  // Stored a second after the last new module, while the process runs (servers and workers
  // run long; the next process should not wait for their exit), and at exit. Merged with what
  // other processes stored in the meantime.
  const save = () => {
    clearTimeout(saveTimer);
    if (fresh.size === 0) return;
    try {
      const merged = readCache(file);
      // Taken now, the data also holds the functions compiled lazily since the module loaded.
      for (const [filename, { hash, script }] of fresh) {
        merged.set(filename, { hash, data: script.createCachedData() });
      }
      fresh.clear();
      writeCache(file, merged);
    } catch {
      // a cache that cannot be written costs the next process its compile time, nothing else
    }
  };
  process.once('exit', save);

  const original = Module.prototype._compile;
  Module.prototype._compile = function compileCached(content, filename, format) {
    const bundleFile = filename.startsWith(dir);
    // The bundle (in `dir`) is built without import(); a package's file may use it.
    const mayImport = !bundleFile && content.includes('import(');
    if ((format !== undefined && format !== 'commonjs') || mayImport) {
      return original.call(this, content, filename, format);
    }
    // The bundle's own files never change: their directory is named by the hash of what they
    // were built from and renamed into place whole (bin/bundle.js). Hashing its ~4 MB would
    // cost every process ~8 ms; a package's file is checked by its content.
    const hash = bundleFile ? 'bundle' : digest(content);
    const cached = entries.get(filename);
    let script;
    try {
      script = new vm.Script(Module.wrap(content), {
        filename,
        cachedData: cached?.hash === hash ? cached.data : undefined,
      });
    } catch {
      // ES module syntax in a .js file Node would detect, or anything else: Node decides.
      return original.call(this, content, filename, format);
    }
    if (cached?.hash === hash && !script.cachedDataRejected) {
      counts.cached++;
    } else {
      counts.compiled++;
      fresh.set(filename, { hash, script });
      clearTimeout(saveTimer);
      saveTimer = setTimeout(save, 1000).unref();
    }

    // The require() Node gives a module: resolved from it, with the same properties.
    const require = (id) => this.require(id);
    require.resolve = (request, options) => Module._resolveFilename(request, this, false, options);
    require.resolve.paths = (request) => Module._resolveLookupPaths(request, this);
    require.main = process.mainModule;
    require.extensions = Module._extensions;
    require.cache = Module._cache;
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, require, this, filename, dirname(filename));
  };
  return counts;
}
