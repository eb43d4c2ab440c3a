import { readFileSync } from 'node:fs';

/** certflow's version (package.json), for the OpenAPI document and backups. */
export function certflowVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
