/**
 * docker-compose.yml as data, for the tests that keep it honest without a Docker engine:
 * its services, and what a service would see in its container (environment variables
 * interpolated as Compose does, container paths of volumes and configs mapped to local ones).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const composeFile = join(fileURLToPath(new URL('../..', import.meta.url)), 'docker-compose.yml');

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  deploy?: { replicas?: number };
  configs?: Array<{ source: string; target: string }>;
  volumes?: string[];
  network_mode?: string;
  depends_on?: Record<string, { condition: string }> | string[];
}

export interface Compose {
  services: Record<string, ComposeService>;
  configs: Record<string, { content: string }>;
}

export function readCompose(): Compose {
  return parse(readFileSync(composeFile, 'utf8'), { merge: true }) as Compose;
}

/**
 * Compose's interpolation of one value: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`
 * from `vars` (an unset or empty variable takes the default; `:?` throws), and `$$` for `$`.
 */
function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}/g, (whole, name: string | undefined, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const set = vars[name!];
    if (set) return set;
    if (op === '?') throw new Error(`docker-compose.yml needs ${name}: ${arg}`);
    return op === '-' ? arg! : '';
  });
}

/**
 * The environment a service's container gets: its variables interpolated from `vars`, and
 * every value that names a container path of `mounts` (container path -> local path, for
 * its volumes and configs) pointed at the local one.
 */
export function serviceEnvironment(
  service: ComposeService,
  vars: Record<string, string | undefined>,
  mounts: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(service.environment ?? {})) env[name] = mapPaths(interpolate(String(value), vars), mounts);
  return env;
}

/** `value` with a leading container path of `mounts` replaced by its local path. */
export function mapPaths(value: string, mounts: Record<string, string>): string {
  for (const [inContainer, local] of Object.entries(mounts)) {
    if (value === inContainer || value.startsWith(`${inContainer}/`)) return local + value.slice(inContainer.length);
  }
  return value;
}

/** Container path of each named volume and config a service mounts (`name:/path[:ro]`, configs' targets). */
export function serviceMounts(service: ComposeService): Array<{ source: string; target: string; kind: 'volume' | 'config' }> {
  return [
    ...(service.volumes ?? []).map((v) => {
      const [source, target] = v.split(':');
      return { source: source!, target: target!, kind: 'volume' as const };
    }),
    ...(service.configs ?? []).map((c) => ({ source: c.source, target: c.target, kind: 'config' as const })),
  ];
}
