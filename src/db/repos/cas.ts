/**
 * Certificate authorities (tables `cas` and `ca_keys`). A CA is a name with a parent and a
 * status; its keys and certificates are generations (a rollover adds one). Issuance uses
 * the active generation: the newest one whose activate_at has come. A generation's
 * certificate and key never change once stored, so hot paths (signing, chains of issued
 * certificates) keep what they read per database handle; what changes (status, which
 * generation is active) is read fresh.
 */
import type { Queryable } from '../pool.ts';

export type CaRole = 'root' | 'issuing';
export type CaStatus = 'pending' | 'active' | 'revoked';
export type KeyBackendName = 'software' | 'pkcs11' | 'none';

/** One generation of a CA: its key and (once it exists) its certificate. */
export interface CaKeyRow {
  caName: string;
  generation: number;
  /** The parent's generation that signed this certificate (null: self-signed or signed outside certflow). */
  parentGeneration: number | null;
  /** Id of the key inside its key store ('' when certflow holds no key). */
  keyId: string;
  keyAlg: string;
  keyBackend: KeyBackendName;
  spki: Buffer | null;
  subject: string;
  serial: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  certDer: Buffer | null;
  tbsDer: Buffer | null;
  csrDer: Buffer | null;
  activateAt: Date;
  newWithOld: Buffer | null;
  oldWithNew: Buffer | null;
  createdAt: Date;
}

/** A generation whose certificate exists. */
export type CertifiedKey = CaKeyRow & { serial: string; notBefore: Date; notAfter: Date; certDer: Buffer };

