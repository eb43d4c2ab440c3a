/**
 * A TCP load balancer on loopback, as a production cluster has in front of its servers:
 * each new connection goes to the next backend (round robin); a backend that refuses the
 * connection (killed, restarting) is skipped for the next one, like HAProxy's redispatch.
 * TLS passes through untouched, so clients see the servers' own certificates.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface Balancer {
  port: number;
  /** Connections handed to each backend so far. */
  counts: number[];
  close(): Promise<void>;
}

export async function startBalancer(backends: number[], host = '127.0.0.1'): Promise<Balancer> {
  const counts = backends.map(() => 0);
  const open = new Set<Socket>();
  let next = 0;
  const server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    const tryBackend = (left: number) => {
      const i = next++ % backends.length;
      const upstream = connect({ host, port: backends[i]! });
      open.add(upstream);
      upstream.once('close', () => open.delete(upstream));
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        counts[i]!++;
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => {
        upstream.destroy();
        if (!connected && left > 1 && !client.destroyed) tryBackend(left - 1);
        else client.destroy();
      });
      client.once('close', () => upstream.destroy());
    };
    tryBackend(backends.length);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
