/**
 * The Temporal UI server of `certflow cluster` (and of docker-compose.yml's temporal-ui
 * service): the Go program github.com/temporalio/ui-server/v2 (built by server-build.ts),
 * listening on loopback only, under the public path /temporal. Operators reach it through
 * the console's listener (src/admin/temporal-ui-proxy.ts), which lets only logged-in users
 * with the right role through; nothing else can reach it.
 *
 * Its config file is rendered here, for the cluster and for docker-compose.yml alike
 * (test/unit/compose.test.ts compares them).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnLogged, logTail, type ChildHandle } from '../core/child.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { assertPortFree } from '../core/net.ts';
import { TEMPORAL_UI_PATH } from '../config/index.ts';
import type { TemporalUiBinary } from './server-build.ts';

/**
 * Actions the Temporal UI offers that change a request behind certflow's back: starting
 * workflows (an enrollment with any CSR, a key recovery), signals, Updates (approve,
 * retry), resets, batch operations and activity commands (completing a signing activity
 * by hand). They are disabled in the UI's config and refused by the console's proxy for
 * every role; certflow's own commands and console do them with their checks and audit.
 * What remains — cancel, terminate, pause — is for the roles that may act on requests.
 */
const TEMPORAL_UI_DISABLED_ACTIONS = [
  'startWorkflowDisabled',
  'batchActionsDisabled',
  'workflowSignalDisabled',
  'workflowUpdateDisabled',
  'workflowResetDisabled',
  'activityCommandsDisabled',
] as const;

export interface TemporalUiTls {
  /** CA certificate(s) that verify the frontend's certificate. */
  caFile: string;
  /** The UI server's client certificate and key (mTLS to the frontend). */
  certFile: string;
  keyFile: string;
  /** The name the frontend's certificate is checked for. */
  serverName: string;
}

export interface TemporalUiConfig {
  /** host:port of the Temporal frontend. */
  temporalAddress: string;
  /** Address the UI server listens on: loopback (or, in a container, its shared loopback). */
  host: string;
  port: number;
  namespace: string;
  tls?: TemporalUiTls;
}

const q = (s: string) => JSON.stringify(s);

/** The UI server's config file (YAML; JSON strings are valid YAML scalars). */
export function renderTemporalUiConfig(c: TemporalUiConfig): string {
  const lines = [
    '# Written by certflow (src/temporal/ui-server.ts): the Temporal UI behind the console at /temporal/.',
    `temporalGrpcAddress: ${q(c.temporalAddress)}`,
    `host: ${q(c.host)}`,
    `port: ${c.port}`,
    `publicPath: ${q(TEMPORAL_UI_PATH)}`,
    'enableUi: true',
    `defaultNamespace: ${q(c.namespace)}`,
    // No request to temporal.io from the operators' browsers.
    'disableNewsFetch: true',
    ...TEMPORAL_UI_DISABLED_ACTIONS.map((a) => `${a}: true`),
    'cors:',
    // Same origin only: the console's listener is the only way in.
    '  allowOrigins: []',
    '  cookieInsecure: false',
  ];
  if (c.tls) {
    lines.push(
      'tls:',
      `  caFile: ${q(c.tls.caFile)}`,
      `  certFile: ${q(c.tls.certFile)}`,
      `  keyFile: ${q(c.tls.keyFile)}`,
      `  serverName: ${q(c.tls.serverName)}`,
      '  enableHostVerification: true',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The environment name the UI server loads its config as (<configDir>/<env>.yaml). */
const CONFIG_ENV = 'certflow';

/** Writes <dir>/config/certflow.yaml; returns the UI server's arguments. */
async function writeTemporalUiConfig(dir: string, c: TemporalUiConfig): Promise<string[]> {
  mkdirSync(join(dir, 'config'), { recursive: true });
  await writeFileAtomic(join(dir, 'config', `${CONFIG_ENV}.yaml`), renderTemporalUiConfig(c));
  return ['--root', dir, '--config', 'config', '--env', CONFIG_ENV, 'start'];
}

/** The URL the console proxies /temporal/ to. */
export function temporalUiUpstream(c: Pick<TemporalUiConfig, 'host' | 'port'>): string {
  return `http://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
}

export interface TemporalUiHandle extends ChildHandle {
  /** Where the console proxies to: http://127.0.0.1:<port> (its paths start with /temporal). */
  upstream: string;
}

/** Starts the UI server and waits until it answers its health check. */
export async function spawnTemporalUiServer(opts: {
  binary: TemporalUiBinary;
  config: TemporalUiConfig;
  /** Where config/certflow.yaml is written. */
  dir: string;
  logFile: string;
  timeoutMs?: number;
}): Promise<TemporalUiHandle> {
  await assertPortFree(opts.config.host, opts.config.port, 'the Temporal UI server');
  const args = await writeTemporalUiConfig(opts.dir, opts.config);
  const child = spawnLogged(opts.binary.uiServer, args, { logFile: opts.logFile });
  const upstream = temporalUiUpstream(opts.config);
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let exitCode: number | null | undefined;
  void child.exited.then((code) => (exitCode = code));
  let last: unknown;
  while (Date.now() < deadline && exitCode === undefined) {
    try {
      const r = await fetch(`${upstream}${TEMPORAL_UI_PATH}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return { ...child, upstream };
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  await child.stop(5000);
  throw new CaError(
    'unavailable',
    `the Temporal UI server did not start on ${upstream}: ${exitCode !== undefined ? `exited with code ${exitCode}` : errorMessage(last)}\n` +
      `--- ${opts.logFile} (end) ---\n${await logTail(opts.logFile, 3000)}`,
  );
}
