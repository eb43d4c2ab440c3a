/** Application logs: the tail of the dev stack's log files ($CERTFLOW_HOME/logs/*.log, pino JSON lines). */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { paths } from '../../config/index.ts';
import { CaError } from '../../core/errors.ts';
import type { AdminDeps, ApiRoute } from '../api.ts';
import { badge, html, input, link, query as qs, select, table } from '../html.ts';
import type { Page } from '../pages.ts';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const TAIL_BYTES = 512 * 1024;

async function logFiles(deps: AdminDeps) {
  const dir = paths(deps.config).logDir;
  const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => /^[A-Za-z0-9._-]+\.log$/.test(f)).sort();
  return Promise.all(
    names.map(async (name) => {
      const s = await stat(join(dir, name));
      return { name: name.slice(0, -4), size: s.size, modifiedAt: s.mtime };
    }),
  );
}

export interface LogLine {
  time: string | null;
  level: string;
  component: string | null;
  message: string;
  raw: string;
}

function parse(line: string): LogLine {
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const { time, level, msg, component, pid: _pid, hostname: _h, ...rest } = j;
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return {
      time: typeof time === 'string' ? time : typeof time === 'number' ? new Date(time).toISOString() : null,
      level: LEVELS[Number(level)] ?? String(level ?? 'info'),
      component: (component as string) ?? null,
      message: `${msg ?? ''}${extra}`,
      raw: line,
    };
  } catch {
    return { time: null, level: 'text', component: null, message: line, raw: line };
  }
}

async function tail(deps: AdminDeps, name: string, opts: { lines: number; level?: string; contains?: string }) {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new CaError('malformed', 'bad log name', { rule: 'logs.name' });
  const file = join(paths(deps.config).logDir, `${name}.log`);
  const fh = await open(file, 'r').catch(() => {
    throw new CaError('notFound', `no log "${name}" (logs are files only in the dev stack: ${paths(deps.config).logDir})`, {
      rule: 'logs.unknown',
    });
  });
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let lines = buf.toString('utf8').split('\n').filter(Boolean);
    if (start > 0) lines = lines.slice(1);
    const min = opts.level ? Number(Object.entries(LEVELS).find(([, v]) => v === opts.level)?.[0] ?? 0) : 0;
    const parsed = lines.map(parse).filter((l) => {
      const n = Number(Object.entries(LEVELS).find(([, v]) => v === l.level)?.[0] ?? 30);
      return n >= min && (!opts.contains || l.raw.toLowerCase().includes(opts.contains.toLowerCase()));
    });
    return parsed.slice(-opts.lines).reverse();
  } finally {
    await fh.close();
  }
}

export function logsArea(): { routes: ApiRoute[]; pages: Page[] } {
  const routes: ApiRoute[] = [
    {
      method: 'GET',
      path: '/logs',
      access: 'logs:read',
      tag: 'logs',
      summary: 'The log files of the dev stack',
      handler: async ({ deps }) => logFiles(deps),
    },
    {
      method: 'GET',
      path: '/logs/{name}',
      access: 'logs:read',
      tag: 'logs',
      summary: 'The newest lines of one log, newest first, filtered by minimum level and text',
      query: {
        lines: { type: 'integer', minimum: 1, maximum: 5000 },
        level: { type: 'string', enum: Object.values(LEVELS) },
        contains: { type: 'string', maxLength: 200 },
      },
      handler: async ({ deps, params, query }) =>
        (
          await tail(deps, params.name!, {
            lines: (query.lines as number) ?? 200,
            level: query.level as string,
            contains: query.contains as string,
          })
        ).map(({ raw: _raw, ...l }) => l),
    },
  ];
  const pages: Page[] = [
    {
      path: '/logs',
      access: 'logs:read',
      title: 'Application logs',
      menu: { id: 'logs', label: 'Application logs', group: 'Reports' },
      async render({ deps, query }) {
        const files = await logFiles(deps);
        const name = query.name || files.find((f) => f.name === 'server')?.name || files[0]?.name;
        const lines = name
          ? await tail(deps, name, {
              lines: Number(query.lines) || 200,
              level: query.level || undefined,
              contains: query.contains || undefined,
            })
          : [];
        return html`<p>${files.map((f) => html`${link(`/logs${qs({ name: f.name })}`, f.name)} (${Math.round(f.size / 1024)} KiB) `)}</p>
          ${
            files.length
              ? html`<form class="filters" method="get" action="/logs">
                    ${select(
                      'name',
                      'Log',
                      files.map((f): [string, string] => [f.name, f.name]),
                      name,
                    )}${select('level', 'At least', [['', 'any'], ...Object.values(LEVELS).map((l): [string, string] => [l, l])], query.level)}${input('contains', 'Containing', { value: query.contains })}${input('lines', 'Lines', { type: 'number', value: query.lines ?? '200' })}<button
                      type="submit"
                    >
                      Show
                    </button>
                  </form>
                  ${table(lines, ['Time', 'Level', 'Component', 'Message'], (l) => [l.time, badge(l.level), l.component, l.message], { id: 'log-lines', empty: 'No matching lines.' })}`
              : html`<p class="hint">
                  No log files in ${paths(deps.config).logDir}: outside the dev stack, logs go to each process's standard output (JSON).
                </p>`
          }`;
      },
    },
  ];
  return { routes, pages };
}
