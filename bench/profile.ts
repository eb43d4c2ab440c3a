/**
 * Where a V8 CPU profile of a certflow process spends its time (the files
 * `npm run bench:acme -- --cpu-prof DIR` writes: <pid>-0 is start-up and warm-up, <pid>-1 the
 * timed run):
 *
 *   npm run --silent bench:profile -- DIR/<pid>-1.cpuprofile [--top 40]
 *
 * Prints JSON: the busy time (samples that are not idle), self time by function and by
 * package or source file, and time by certflow function including what it calls (stacks
 * are cut at each `await`, so an async function is charged only up to its first one).
 * The profile samples wall time on the main thread: on a busy machine a function is charged
 * for the time its thread waited for a core, so compare shares, not milliseconds.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '40' } }, allowPositionals: true });
const top = Number(values.top);
if (positionals.length !== 1 || !(top > 0)) {
  console.error('usage: bench/profile.ts FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;

// certflow's processes run from the compiled bundle (bin/bundle.js, with the ES-module
// packages inside it): its frames are mapped back to their sources through its source map.
const sourceMaps = new Map<string, { map: SourceMap; dir: string } | null>();
function sourceMapOf(url: string): { map: SourceMap; dir: string } | null {
  if (!sourceMaps.has(url)) {
    const file = fileURLToPath(url);
    sourceMaps.set(
      url,
      existsSync(`${file}.map`) ? { map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))), dir: dirname(file) } : null,
    );
  }
  return sourceMaps.get(url)!;
}
for (const n of profile.nodes) {
  const f = n.callFrame;
  const sm = f.url.startsWith('file://') && /\/node_modules\/\.cache\/certflow\/cli-[^/]+\//.test(f.url) ? sourceMapOf(f.url) : null;
  const entry = sm?.map.findEntry(f.lineNumber, f.columnNumber);
  if (entry && 'originalSource' in entry && entry.originalSource) {
    f.url = resolve(sm!.dir, entry.originalSource.replace(/^file:\/\//, ''));
    f.lineNumber = entry.originalLine;
  }
}

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

/** A package name, a node: module, or a path inside the repository. */
function where(url: string): string {
  if (!url) return '(native)';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url;
  const repo = /\/(src|activities|workflows|bench|bin)\/(.*)$/.exec(url);
  return repo ? `${repo[1]}/${repo[2]}` : url;
}
const isOurs = (url: string) => /\/(src|activities|workflows)\//.test(url) && !url.includes('node_modules');
const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

let busyUs = 0;
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const ours = new Map<string, number>();
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
for (const [id, us] of selfUs) {
  const node = nodes.get(id)!;
  if (node.callFrame.functionName === '(idle)') continue;
  busyUs += us;
  add(byFunction, label(node), us);
  add(byFile, where(node.callFrame.url), us);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = nodes.get(cur)!;
    const k = label(n);
    if (isOurs(n.callFrame.url) && !seen.has(k)) {
      seen.add(k);
      add(ours, k, us);
    }
  }
}
const ranked = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: Number((us / busyUs).toFixed(3)) }));
console.log(
  JSON.stringify(
    {
      busyMs: Math.round(busyUs / 1000),
      selfByFunction: ranked(byFunction),
      selfByFile: ranked(byFile),
      certflowFunctionsWithCallees: ranked(ours),
    },
    null,
    1,
  ),
);
