import type { Command } from 'commander';
import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import { printJson, table } from './output.ts';

/** What subcommand modules get from main.ts: global options, a database pool, output helpers. */
export interface CliContext {
  json(): boolean;
  withPool<T>(fn: (pool: Pool, config: Config) => Promise<T>): Promise<T>;
  say(msg: string): void;
  printJson: typeof printJson;
  table: typeof table;
}

export function cliContext(root: Command, withPool: CliContext['withPool'], say: (msg: string) => void): CliContext {
  return { json: () => Boolean(root.opts<{ json?: boolean }>().json), withPool, say, printJson, table };
}
