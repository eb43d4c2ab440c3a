/**
 * The documentation stays usable and true to the code, without any server: README.md under
 * 200 lines; every relative link of README.md and docs/*.md reaches a file (and a heading,
 * when it names one); every environment variable src/config reads and every key of the
 * configuration file's schema is in docs/configuration.md; every `certflow` command is in
 * docs/cli.md with each of its options; no link into the development machine's ../shared and no "issue N" a reader
 * cannot follow. (The docs' runnable shell blocks are run by test/integration/readme.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { z } from 'zod';
import { configFileSchema } from '../../src/config/schema.ts';
import { program } from '../../src/cli/main.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(repo, file), 'utf8');
const docs = readdirSync(join(repo, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);
const markdownFiles = ['README.md', ...docs];

/** The lines of a Markdown text outside fenced code blocks, with their 1-based numbers. */
function prose(markdown: string): Array<{ n: number; text: string }> {
  const out: Array<{ n: number; text: string }> = [];
  let fence: string | undefined;
  for (const [i, line] of markdown.split('\n').entries()) {
    const f = /^\s*(```|~~~)/.exec(line);
    if (f) {
      if (!fence) fence = f[1];
      else if (f[1] === fence) fence = undefined;
      continue;
    }
    if (!fence) out.push({ n: i + 1, text: line });
  }
  return out;
}

/** GitHub's anchors of a Markdown text's headings (github-slugger: lower case, punctuation dropped, duplicates numbered). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text } of prose(markdown)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!h) continue;
    const plain = h[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
    const base = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count ? `${base}-${count}` : base);
  }
  return out;
}

/** The relative link targets of a Markdown text (inline code spans left out). */
function relativeLinks(markdown: string): Array<{ n: number; target: string }> {
  const out: Array<{ n: number; target: string }> = [];
  for (const { n, text } of prose(markdown)) {
    const withoutCode = text.replace(/`[^`]*`/g, '');
    for (const m of withoutCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) out.push({ n, target });
    }
  }
  return out;
}

describe('documentation', () => {
  it('README.md has fewer than 200 lines', () => {
    const lines = read('README.md').replace(/\n$/, '').split('\n').length;
    assert.ok(lines < 200, `README.md has ${lines} lines: move detail into docs/ and link it`);
  });

  it('every relative link in README.md and docs/*.md reaches a file, and the heading it names', () => {
    const broken: string[] = [];
    for (const file of markdownFiles) {
      for (const { n, target } of relativeLinks(read(file))) {
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const to = path ? resolve(repo, dirname(file), decodeURIComponent(path)) : join(repo, file);
        const where = `${file}:${n}: ${target}`;
        if (!existsSync(to)) broken.push(`${where}: no file ${relative(repo, to)}`);
        else if (anchor !== undefined && to.endsWith('.md') && !anchors(readFileSync(to, 'utf8')).has(anchor)) {
          broken.push(`${where}: no heading #${anchor} in ${relative(repo, to)}`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('no link into ../shared and no "issue N" that a reader cannot follow', () => {
    const found: string[] = [];
    for (const file of markdownFiles) {
      for (const [i, line] of read(file).split('\n').entries()) {
        if (/\.\.\/shared\b|\bissues? \d+/i.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
      }
    }
    assert.deepEqual(found, []);
  });

  it('every environment variable that src/config reads is in docs/configuration.md', () => {
    const configuration = read('docs/configuration.md');
    const names = new Set<string>();
    for (const f of readdirSync(join(repo, 'src/config')).filter((f) => f.endsWith('.ts'))) {
      const src = read(`src/config/${f}`);
      for (const m of src.matchAll(
        /(?<!['"\w.])env\??\.([A-Z][A-Z0-9_]+)\b|(?<!['"\w.])env\[['"]([A-Z][A-Z0-9_]+)['"]\]|\(env, '([A-Z][A-Z0-9_]+)'/g,
      )) {
        names.add((m[1] ?? m[2] ?? m[3])!);
      }
    }
    assert.ok(names.has('CERTFLOW_TRUST_PROXY') && names.has('DATABASE_URL') && names.has('CERTFLOW_HTTPS_PORT'), [...names].join(' '));
    const missing = [...names].filter((n) => !new RegExp(`\`${n}\``).test(configuration));
    assert.deepEqual(missing, [], 'add these to the environment table of docs/configuration.md');
  });

  it('every key of the configuration file is in docs/configuration.md', () => {
    const configuration = read('docs/configuration.md');
    const keys: string[] = [];
    const unwrap = (s: z.ZodType): z.ZodType => (s instanceof z.ZodOptional ? unwrap(s.unwrap() as z.ZodType) : s);
    const walk = (s: z.ZodType, path: string): void => {
      const t = unwrap(s);
      if (t instanceof z.ZodObject) {
        for (const [k, v] of Object.entries(t.shape as Record<string, z.ZodType>)) walk(v, path ? `${path}.${k}` : k);
      } else if (t instanceof z.ZodArray && unwrap(t.element as z.ZodType) instanceof z.ZodObject)
        walk(t.element as z.ZodType, `${path}[]`);
      else keys.push(path);
    };
    walk(configFileSchema, '');
    assert.ok(keys.includes('est.labels[].allowCertAuth') && keys.length > 100, keys.join(' '));
    const missing = keys.filter((k) => !configuration.includes(`\`${k}\``));
    assert.deepEqual(missing, [], 'add these keys to "Every key" in docs/configuration.md');
    // And the other way round: a key the page names is one the schema has (or a part of one).
    const known = new Set(keys.flatMap((k) => k.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))));
    const sections = Object.keys(configFileSchema.shape);
    const named = [...configuration.matchAll(/`([A-Za-z]+(?:\[\])?(?:\.[A-Za-z0-9]+(?:\[\])?)+)`/g)].map((m) => m[1]!);
    const stale = named.filter((k) => sections.includes(k.split(/[.[]/)[0]!) && !known.has(k) && !known.has(k.replace(/\[\]$/, '')));
    assert.deepEqual(stale, [], 'docs/configuration.md names keys the configuration file no longer has');
  });

  it('every certflow command and each of its options is in docs/cli.md', () => {
    const rows = read('docs/cli.md')
      .split('\n')
      .filter((l) => l.startsWith('| `certflow '));
    const commands: Array<{ path: string; options: string[] }> = [];
    const walk = (c: Command, prefix: string[]): void => {
      for (const sub of c.commands) {
        const path = [...prefix, sub.name()];
        if (sub.commands.length) walk(sub, path);
        else commands.push({ path: path.join(' '), options: sub.options.map((o) => o.long!).filter(Boolean) });
      }
    };
    walk(program(), []);
    assert.ok(commands.some((c) => c.path === 'cert issue') && commands.some((c) => c.path === 'backup recipient set'));
    const missing: string[] = [];
    for (const { path, options } of commands) {
      const row = rows.find((r) => r.startsWith(`| \`certflow ${path}\``) || r.startsWith(`| \`certflow ${path} `));
      if (!row) missing.push(`certflow ${path}`);
      else {
        const first = row.split(' | ')[0]!;
        for (const o of options) if (!new RegExp(`${o}(?![\\w-])`).test(first)) missing.push(`certflow ${path} ${o}`);
      }
    }
    assert.deepEqual(missing, [], 'add these commands / options to the tables of docs/cli.md (first column)');
  });
});
