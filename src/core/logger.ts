import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One JSON logger per process (pino). `component` names the process part (server, worker,
 * supervisor, cli) so that dev mode's merged logs stay readable.
 */
export function createLogger(component: string, level: string): Logger {
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
