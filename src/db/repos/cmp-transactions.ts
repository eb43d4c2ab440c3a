/**
 * The message log of CMP transactions (table `cmp_transactions`): per transactionID, the
 * latest request (its senderNonce and hash) and the answer given to it. A retried request
 * gets the stored answer; any other request must carry the latest answer's senderNonce as
 * its recipNonce. Updates are compare-and-set, so two servers answering the same retried
 * request at once store one answer and both send it.
 */
import type { Queryable } from '../pool.ts';

export interface CmpTransactionRow {
  transactionId: Buffer;
  alias: string;
  bodyType: string;
  client: string;
  protection: 'mac' | 'signature';
  requestId: string | null;
  closed: boolean;
  lastRequestNonce: Buffer;
  lastRequestHash: Buffer;
  lastResponse: Buffer | null;
  lastSenderNonce: Buffer | null;
  createdAt: Date;
  updatedAt: Date;
}

interface DbRow {
  transaction_id: Buffer;
  alias: string;
  body_type: string;
  client: string;
  protection: 'mac' | 'signature';
  request_id: string | null;
  closed: boolean;
  last_request_nonce: Buffer;
  last_request_hash: Buffer;
  last_response: Buffer | null;
  last_sender_nonce: Buffer | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'transaction_id, alias, body_type, client, protection, request_id, closed, last_request_nonce, last_request_hash, last_response, last_sender_nonce, created_at, updated_at';

function toRow(r: DbRow): CmpTransactionRow {
  return {
    transactionId: r.transaction_id,
    alias: r.alias,
    bodyType: r.body_type,
    client: r.client,
    protection: r.protection,
    requestId: r.request_id,
    closed: r.closed,
    lastRequestNonce: r.last_request_nonce,
    lastRequestHash: r.last_request_hash,
    lastResponse: r.last_response,
    lastSenderNonce: r.last_sender_nonce,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function get(db: Queryable, transactionId: Uint8Array): Promise<CmpTransactionRow | null> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM cmp_transactions WHERE transaction_id = $1`, [transactionId]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Opens a transaction for its first request; null when the transactionID is taken. */
export async function open(
  db: Queryable,
  t: {
    transactionId: Uint8Array;
    alias: string;
    bodyType: string;
    client: string;
    protection: 'mac' | 'signature';
    requestId?: string;
    requestNonce: Uint8Array;
    requestHash: Uint8Array;
  },
): Promise<CmpTransactionRow | null> {
  const { rows } = await db.query<DbRow>(
    `INSERT INTO cmp_transactions (transaction_id, alias, body_type, client, protection, request_id, last_request_nonce, last_request_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT DO NOTHING
     RETURNING ${COLUMNS}`,
    [t.transactionId, t.alias, t.bodyType, t.client, t.protection, t.requestId ?? null, t.requestNonce, t.requestHash],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * Records the next request of a transaction (before it is answered): only when the
 * transaction's latest answer is the one the request replies to (compare-and-set on
 * last_sender_nonce). False when another request got there first.
 */
export async function advance(
  db: Queryable,
  transactionId: Uint8Array,
  expectedSenderNonce: Uint8Array,
  request: { nonce: Uint8Array; hash: Uint8Array },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE cmp_transactions
     SET last_request_nonce = $3, last_request_hash = $4, last_response = NULL, last_sender_nonce = NULL, updated_at = now()
     WHERE transaction_id = $1 AND last_sender_nonce = $2 AND NOT closed`,
    [transactionId, expectedSenderNonce, request.nonce, request.hash],
  );
  return rowCount === 1;
}

/**
 * Stores the answer to the latest request (first answer wins) and returns the stored one.
 * `close` marks the transaction finished (pkiconf, rp, genp, error, implicit confirmation).
 */
export async function answer(
  db: Queryable,
  transactionId: Uint8Array,
  requestHash: Uint8Array,
  response: { der: Uint8Array; senderNonce: Uint8Array; close: boolean },
): Promise<Buffer | null> {
  const { rows } = await db.query<{ last_response: Buffer }>(
    `UPDATE cmp_transactions
     SET last_response = $3, last_sender_nonce = $4, closed = closed OR $5, updated_at = now()
     WHERE transaction_id = $1 AND last_request_hash = $2 AND last_response IS NULL
     RETURNING last_response`,
    [transactionId, requestHash, response.der, response.senderNonce, response.close],
  );
  if (rows[0]) return rows[0].last_response;
  const stored = await get(db, transactionId);
  return stored && stored.lastRequestHash.equals(Buffer.from(requestHash)) ? stored.lastResponse : null;
}