/** A CA with the fields of its active generation (the shape every reader of a CA uses). */
export interface CaRow {
  name: string;
  role: CaRole;
  parent: string | null;
  status: CaStatus;
  /** certflow knows this CA (for chains) but holds no key of it: an outside root. */
  external: boolean;
  revokedAt: Date | null;
  revocationReason: string | null;
  crlProfile: string | null;
  /** The active generation. */
  generation: number;
  parentGeneration: number | null;
  keyId: string;
  keyAlg: string;
  keyBackend: KeyBackendName;
  subject: string;
  /** Lower-case hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  certDer: Buffer;
  activateAt: Date;
  createdAt: Date;
}

/** What the bootstrap, creation and import store for a CA's first generation. */
export interface NewCa {
  name: string;
  role: CaRole;
  parent: string | null;
  parentGeneration?: number | null;
  keyId: string;
  keyAlg: string;
  keyBackend: KeyBackendName;
  subject: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  certDer: Uint8Array;
  external?: boolean;
  status?: CaStatus;
  createdByWorkflow?: string;
  crlProfile?: string | null;
}

interface DbKey {
  ca_name: string;
  generation: number;
  parent_generation: number | null;
  key_id: string;
  key_alg: string;
  key_backend: KeyBackendName;
  spki: Buffer | null;
  subject: string;
  serial: string | null;
  not_before: Date | null;
  not_after: Date | null;
  cert_der: Buffer | null;
  tbs_der: Buffer | null;
  csr_der: Buffer | null;
  activate_at: Date;
  new_with_old: Buffer | null;
  old_with_new: Buffer | null;
  created_at: Date;
}

interface DbCa {
  name: string;
  role: CaRole;
  parent: string | null;
  status: CaStatus;
  external: boolean;
  revoked_at: Date | null;
  revocation_reason: string | null;
  crl_profile: string | null;
  created_at: Date;
}

const KEY_COLUMN_NAMES = [
  'ca_name',
  'generation',
  'parent_generation',
  'key_id',
  'key_alg',
  'key_backend',
  'spki',
  'subject',
  'serial',
  'not_before',
  'not_after',
  'cert_der',
  'tbs_der',
  'csr_der',
  'activate_at',
  'new_with_old',
  'old_with_new',
  'created_at',
];
const keyColumns = (alias: string) => KEY_COLUMN_NAMES.map((column) => `${alias}.${column}`).join(', ');
const KEY_COLUMNS = keyColumns('k');
const CA_COLUMNS = 'c.name, c.role, c.parent, c.status, c.external, c.revoked_at, c.revocation_reason, c.crl_profile, c.created_at';

/**
 * The active generation of CA `c`: the newest certified one whose activate_at has come, or
 * (when none has come yet) the oldest certified one. Its columns are named: the pool never
 * prepares a text with `SELECT *`, and these statements run for every issuance.
 */
const ACTIVE_KEY = `LEFT JOIN LATERAL (
    SELECT ${keyColumns('x')} FROM ca_keys x WHERE x.ca_name = c.name AND x.cert_der IS NOT NULL
    ORDER BY (x.activate_at <= now()) DESC, CASE WHEN x.activate_at <= now() THEN -x.generation ELSE x.generation END
    LIMIT 1) k ON true`;

function toKey(r: DbKey): CaKeyRow {
  return {
    caName: r.ca_name,
    generation: r.generation,
    parentGeneration: r.parent_generation,
    keyId: r.key_id,
    keyAlg: r.key_alg,
    keyBackend: r.key_backend,
    spki: r.spki,
    subject: r.subject,
    serial: r.serial,
    notBefore: r.not_before,
    notAfter: r.not_after,
    certDer: r.cert_der,
    tbsDer: r.tbs_der,
    csrDer: r.csr_der,
    activateAt: r.activate_at,
    newWithOld: r.new_with_old,
    oldWithNew: r.old_with_new,
    createdAt: r.created_at,
  };
}

function toRow(r: DbCa & DbKey): CaRow {
  const k = toKey(r) as CertifiedKey;
  return {
    name: r.name,
    role: r.role,
    parent: r.parent,
    status: r.status,
    external: r.external,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
    crlProfile: r.crl_profile,
    generation: k.generation,
    parentGeneration: k.parentGeneration,
    keyId: k.keyId,
    keyAlg: k.keyAlg,
    keyBackend: k.keyBackend,
    subject: k.subject,
    serial: k.serial,
    notBefore: k.notBefore,
    notAfter: k.notAfter,
    certDer: k.certDer,
    activateAt: k.activateAt,
    createdAt: r.created_at,
  };
}

/**
 * Stores a CA with its first generation unless a CA of that name exists. Returns false
 * when it existed: two processes bootstrapping at once must not fail, and the caller
 * re-reads the stored CA.
 */
export async function insert(db: Queryable, ca: NewCa): Promise<boolean> {
  const { rowCount } = await db.query(
    `WITH c AS (
       INSERT INTO cas (name, role, parent, status, external, created_by_workflow, crl_profile) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (name) DO NOTHING RETURNING name)
     INSERT INTO ca_keys (ca_name, generation, parent_generation, key_id, key_alg, key_backend, subject, serial, not_before, not_after, cert_der)
     SELECT name, 1, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM c`,
    [
      ca.name,
      ca.role,
      ca.parent,
      ca.status ?? 'active',
      ca.external ?? false,
      ca.createdByWorkflow ?? null,
      ca.crlProfile ?? null,
      ca.parent ? (ca.parentGeneration ?? 1) : null,
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

/** A CA with its active generation; null when there is none or it has no certificate yet (pending). */
export async function get(db: Queryable, name: string): Promise<CaRow | null> {
  const { rows } = await db.query<DbCa & DbKey>(
    `SELECT ${CA_COLUMNS}, ${KEY_COLUMNS} FROM cas c ${ACTIVE_KEY} WHERE c.name = $1 AND k.ca_name IS NOT NULL`,
    [name],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/** All CAs that have a certificate (pending ones are in listPending), roots first, then by name. */
export async function list(db: Queryable): Promise<CaRow[]> {
  const { rows } = await db.query<DbCa & DbKey>(
    `SELECT ${CA_COLUMNS}, ${KEY_COLUMNS} FROM cas c ${ACTIVE_KEY} WHERE k.ca_name IS NOT NULL ORDER BY c.role = 'issuing', c.name`,
  );
  return rows.map(toRow);
}

/** The CA's own row (any status, pending included), without a generation. */
export async function getEntry(
  db: Queryable,
  name: string,
): Promise<{
  name: string;
  role: CaRole;
  parent: string | null;
  status: CaStatus;
  external: boolean;
  createdByWorkflow: string | null;
  revokedAt: Date | null;
  revocationReason: string | null;
  crlProfile: string | null;
} | null> {
  const { rows } = await db.query(
    `SELECT name, role, parent, status, external, created_by_workflow, revoked_at, revocation_reason, crl_profile FROM cas WHERE name = $1`,
    [name],
  );
  const r = rows[0];
  return r
    ? {
        name: r.name,
        role: r.role,
        parent: r.parent,
        status: r.status,
        external: r.external,
        createdByWorkflow: r.created_by_workflow,
        revokedAt: r.revoked_at,
        revocationReason: r.revocation_reason,
        crlProfile: r.crl_profile,
      }
    : null;
}

/** Every generation of a CA, oldest first. */
export async function keys(db: Queryable, name: string): Promise<CaKeyRow[]> {
  const { rows } = await db.query<DbKey>(`SELECT ${KEY_COLUMNS} FROM ca_keys k WHERE k.ca_name = $1 ORDER BY k.generation`, [name]);
  return rows.map(toKey);
}

/** Every certified generation of every CA (for OCSP issuer matching, CRL refresh, expiry). */
export async function allCertifiedKeys(db: Queryable): Promise<CertifiedKey[]> {
  const { rows } = await db.query<DbKey>(
    `SELECT ${KEY_COLUMNS} FROM ca_keys k WHERE k.cert_der IS NOT NULL ORDER BY k.ca_name, k.generation`,
  );
  return rows.map(toKey) as CertifiedKey[];
}

/** One generation of a CA, fresh from the database. */
export async function getKey(db: Queryable, name: string, generation: number): Promise<CaKeyRow | null> {
  const { rows } = await db.query<DbKey>(`SELECT ${KEY_COLUMNS} FROM ca_keys k WHERE k.ca_name = $1 AND k.generation = $2`, [
    name,
    generation,
  ]);
  return rows[0] ? toKey(rows[0]) : null;
}

const keyCaches = new WeakMap<object, Map<string, CertifiedKey>>();

/** A certified generation, remembered per `db` (its certificate and key never change once certflow holds the key). */
export async function getKeyCached(db: Queryable, name: string, generation: number): Promise<CertifiedKey | null> {
  let cache = keyCaches.get(db);
  if (!cache) keyCaches.set(db, (cache = new Map()));
  const id = `${generation}:${name}`;
  const hit = cache.get(id);
  if (hit) return hit;
  const row = await getKey(db, name, generation);
  if (!row?.certDer) return null;
  // An outside CA's generation may still get its key (`ca import` of its certificate with the key).
  if (row.keyBackend === 'none') return row as CertifiedKey;
  if (cache.size > 256) cache.clear();
  cache.set(id, row as CertifiedKey);
  return row as CertifiedKey;
}

/**
 * The issuing CA called `name`, or null if there is none (or it is a root). Without a
 * name: the newest issuing CA that is currently valid and active, the one to use when
 * neither the request nor the configuration names one.
 */
export async function getIssuing(db: Queryable, name?: string): Promise<CaRow | null> {
  const { rows } =
    name === undefined
      ? await db.query<DbCa & DbKey>(
          `SELECT ${CA_COLUMNS}, ${KEY_COLUMNS} FROM cas c ${ACTIVE_KEY}
           WHERE c.role = 'issuing' AND c.status = 'active' AND NOT c.external AND k.not_before <= now() AND k.not_after > now()
           ORDER BY c.created_at DESC, c.name LIMIT 1`,
        )
      : await db.query<DbCa & DbKey>(
          `SELECT ${CA_COLUMNS}, ${KEY_COLUMNS} FROM cas c ${ACTIVE_KEY} WHERE c.name = $1 AND c.role = 'issuing' AND k.ca_name IS NOT NULL`,
          [name],
        );
  return rows[0] ? toRow(rows[0]) : null;
}

/** One step of a chain: a CA generation and its certificate. */
export interface ChainLink {
  name: string;
  generation: number;
  role: CaRole;
  certDer: Buffer;
}

/**
 * A CA generation and its parents up to the root, leaf side first: each parent is the
 * generation that signed the certificate below it. `generation` defaults to the active
 * one. A CA missing from the chain ends it early.
 */
export async function chainPath(db: Queryable, caName: string, opts: { cached?: boolean; generation?: number } = {}): Promise<ChainLink[]> {
  const path: ChainLink[] = [];
  let generation = opts.generation ?? (await get(db, caName))?.generation;
  for (let name: string | null = caName; name && generation !== undefined && path.length < 16;) {
    const [entry, key]: [Awaited<ReturnType<typeof roleOf>>, CaKeyRow | null] = await Promise.all([
      roleOf(db, name),
      opts.cached ? getKeyCached(db, name, generation) : getKey(db, name, generation),
    ]);
    if (!entry || !key?.certDer) break;
    path.push({ name, generation, role: entry.role, certDer: key.certDer });
    if (entry.role === 'root') break;
    name = entry.parent;
    generation = key.parentGeneration ?? (name ? 1 : undefined);
  }
  return path;
}

/**
 * DER certificates of a CA and its parents, leaf side first: below the root (what a chain
 * file holds), or up to and including it with `includeRoot` (what EST /cacerts sends).
 * `generation` picks the CA's generation (default: the active one).
 */
export async function issuingChain(
  db: Queryable,
  caName: string,
  opts: { includeRoot?: boolean; cached?: boolean; generation?: number } = {},
): Promise<Buffer[]> {
  const path = await chainPath(db, caName, opts);
  return path.filter((l) => opts.includeRoot || l.role !== 'root').map((l) => l.certDer);
}

/** A root key rollover (RFC 9810 4.4): the old and new root generations and the certificates linking them. */
export interface RootKeyUpdate {
  root: string;
  oldGeneration: number;
  newGeneration: number;
  oldWithOld: Buffer;
  newWithNew: Buffer;
  newWithOld: Buffer;
  oldWithNew: Buffer;
}

/**
 * The latest key rollover of root `name` while both keys' certificates are valid: the
 * newest generation with link certificates and the one before it. Null when none.
 */
export async function rootKeyUpdate(db: Queryable, name: string, now = new Date()): Promise<RootKeyUpdate | null> {
  const all = (await keys(db, name)).filter((k) => k.certDer && k.notAfter! > now);
  const newest = [...all].reverse().find((k) => k.newWithOld && k.oldWithNew);
  const old = newest && all.find((k) => k.generation === newest.generation - 1);
  if (!newest || !old) return null;
  return {
    root: name,
    oldGeneration: old.generation,
    newGeneration: newest.generation,
    oldWithOld: old.certDer!,
    newWithNew: newest.certDer!,
    newWithOld: newest.newWithOld!,
    oldWithNew: newest.oldWithNew!,
  };
}

/**
 * The chains of a certificate issued by CA generation (`caName`, `generation`): the default
 * one (below the root), and while its root is being rolled over, an alternate ending in
 * the link certificate to the other root key (ACME `Link: rel="alternate"`, RFC 8555 7.4.2).
 */
export async function certificateChains(db: Queryable, caName: string, generation: number): Promise<Buffer[][]> {
  const path = await chainPath(db, caName, { cached: true, generation });
  const below = path.filter((l) => l.role !== 'root').map((l) => l.certDer);
  const root = path.at(-1);
  const update = root?.role === 'root' ? await rootKeyUpdate(db, root.name) : null;
  if (!root || !update) return [below];
  if (root.generation === update.oldGeneration) return [below, [...below, update.oldWithNew]];
  if (root.generation === update.newGeneration) return [below, [...below, update.newWithOld]];
  return [below];
}

const roleCaches = new WeakMap<object, Map<string, { role: CaRole; parent: string | null }>>();

/** A CA's role and parent (they never change), remembered per `db`. */
async function roleOf(db: Queryable, name: string): Promise<{ role: CaRole; parent: string | null } | null> {
  let cache = roleCaches.get(db);
  if (!cache) roleCaches.set(db, (cache = new Map()));
  const hit = cache.get(name);
  if (hit) return hit;
  const { rows } = await db.query<{ role: CaRole; parent: string | null }>('SELECT role, parent FROM cas WHERE name = $1', [name]);
  if (!rows[0]) return null;
  cache.set(name, { role: rows[0].role, parent: rows[0].parent });
  return rows[0];
}

/** issuingChain() from generations remembered per `db` (see getKeyCached). */
export function issuingChainCached(
  db: Queryable,
  caName: string,
  opts: { includeRoot?: boolean; generation?: number } = {},
): Promise<Buffer[]> {
  return issuingChain(db, caName, { ...opts, cached: true });
}

/**
 * The CA's status, locked (FOR SHARE) until the end of the caller's transaction: a
 * signature made in that transaction cannot race with the CA's revocation, which updates
 * the row and so waits for it.
 */
export async function lockForSigning(
  db: Queryable,
  name: string,
): Promise<{ name: string; status: CaStatus; external: boolean; revokedAt: Date | null; revocationReason: string | null } | null> {
  const { rows } = await db.query(`SELECT name, status, external, revoked_at, revocation_reason FROM cas WHERE name = $1 FOR SHARE`, [
    name,
  ]);
  const r = rows[0];
  return r
    ? { name: r.name, status: r.status, external: r.external, revokedAt: r.revoked_at, revocationReason: r.revocation_reason }
    : null;
}

// ---------------------------------------------------------------------------------------
// Lifecycle writes (the CA operation activities): every one is idempotent, so a retried
// activity of the same workflow finds what its first attempt stored.

/**
 * Reserves a CA name for the workflow creating it (status pending). Returns false when the
 * name is taken by another CA (or another workflow's creation).
 */
export async function reserve(
  db: Queryable,
  ca: { name: string; role: CaRole; parent: string | null; external?: boolean; workflowId: string; crlProfile?: string | null },
): Promise<boolean> {
  await db.query(
    `INSERT INTO cas (name, role, parent, status, external, created_by_workflow, crl_profile) VALUES ($1, $2, $3, 'pending', $4, $5, $6)
     ON CONFLICT (name) DO NOTHING`,
    [ca.name, ca.role, ca.parent, ca.external ?? false, ca.workflowId, ca.crlProfile ?? null],
  );
  const { rows } = await db.query('SELECT created_by_workflow FROM cas WHERE name = $1', [ca.name]);
  return rows[0]?.created_by_workflow === ca.workflowId;
}

/** Stores a new generation's key (no certificate yet) unless that generation exists; returns the stored row. */
export async function insertKey(
  db: Queryable,
  k: {
    caName: string;
    generation: number;
    keyId: string;
    keyAlg: string;
    keyBackend: KeyBackendName;
    spki: Uint8Array;
    subject: string;
    activateAt?: Date;
  },
): Promise<CaKeyRow> {
  await db.query(
    `INSERT INTO ca_keys (ca_name, generation, key_id, key_alg, key_backend, spki, subject, activate_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))
     ON CONFLICT (ca_name, generation) DO NOTHING`,
    [k.caName, k.generation, k.keyId, k.keyAlg, k.keyBackend, k.spki, k.subject, k.activateAt ?? null],
  );
  return (await getKey(db, k.caName, k.generation))!;
}

/** Stores the TBS of a generation's certificate once (the first writer wins); returns the stored row. */
export async function setKeyTbs(db: Queryable, name: string, generation: number, tbs: Uint8Array, parentGeneration: number | null) {
  await db.query('UPDATE ca_keys SET tbs_der = $3, parent_generation = $4 WHERE ca_name = $1 AND generation = $2 AND tbs_der IS NULL', [
    name,
    generation,
    tbs,
    parentGeneration,
  ]);
  return (await getKey(db, name, generation))!;
}

/** Stores the PKCS#10 request of an externally signed generation once. */
export async function setKeyCsr(db: Queryable, name: string, generation: number, csr: Uint8Array) {
  await db.query('UPDATE ca_keys SET csr_der = $3 WHERE ca_name = $1 AND generation = $2 AND csr_der IS NULL', [name, generation, csr]);
  return (await getKey(db, name, generation))!;
}

/**
 * Stores a generation's certificate once (and its root link certificates); returns false
 * when it had one already. The first generation's certificate makes a pending CA active.
 */
export async function setKeyCertificate(
  db: Queryable,
  name: string,
  generation: number,
  c: {
    certDer: Uint8Array;
    serial: string;
    subject: string;
    notBefore: Date;
    notAfter: Date;
    parentGeneration?: number | null;
    newWithOld?: Uint8Array | null;
    oldWithNew?: Uint8Array | null;
  },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ca_keys SET cert_der = $3, serial = $4, subject = $5, not_before = $6, not_after = $7,
            parent_generation = coalesce($8, parent_generation), new_with_old = $9, old_with_new = $10
     WHERE ca_name = $1 AND generation = $2 AND cert_der IS NULL`,
    [
      name,
      generation,
      c.certDer,
      c.serial,
      c.subject,
      c.notBefore,
      c.notAfter,
      c.parentGeneration ?? null,
      c.newWithOld ?? null,
      c.oldWithNew ?? null,
    ],
  );
  await db.query(`UPDATE cas SET status = 'active' WHERE name = $1 AND status = 'pending'`, [name]);
  return rowCount === 1;
}

/** Sets when a generation takes over issuance. */
export async function setActivateAt(db: Queryable, name: string, generation: number, at: Date): Promise<void> {
  await db.query('UPDATE ca_keys SET activate_at = $3 WHERE ca_name = $1 AND generation = $2', [name, generation, at]);
}

/**
 * Marks a CA revoked (once: a second call keeps the first time and reason); returns the
 * stored state. Inside a transaction, the row stays locked until it ends: signatures in
 * flight (they share-lock it, lockForSigning) are waited for and every later one is stopped.
 */
export async function revoke(db: Queryable, name: string, reason: string): Promise<{ revokedAt: Date; reason: string }> {
  await db.query('SELECT 1 FROM cas WHERE name = $1 FOR UPDATE', [name]);
  await db.query(`UPDATE cas SET status = 'revoked', revoked_at = now(), revocation_reason = $2 WHERE name = $1 AND status <> 'revoked'`, [
    name,
    reason,
  ]);
  const { rows } = await db.query('SELECT revoked_at, revocation_reason FROM cas WHERE name = $1', [name]);
  return { revokedAt: rows[0].revoked_at, reason: rows[0].revocation_reason };
}

/** Sets a CA's parent (an imported certificate names it). */
export async function setParent(db: Queryable, name: string, parent: string | null): Promise<void> {
  await db.query('UPDATE cas SET parent = $2 WHERE name = $1', [name, parent]);
}

/** A CA known only as an outside certificate gets its key in certflow (`ca import` of a CA that was an external parent). */
export async function adoptKey(
  db: Queryable,
  name: string,
  generation: number,
  key: { keyId: string; keyAlg: string; keyBackend: string },
): Promise<void> {
  await db.query('UPDATE cas SET external = false WHERE name = $1', [name]);
  await db.query('UPDATE ca_keys SET key_id = $3, key_alg = $4, key_backend = $5 WHERE ca_name = $1 AND generation = $2', [
    name,
    generation,
    key.keyId,
    key.keyAlg,
    key.keyBackend,
  ]);
}

/** The CAs whose CRLs follow CRL profile `profile`. */
export async function withCrlProfile(db: Queryable, profile: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>('SELECT name FROM cas WHERE crl_profile = $1 ORDER BY name', [profile]);
  return rows.map((r) => r.name);
}

/** CAs waiting for their certificate (an external CA's CSR), with the pending generation. */
export async function listPending(db: Queryable): Promise<Array<{ name: string; role: CaRole; generation: number; key: CaKeyRow }>> {
  const { rows } = await db.query<DbKey & { role: CaRole }>(
    `SELECT c.role, ${KEY_COLUMNS} FROM ca_keys k JOIN cas c ON c.name = k.ca_name WHERE k.cert_der IS NULL ORDER BY k.ca_name, k.generation`,
  );
  return rows.map((r) => ({ name: r.ca_name, role: r.role, generation: r.generation, key: toKey(r) }));
}

/** Whether a key id is a CA key of any generation (key ids are unique per backend). */
export async function keyInUse(
  db: Queryable,
  backend: KeyBackendName,
  keyId: string,
): Promise<{ caName: string; generation: number } | null> {
  const { rows } = await db.query('SELECT ca_name, generation FROM ca_keys WHERE key_backend = $1 AND key_id = $2', [backend, keyId]);
  return rows[0] ? { caName: rows[0].ca_name, generation: rows[0].generation } : null;
}

/** The key store ids of every CA key certflow holds (all generations, pending ones included). */
export async function allKeyIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ key_id: string }>(
    `SELECT key_id FROM ca_keys WHERE key_backend <> 'none' ORDER BY ca_name, generation`,
  );
  return rows.map((r) => r.key_id);
}
