/**
 * `certflow cluster certs`: the cluster CA's certificates for Temporal's mTLS
 * (src/ca/cluster-tls.ts), issued or renewed as needed, under a cluster-wide lock, each
 * one audited. A process of its own (the supervisor runs it before the Temporal server
 * starts and once a day; docker-compose.yml's temporal-certs service runs it once): like
 * the worker, it opens the CA key store, which the supervisor and the servers never do.
 */
import { chownSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { temporalTlsDir } from '../config/index.ts';
import { ensureClusterTls, type ClusterTlsResult } from '../ca/cluster-tls.ts';
import { createLogger } from '../core/logger.ts';
import { withAdvisoryLock } from '../db/locks.ts';
import { openDatabase } from '../db/open.ts';
import type { Queryable } from '../db/pool.ts';
import { audit } from '../db/repos/audit.ts';
import { openKeyStore } from '../keys/index.ts';

/** ensureClusterTls with every certificate it issues written to the audit log (`cluster-tls.issue`). */
export function ensureAuditedClusterTls(
  args: Omit<Parameters<typeof ensureClusterTls>[0], 'onIssued'> & { db: Queryable },
): Promise<ClusterTlsResult> {
  const { db, ...rest } = args;
  return ensureClusterTls({
    ...rest,
    onIssued: async (purpose, serial, details) => {
      await audit(db, { actor: 'system:cluster', action: 'cluster-tls.issue', object: serial, details: { purpose, ...details } });
    },
  });
}

export async function runClusterCerts(
  config: Config,
  opts: { names: string[]; force: boolean; dir?: string; say: (msg: string) => void; owner?: { uid: number; gid: number } },
): Promise<ClusterTlsResult> {
  const log = createLogger('cluster-certs', 'warn');
  const pool = await openDatabase(config, log);
  try {
    const keys = await openKeyStore(config, { warn: (m) => opts.say(m) });
    try {
      const result = await withAdvisoryLock(pool, 'cluster-tls', () =>
        ensureAuditedClusterTls({
          dir: opts.dir ?? temporalTlsDir(config.home),
          keys,
          keyAlg: config.ca.keyAlg,
          db: pool,
          serverNames: opts.names,
          force: opts.force,
          log: opts.say,
        }),
      );
      if (opts.owner) {
        const { dir, ...files } = result.files;
        for (const f of [dir, ...Object.values(files)]) chownSync(f, opts.owner.uid, opts.owner.gid);
      }
      return result;
    } finally {
      await keys.close().catch(() => {});
    }
  } finally {
    await pool.end().catch(() => {});
  }
}
