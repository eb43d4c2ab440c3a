/**
 * The process environment. Settings are read from it in one place, loadConfig
 * (src/config/index.ts, documented in the README's environment table); what else needs the
 * environment takes it from here: the environment handed to child processes, PATH
 * look-ups, and CERTFLOW_DEBUG, which the CLI needs even when the configuration cannot load.
 */
export type Env = Record<string, string | undefined>;

/** The environment of this process (child processes inherit it; look-ups on PATH use it). */
export function processEnv(): NodeJS.ProcessEnv {
  return process.env;
}

/** CERTFLOW_DEBUG: the CLI prints stack traces of errors. */
export function debugEnabled(): boolean {
  return Boolean(process.env.CERTFLOW_DEBUG);
}
