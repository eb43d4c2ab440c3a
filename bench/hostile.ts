/**
 * What hostile CMP traffic costs the other users of a certflow server (issue 16 item 3):
 * the latency of ACME directory requests (the victims) on their own, then while
 * `--hostile` (default 50) concurrent senders post CMP messages with password-based MAC at the
 * iteration cap for a registered reference without its secret — the most work a stranger can
 * make the server do per message. Both phases send the same victim requests (`--requests`,
 * at `--victims` concurrency); the attack runs for as long as the second phase lasts.
 *
 *   npm run bench:hostile [-- --requests 400] [--victims 4] [--hostile 50] [--iterations 100000]
 *
 * The server runs with cmp.maxIterations = --iterations. Prints one JSON document on stdout
 * (victims' p50/p99/max and errors for both phases, what the hostile messages were answered);
 * progress goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { generateKeyPairSync } from '../src/pki/keygen.ts';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildIr, failure } from '../src/cmp/client.ts';
import { protectWithMac, type MacChoice } from '../src/pki/cmp/index.ts';
import { percentile, postBytes } from './measure.ts';
import { startBenchStack } from './stack.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '400' },
    victims: { type: 'string', default: '4' },
    hostile: { type: 'string', default: '50' },
    iterations: { type: 'string', default: '100000' },
  },
});
const requests = Number(values.requests);
const victimConcurrency = Number(values.victims);
const hostileSenders = Number(values.hostile);
const iterations = Number(values.iterations);
const progress = (m: string) => process.stderr.write(`${m}\n`);

/** The victims: `requests` ACME directory GETs at `victimConcurrency`. */
async function victims(url: string, ca: string) {
  const agent = new https.Agent({ ca, keepAlive: true, maxSockets: victimConcurrency });
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: victimConcurrency }, async () => {
      while (next++ < requests) {
        const t0 = performance.now();
        await new Promise<void>((resolve) => {
          const req = https.get(url, { agent, signal: AbortSignal.timeout(30_000) }, (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) latencies.push(performance.now() - t0);
              else errors.push(`HTTP ${res.statusCode}`);
              resolve();
            });
          });
          req.on('error', (e) => {
            errors.push(e.message);
            resolve();
          });
        });
      }
    }),
  );
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    requests: latencies.length + errors.length,
    p50ms: r(percentile(latencies, 50)),
    p99ms: r(percentile(latencies, 99)),
    maxMs: r(latencies.at(-1) ?? NaN),
    errors: errors.length,
    firstErrors: [...new Set(errors)].slice(0, 3),
  };
}

/** A MAC-protected ir for `ref` under a secret the server does not hold, at `iterations`. */
function hostileMessage(ref: string, choice: Omit<MacChoice, 'iterations'>): Uint8Array {
  const msg = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=hostile', ref });
  protectWithMac(msg, new Uint8Array(randomBytes(16)), { ...choice, iterations });
  return msg.toDer();
}

async function post(port: number, der: Uint8Array, agent: http.Agent): Promise<string> {
  const r = await postBytes(agent, port, '/.well-known/cmp', 'application/pkixcmp', der);
  return r.status === 200 ? failure(new Uint8Array(r.body)).failInfo.join(',') : (r.error ?? `HTTP ${r.status}`);
}

async function main(): Promise<void> {
  const config = join(tmpdir(), `certflow-bench-hostile-${process.pid}.json`);
  writeFileSync(config, JSON.stringify({ cmp: { maxIterations: iterations } }));
  const stack = await startBenchStack({ env: { CERTFLOW_CONFIG: config } });
  try {
    const add = await stack.cli(['cmp-client', 'add', '--ref', 'known', '--secret', 'the-real-secret-1']);
    if (add.code !== 0) throw new Error(add.stderr);
    const url = `https://localhost:${stack.httpsPort}/acme/directory`;
    progress('victims alone');
    await victims(url, stack.rootPem); // warm-up
    const alone = await victims(url, stack.rootPem);

    const messages = [
      hostileMessage('known', { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1' }),
      hostileMessage('known', { type: 'pbmac1', hash: 'sha256', mac: 'sha256' }),
      hostileMessage('nobody', { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1' }),
    ];
    progress(`victims while ${hostileSenders} senders post MAC messages at ${iterations} iterations`);
    const answers = new Map<string, number>();
    let attacking = true;
    const agent = new http.Agent({ keepAlive: true, maxSockets: hostileSenders });
    const attack = Promise.all(
      Array.from({ length: hostileSenders }, async (_, i) => {
        for (let n = 0; attacking; n++) {
          const a = await post(stack.httpPort, messages[(i + n) % messages.length]!, agent);
          answers.set(a, (answers.get(a) ?? 0) + 1);
        }
      }),
    );
    const underAttack = await victims(url, stack.rootPem);
    attacking = false;
    await attack;
    agent.destroy();
    process.stdout.write(
      `${JSON.stringify(
        {
          machine: { cpus: cpus().length, loadavg: loadavg() },
          iterations,
          hostileSenders,
          victims: { path: '/acme/directory', concurrency: victimConcurrency, alone, underAttack },
          hostileAnswers: Object.fromEntries(answers),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await stack.stop();
  }
}

await main();
process.exit(0);
