import { createRequire } from 'node:module';
import type * as Pino from 'pino';

export type { Logger } from 'pino';

/**
 * One JSON logger per process (pino). `component` names the process part (server, worker,
 * supervisor, cli) so that dev mode's merged logs stay readable. pino (~30 files) is loaded
 * by the first logger, not at import: most CLI commands never make one.
 */
export function createLogger(component: string, level: string): Pino.Logger {
  const { pino } = createRequire(import.meta.url)('pino') as typeof Pino;
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
