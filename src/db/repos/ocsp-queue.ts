/**
 * The OCSP pre-signing queue (table ocsp_queue): the transaction that stores a certificate
 * queues its serial and notifies OCSP_CHANNEL; the worker's signer (activities/ocsp-signer.ts)
 * claims batches, signs them and dequeues them in one transaction.
 */
import type { Queryable } from '../pool.ts';

/** The NOTIFY channel of a queued serial. */
export const OCSP_CHANNEL = 'certflow_ocsp';

/** Queues a just-issued certificate for OCSP signing (inside the transaction that stores it). */
export async function enqueue(tx: Queryable, serial: string): Promise<void> {
  await tx.query(
    `WITH q AS (INSERT INTO ocsp_queue (serial) VALUES ($1) ON CONFLICT (serial) DO NOTHING RETURNING 1) SELECT pg_notify($2, '')`,
    [serial, OCSP_CHANNEL],
  );
}

/** Claims up to `limit` queued serials (oldest first, with the CA key generation that signed each) for this transaction; other signers skip them. */
export async function claim(tx: Queryable, limit: number): Promise<Array<{ serial: string; caName: string; caGeneration: number }>> {
  const { rows } = await tx.query<{ serial: string; ca_name: string; ca_generation: number }>(
    `SELECT q.serial, c.ca_name, c.ca_generation FROM ocsp_queue q JOIN certificates c ON c.serial = q.serial
     ORDER BY q.enqueued_at LIMIT $1 FOR UPDATE OF q SKIP LOCKED`,
    [limit],
  );
  return rows.map((r) => ({ serial: r.serial, caName: r.ca_name, caGeneration: r.ca_generation }));
}

/** Dequeues signed serials. */
export async function remove(tx: Queryable, serials: string[]): Promise<void> {
  if (serials.length) await tx.query('DELETE FROM ocsp_queue WHERE serial = ANY($1)', [serials]);
}
