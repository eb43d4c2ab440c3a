/**
 * The read model as operators alert on it (the gauges of /metrics): requests by protocol and
 * state, OCSP freshness. Cluster-wide numbers: every server reports the same ones.
 */
import type { Queryable } from '../pool.ts';

/** ACME orders (protocol acme) and EST/CMP/operator requests, by state. */
export async function requestsByState(db: Queryable): Promise<Array<{ protocol: string; state: string; count: number }>> {
  const { rows } = await db.query(
    `SELECT 'acme' AS protocol, status AS state, count(*)::int AS count FROM acme_orders GROUP BY status
     UNION ALL
     SELECT protocol, state, count(*)::int FROM issuance_requests GROUP BY protocol, state`,
  );
  return rows as Array<{ protocol: string; state: string; count: number }>;
}

export interface OcspFreshness {
  /** Unexpired certificates without a current response (none at all, or only expired ones). */
  withoutResponse: number;
  /** The earliest nextUpdate of the newest responses of unexpired certificates (null: none). */
  earliestNextUpdate: Date | null;
  /** The oldest thisUpdate among them: how long ago the stalest response was signed. */
  oldestThisUpdate: Date | null;
}

export async function ocspFreshness(db: Queryable): Promise<OcspFreshness> {
  const { rows } = await db.query(
    `SELECT count(*) FILTER (WHERE o.next_update IS NULL OR o.next_update <= now())::int AS without_response,
            min(o.next_update) AS earliest_next, min(o.this_update) AS oldest_this
       FROM certificates c
       LEFT JOIN LATERAL (SELECT max(r.next_update) AS next_update, max(r.this_update) AS this_update
                            FROM ocsp_responses r WHERE r.serial = c.serial) o ON true
      WHERE c.status <> 'signing' AND c.not_after > now()`,
  );
  const r = rows[0];
  return { withoutResponse: r.without_response, earliestNextUpdate: r.earliest_next, oldestThisUpdate: r.oldest_this };
}
