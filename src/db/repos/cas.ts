/** Certificate authorities (table `cas`): written once by the bootstrap, read everywhere. */
import type { Queryable } from '../pool.ts';

/**
 * A CA row never changes once written, so hot paths (signing, certificate downloads) keep
 * what they read, per database handle (a pool), instead of asking again for every request.
 */
const caches = new WeakMap<object, Map<string, CaRow>>();

export type CaRole = 'root' | 'issuing';

export interface CaRow {
  name: string;
  role: CaRole;
  parent: string | null;
  /** Id of the key inside its key store. */
  keyId: string;
  keyAlg: string;
  keyBackend: string;
  subject: string;
  /** Lower-case hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  certDer: Buffer;
  createdAt: Date;
}

export type NewCa = Omit<CaRow, 'createdAt' | 'certDer'> & { certDer: Uint8Array };

interface DbCa {
  name: string;
  role: CaRole;
  parent: string | null;
  key_id: string;
  key_alg: string;
  key_backend: string;
  subject: string;
  serial: string;
  not_before: Date;
  not_after: Date;
  cert_der: Buffer;
  created_at: Date;
}

const COLUMNS = 'name, role, parent, key_id, key_alg, key_backend, subject, serial, not_before, not_after, cert_der, created_at';

function toRow(r: DbCa): CaRow {
  return {
    name: r.name,
    role: r.role,
    parent: r.parent,
    keyId: r.key_id,
    keyAlg: r.key_alg,
    keyBackend: r.key_backend,
    subject: r.subject,
    serial: r.serial,
    notBefore: r.not_before,
    notAfter: r.not_after,
    certDer: r.cert_der,
    createdAt: r.created_at,
  };
}

/**
 * Stores a CA unless one of that name exists. Returns false when it existed: two processes
 * bootstrapping at once must not fail, and the caller re-reads the stored CA.
 */
export async function insert(db: Queryable, ca: NewCa): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO cas (name, role, parent, key_id, key_alg, key_backend, subject, serial, not_before, not_after, cert_der)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (name) DO NOTHING`,
    [
      ca.name,
      ca.role,
      ca.parent,
      ca.keyId,
      ca.keyAlg,
      ca.keyBackend,
      ca.subject,
      ca.serial,
      ca.notBefore,
      ca.notAfter,
      ca.certDer, // pg sends any Uint8Array as bytea
    ],
  );
  return rowCount === 1;
}

export async function get(db: Queryable, name: string): Promise<CaRow | null> {
  const { rows } = await db.query<DbCa>(`SELECT ${COLUMNS} FROM cas WHERE name = $1`, [name]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** get(), remembered per `db` once found. */
export async function getCached(db: Queryable, name: string): Promise<CaRow | null> {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  const hit = cache.get(name);
  if (hit) return hit;
  const row = await get(db, name);
  if (row) cache.set(name, row);
  return row;
}

/** All CAs, roots first, then by name. */
export async function list(db: Queryable): Promise<CaRow[]> {
  const { rows } = await db.query<DbCa>(`SELECT ${COLUMNS} FROM cas ORDER BY role = 'issuing', name`);
  return rows.map(toRow);
}

/**
 * The issuing CA called `name`, or null if there is none (or it is a root). Without a
 * name: the newest issuing CA that is currently valid, the one to use when neither the
 * request nor the configuration names one.
 */
export async function getIssuing(db: Queryable, name?: string): Promise<CaRow | null> {
  const { rows } =
    name === undefined
      ? await db.query<DbCa>(
          `SELECT ${COLUMNS} FROM cas WHERE role = 'issuing' AND not_before <= now() AND not_after > now()
           ORDER BY created_at DESC, name LIMIT 1`,
        )
      : await db.query<DbCa>(`SELECT ${COLUMNS} FROM cas WHERE name = $1 AND role = 'issuing'`, [name]);
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * DER certificates of a CA and its parents, leaf side first: below the root (what a chain
 * file holds), or up to and including it with `includeRoot` (what EST /cacerts sends).
 * A CA missing from the chain ends it early.
 */
export async function issuingChain(
  db: Queryable,
  caName: string,
  opts: { includeRoot?: boolean; cached?: boolean } = {},
): Promise<Buffer[]> {
  const chain: Buffer[] = [];
  for (let name: string | null = caName; name;) {
    const ca: CaRow | null = opts.cached ? await getCached(db, name) : await get(db, name);
    if (!ca || (ca.role === 'root' && !opts.includeRoot)) break;
    chain.push(ca.certDer);
    name = ca.parent;
  }
  return chain;
}

/** issuingChain() from CA rows remembered per `db` (see getCached). */
export function issuingChainCached(db: Queryable, caName: string, opts: { includeRoot?: boolean } = {}): Promise<Buffer[]> {
  return issuingChain(db, caName, { ...opts, cached: true });
}
