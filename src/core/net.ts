import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { CaError } from './errors.ts';

/** Binds host:port for a moment; resolves with the bound port (the kernel's pick for port 0). */
function bindOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close((err) => (err || !bound ? reject(err ?? new Error('no port assigned')) : resolve(bound)));
    });
  });
}

/**
 * A TCP port on `host` that was free a moment ago, for a listener the caller starts next.
 * Picked at random below the kernel's ephemeral range (ephemeralPortStart()), not by the
 * kernel (a port-0 listener gets a port from that range): the kernel hands the ports of
 * that range to every outgoing connection as its source port, so a port it picked and we
 * released could be taken by some process's next connection before the caller binds it
 * (seen as EADDRINUSE when several test files run at once). Below the range only another
 * caller of this function can take it, with a chance of about 1 in 20,000.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return freePortRange(1, { host });
}

/** The first port of the kernel's ephemeral range (Linux: ip_local_port_range; 32768 elsewhere or when unreadable). */
function ephemeralPortStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return first > 20_000 ? first : 32768;
  } catch {
    return 32768;
  }
}

/**
 * Fails with a 'conflict' naming the port when something listens on host:port already.
 * The launchers check this before spawning: otherwise a left-over server on the port would
 * answer the readiness probe and pass for the one just started.
 */
export async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  try {
    await bindOnce(host, port);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CaError(
      'conflict',
      code === 'EADDRINUSE'
        ? `cannot start ${what}: ${host}:${port} is already in use (a server left running?)`
        : `cannot start ${what} on ${host}:${port}: ${(e as Error).message}`,
      { details: { host, port }, cause: e },
    );
  }
}

/**
 * The first of `count` consecutive TCP ports on `host` that were all free a moment ago (for
 * a server that takes a block of ports, like the Temporal server or a cluster's listeners).
 * Random blocks from 10000 up are tried, ending below `below` (default: the start of the
 * kernel's ephemeral range, whose ports any outgoing connection may take; see freePort()).
 */
export async function freePortRange(count: number, opts: { host?: string; below?: number } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1';
  const below = Math.min(opts.below ?? Infinity, ephemeralPortStart());
  const isFree = (p: number) =>
    bindOnce(host, p).then(
      () => true,
      () => false,
    );
  for (let tries = 0; tries < 100; tries++) {
    const first = 10_000 + Math.floor(Math.random() * (below - count - 10_000));
    let free = true;
    for (let p = first; p < first + count && free; p++) free = await isFree(p);
    if (free) return first;
  }
  throw new CaError('unavailable', `no ${count} consecutive free ports on ${host}`);
}
