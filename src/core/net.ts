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
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it for a listener we
 * close at once. Another process may take it before the caller binds it; the launchers
 * accept that small race because every user of this (tests, dev stack) runs on one machine.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return bindOnce(host, 0);
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
