/**
 * Postgres LISTEN on a dedicated connection, reconnecting with backoff when it drops.
 * Notifications are hints (a cache entry changed, a queue has work): a listener that was
 * disconnected may have missed some, so `onReconnect` tells the caller to resynchronize
 * (clear its cache, look at its queue).
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/logger.ts';

export interface Listener {
  /** True while LISTEN is in effect (notifications can arrive). */
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface ListenOptions {
  url: string;
  channel: string;
  onNotify(payload: string): void;
  /** Called when LISTEN is (re)established and when the connection is lost. */
  onConnectionChange?(connected: boolean): void;
  log: Pick<Logger, 'warn' | 'info'>;
}

export function listen(opts: ListenOptions): Listener {
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  const stop = new AbortController();
  const setConnected = (c: boolean) => {
    if (c === connected) return;
    connected = c;
    opts.onConnectionChange?.(c);
  };

  const loop = async () => {
    for (let delay = 250; !closed; delay = Math.min(delay * 2, 10_000)) {
      const c = new pg.Client({ connectionString: opts.url, application_name: `certflow-listen-${opts.channel}` });
      client = c;
      const lost = new Promise<void>((resolve) => {
        c.on('error', () => resolve());
        c.on('end', () => resolve());
      });
      c.on('notification', (n) => {
        if (n.channel === opts.channel) opts.onNotify(n.payload ?? '');
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(opts.channel)}`);
        delay = 250;
        setConnected(true);
        await lost;
      } catch (e) {
        if (!closed) opts.log.warn({ channel: opts.channel, err: (e as Error).message }, 'Postgres LISTEN failed; retrying');
      }
      setConnected(false);
      await c.end().catch(() => {});
      if (!closed) await sleep(delay, undefined, { signal: stop.signal }).catch(() => {});
    }
  };
  void loop();

  return {
    get connected() {
      return connected;
    },
    async close() {
      closed = true;
      stop.abort();
      setConnected(false);
      await client?.end().catch(() => {});
    },
  };
}

/** NOTIFY inside the caller's transaction: delivered when (and only if) it commits. */
export async function notify(
  db: { query(text: string, values?: unknown[]): Promise<unknown> },
  channel: string,
  payload = '',
): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
}
