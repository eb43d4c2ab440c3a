/**
 * Reads from Temporal's own database (a `certflow cluster` on Postgres), never writes: the
 * server owns that schema. Only what certflow must know before it starts the server.
 */
import type { Queryable } from './pool.ts';

/**
 * The ClusterMetadata message (protobuf, Temporal's persistence API) the server recorded
 * for cluster `name` at its first start, or undefined before that.
 */
export async function clusterMetadata(db: Queryable, name: string): Promise<Uint8Array | undefined> {
  const { rows } = await db.query<{ data: Buffer }>(
    `SELECT data FROM cluster_metadata_info WHERE cluster_name = $1 AND data_encoding = 'Proto3'`,
    [name],
  );
  return rows[0]?.data;
}
