/**
 * OCSP pre-signing off the issuance path. The transaction that stores a certificate puts
 * its serial into ocsp_queue and sends a NOTIFY; every worker that holds CA keys runs this
 * signer, which wakes on the notification (and every few seconds regardless, for
 * notifications missed while disconnected), claims queued serials with FOR UPDATE SKIP
 * LOCKED (so two workers never sign the same one), signs their OCSP responses and removes
 * them from the queue in the same transaction. A response is available moments after the
 * certificate; a signer that dies mid-batch leaves the batch queued for the next one.
 */
import type { Logger } from '../src/core/logger.ts';
import { listen } from '../src/db/listen.ts';
import { withTransaction } from '../src/db/pool.ts';
import * as ocspQueue from '../src/db/repos/ocsp-queue.ts';
import { signingKey, signOcspFor } from './revocation.ts';
import type { SigningDeps } from './signing.ts';

const BATCH = 50;
const SWEEP_MS = 5000;

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
      const rows = await ocspQueue.claim(tx, BATCH);
      // Each certificate's OCSP response is signed by the key generation that issued it.
      const byKey = new Map<string, { caName: string; generation: number; serials: string[] }>();
      for (const r of rows) {
        const k = `${r.caGeneration}:${r.caName}`;
        const group = byKey.get(k) ?? { caName: r.caName, generation: r.caGeneration, serials: [] };
        group.serials.push(r.serial);
        byKey.set(k, group);
      }
      for (const g of byKey.values()) await signOcspFor(deps, await signingKey(pool, g.caName, g.generation), g.serials);
      await ocspQueue.remove(
        tx,
        rows.map((r) => r.serial),
      );
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
    channel: ocspQueue.OCSP_CHANNEL,
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
