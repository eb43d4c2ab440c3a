/**
 * OCSP pre-signing off the issuance path. The transaction that stores a certificate puts
 * its serial into ocsp_queue and sends a NOTIFY; every worker that holds CA keys runs this
 * signer, which wakes on the notification (and every few seconds regardless, for
 * notifications missed while disconnected), claims queued serials with FOR UPDATE SKIP
 * LOCKED (so two workers never sign the same one), signs their OCSP responses and removes
 * them from the queue in the same transaction. A response is available moments after the
 * certificate; a signer that dies mid-batch leaves the batch queued for the next one.
 */
import type { PoolClient } from 'pg';
import type { Logger } from '../src/core/logger.ts';
import { listen } from '../src/db/listen.ts';
import { withTransaction } from '../src/db/pool.ts';
import { signingKey, signOcspFor } from './revocation.ts';
import type { SigningDeps } from './signing.ts';

export const OCSP_CHANNEL = 'certflow_ocsp';
const BATCH = 50;
const SWEEP_MS = 5000;

/** Queues a just-issued certificate for OCSP signing (inside the transaction that stores it). */
export async function enqueueOcsp(tx: PoolClient, serial: string): Promise<void> {
  await tx.query(
    `WITH q AS (INSERT INTO ocsp_queue (serial) VALUES ($1) ON CONFLICT (serial) DO NOTHING RETURNING 1) SELECT pg_notify($2, '')`,
    [serial, OCSP_CHANNEL],
  );
}

export interface OcspSigner {
  /** Stops listening; waits for a batch under way. */
  close(): Promise<void>;
}

export function startOcspSigner(deps: SigningDeps & { databaseUrl: string; log: Logger }): OcspSigner {
  const { pool, log } = deps;
  let running: Promise<number> | undefined;
  let again = false;
  let closed = false;

  /** One batch in one transaction: claim, sign, dequeue. */
  const batch = () =>
    withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<{ serial: string; ca_name: string; ca_generation: number }>(
        `SELECT q.serial, c.ca_name, c.ca_generation FROM ocsp_queue q JOIN certificates c ON c.serial = q.serial
         ORDER BY q.enqueued_at LIMIT $1 FOR UPDATE OF q SKIP LOCKED`,
        [BATCH],
      );
      const byKey = new Map<string, string[]>();
      for (const r of rows)
        byKey.set(`${r.ca_generation}:${r.ca_name}`, [...(byKey.get(`${r.ca_generation}:${r.ca_name}`) ?? []), r.serial]);
      for (const [key, serials] of byKey) {
        const [generation, caName] = [Number(key.slice(0, key.indexOf(':'))), key.slice(key.indexOf(':') + 1)];
        await signOcspFor(deps, await signingKey(pool, caName, generation), serials);
      }
      if (rows.length) await tx.query('DELETE FROM ocsp_queue WHERE serial = ANY($1)', [rows.map((r) => r.serial)]);
      return rows.length;
    });

  const drain = async (): Promise<number> => {
    let total = 0;
    for (let n = BATCH; n === BATCH && !closed;) {
      n = await batch();
      total += n;
    }
    return total;
  };

  /** Runs drain(); a kick while it runs makes it run once more afterwards. */
  const kick = (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        try {
          total += await drain();
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'OCSP pre-signing failed; the certificates stay queued');
          break;
        }
      } while (again && !closed);
      return total;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const listener = listen({
    url: deps.databaseUrl,
    channel: OCSP_CHANNEL,
    onNotify: () => void kick(),
    onConnectionChange: (connected) => {
      if (connected) void kick();
    },
    log,
  });
  const sweep = setInterval(() => void kick(), SWEEP_MS);
  sweep.unref();

  return {
    async close() {
      closed = true;
      clearInterval(sweep);
      await listener.close();
      await running?.catch(() => {});
    },
  };
}
