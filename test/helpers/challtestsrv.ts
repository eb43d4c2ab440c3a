/**
 * pebble-challtestsrv (Debian package `pebble`) as the ACME tests' DNS server: certflow's
 * validation authority (CERTFLOW_DNS_RESOLVER) and the clients' DNS-01 checks query it for
 * A, TXT and CAA records, which the tests set through its management API. Its own challenge
 * responders (http-01, https-01, tls-alpn-01) are off: the ACME clients answer challenges.
 *
 * Everything binds to 127.0.0.1 on ports picked free at start. A queries for names without
 * an A record are answered with 127.0.0.1 (the binary's default), AAAA queries with nothing
 * (-defaultIPv6 ""), so that a validator never prefers ::1 where a client listens on IPv4.
 *
 * Management API (pebble's cmd/pebble-challtestsrv, version 2.4): POST with a JSON body to
 *   /add-a, /add-aaaa {"host", "addresses": [...]}   /clear-a, /clear-aaaa {"host"}
 *   /set-txt {"host", "value"} (adds a value: repeated calls keep every value)
 *   /clear-txt {"host"} (removes all values)
 *   /add-caa {"host", "policies": [{"tag", "value"}]} /clear-caa {"host"}
 * Host names are fully qualified (trailing dot); the functions below add it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/core/net.ts';
import { CHALLTESTSRV, requireTool } from './tools.ts';

export interface CaaPolicy {
  tag: 'issue' | 'issuewild' | 'iodef' | string;
  value: string;
}

export interface ChallTestSrv {
  /** 127.0.0.1:<port>, for CERTFLOW_DNS_RESOLVER, lego --dns.resolvers, ... */
  resolver: string;
  dnsPort: number;
  /** http://127.0.0.1:<port> */
  managementUrl: string;
  setA(host: string, ...ips: string[]): Promise<void>;
  clearA(host: string): Promise<void>;
  /** Adds a TXT value to `host` (earlier values stay). */
  setTxt(host: string, value: string): Promise<void>;
  /** Removes every TXT value of `host`. */
  clearTxt(host: string): Promise<void>;
  setCaa(host: string, policies: CaaPolicy[]): Promise<void>;
  clearCaa(host: string): Promise<void>;
  /** A resolver pointed at this server (for tests' own look-ups). */
  dns(): Resolver;
  /** Output of the process so far. */
  log(): string;
  stop(): Promise<void>;
}

const fqdn = (host: string) => (host.endsWith('.') ? host : `${host}.`);

/** A port free for both TCP and UDP on 127.0.0.1 (the DNS server binds both). */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1');
}

/** Thrown when a port chosen free was taken before the server bound it. */
class PortTaken extends Error {}

/**
 * Starts pebble-challtestsrv on free loopback ports. A port found free can still be taken
 * before the server binds it (another test file picking the same one at the same moment):
 * then it starts again on other ports, up to three times.
 */
export async function startChalltestsrv(): Promise<ChallTestSrv> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt === 3) throw e;
    }
  }
}

async function startOnce(): Promise<ChallTestSrv> {
  const bin = requireTool(CHALLTESTSRV);
  const dnsPort = await freeDnsPort();
  const mgmtPort = await freePort();
  const args = [
    '-dns01',
    `127.0.0.1:${dnsPort}`,
    '-management',
    `127.0.0.1:${mgmtPort}`,
    '-http01',
    '',
    '-https01',
    '',
    '-tlsalpn01',
    '',
    '-defaultIPv4',
    '127.0.0.1',
    '-defaultIPv6',
    '',
  ];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.once('error', (e) => (output += `\n[cannot run ${bin}: ${e.message}]`));

  const managementUrl = `http://127.0.0.1:${mgmtPort}`;
  const resolver = `127.0.0.1:${dnsPort}`;
  const dns = () => {
    const r = new Resolver({ timeout: 1000, tries: 2 });
    r.setServers([resolver]);
    return r;
  };
  const stop = async () => {
    if (exited || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };

  async function post(path: string, body: unknown): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${managementUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    } catch (e) {
      throw new Error(`pebble-challtestsrv ${path}: ${(e as Error).message}; its output:\n${output}`, { cause: e });
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`pebble-challtestsrv ${path} ${JSON.stringify(body)}: HTTP ${res.status} ${text}`);
  }

  // Ready when both the management API and the DNS server answer. The binary logs a bind
  // failure but keeps running, so its output is checked too.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`pebble-challtestsrv exited at start:\n${output}`);
    if (/address already in use|bind:/.test(output)) {
      await stop();
      throw new PortTaken(`pebble-challtestsrv could not bind its ports:\n${output}`);
    }
    try {
      await post('/clear-txt', { host: 'ready.challtestsrv.test.' });
      await dns().resolve4('ready.challtestsrv.test');
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`pebble-challtestsrv not ready after 15 s (${(e as Error).message}):\n${output}`, { cause: e });
      }
      await sleep(100);
    }
  }

  return {
    resolver,
    dnsPort,
    managementUrl,
    setA: (host, ...ips) => post('/add-a', { host: fqdn(host), addresses: ips }),
    clearA: (host) => post('/clear-a', { host: fqdn(host) }),
    setTxt: (host, value) => post('/set-txt', { host: fqdn(host), value }),
    clearTxt: (host) => post('/clear-txt', { host: fqdn(host) }),
    setCaa: (host, policies) => post('/add-caa', { host: fqdn(host), policies }),
    clearCaa: (host) => post('/clear-caa', { host: fqdn(host) }),
    dns,
    log: () => output,
    stop,
  };
}
