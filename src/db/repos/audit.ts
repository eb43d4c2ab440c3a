/**
 * The audit log (table `audit_log`): append-only and hash-chained (migration 020).
 *
 * Each entry has a gap-free sequence number, the hash of its canonical content (seq, time,
 * actor, role, action, target, result, request id, details), the hash of the entry before
 * it, and its chain hash sha256(prev_hash ':' content_hash). An append advances the
 * one-row `audit_head` and inserts the entry in ONE statement: the row lock on the head
 * serializes appenders for as long as the appending transaction lasts, and READ COMMITTED
 * re-reads the head after waiting, so the chain never forks. verifyChain() recomputes the
 * whole chain here, in JS, from the stored columns; signed checkpoints (audit_checkpoints,
 * signed by the worker's audit key) prove the head itself was not rewritten.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { checkpointSignatureValid, type OutsideCheckpoints, type SignedCheckpoint } from '../../core/audit-file.ts';
import type { Queryable } from '../pool.ts';

export { checkpointMessage } from '../../core/audit-file.ts';

export type AuditResult = 'ok' | 'failed' | 'denied';

export interface AuditEntry {
  /** user:<name> | token:<id> | operator[:<os user>] | acme:<account> | est:<client> | system | … */
  actor: string;
  /** ca.create | cert.issue | cert.revoke | user.add | auth.login | … */
  action: string;
  /** The target: serial, CA name, order id, user name; null when the action has no single object. */
  object?: string | null;
  details?: Record<string, unknown>;
  /**
   * The actor's role. Left out: a console user's or API token's current role (looked up),
   * otherwise the kind of actor (see defaultRole).
   */
  role?: string | null;
  /** Default 'ok'. */
  result?: AuditResult;
  /** The HTTP request, issuance request or workflow the entry belongs to. */
  requestId?: string | null;
  /**
   * Exactly-once key: an entry with a key that is recorded already is not written again
   * (a retried activity). Keyed appends belong outside other transactions (a concurrent
   * duplicate fails the statement, which would abort the caller's transaction).
   */
  key?: string;
}

export interface AuditRow {
  id: number;
  seq: number;
  at: Date;
  actor: string;
  role: string | null;
  action: string;
  object: string | null;
  result: string;
  requestId: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  contentHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** The role recorded for actors that are not console users: what kind of actor it is. */
function defaultRole(actor: string): string | null {
  const kind = actor.split(':')[0];
  if (kind === 'operator') return 'cli';
  if (kind === 'acme' || kind === 'est' || kind === 'cmp') return 'client';
  if (['system', 'worker', 'certflow-server', 'certflow-admin', 'timeout'].includes(kind!)) return 'system';
  return null;
}

/** The actor of what a request's requester did: protocol clients as kind:name (acme:<account>, est:<client>, cmp:<sender>). */
export function requesterActor(protocol: string, requester: string | null | undefined): string {
  if (!requester) return protocol;
  return ['acme', 'est', 'cmp'].includes(protocol) ? `${protocol}:${requester}` : requester;
}

/**
 * Where the role of an entry comes from: given ($2), or looked up in the same statement for a
 * console user ($2 = the user's name) or an API token ($2 = the token's id).
 */
const ROLE_SOURCES = {
  given: '$2::text',
  user: '(SELECT u.role FROM admin_users u WHERE u.name = $2::text)',
  token: '(SELECT t.role FROM admin_tokens t WHERE t.id = $2::text)',
} as const;

/**
 * The append: one text per role source and with or without the exactly-once check, each
 * without a branch on a parameter. Postgres plans a prepared statement anew at every
 * execution as long as a plan for the given values looks cheaper than its generic plan; a
 * text that folded away branches on $1/$8 (the role lookups, the dedup check) was planned
 * anew every time, 0.45 ms of the backend's CPU per append.
 */
function appendSql(role: keyof typeof ROLE_SOURCES, keyed: boolean): string {
  return `
WITH r AS (
  SELECT ${ROLE_SOURCES[role]} AS role, date_trunc('milliseconds', clock_timestamp()) AS at
), head AS (
  UPDATE audit_head h
     SET seq = h.seq + 1,
         prev_hash = h.hash,
         hash = certflow_sha256_hex(h.hash || ':' || certflow_sha256_hex(
                  certflow_audit_canonical(h.seq + 1, r.at, $1, r.role, $3, $4, $5, $6, $7::jsonb))),
         updated_at = r.at
    FROM r
   WHERE h.id = 1 ${keyed ? 'AND NOT EXISTS (SELECT 1 FROM audit_log WHERE dedup_key = $8)' : ''}
  RETURNING h.seq, h.prev_hash, h.hash, r.at, r.role
)
INSERT INTO audit_log (seq, at, actor, role, action, object, result, request_id, details, dedup_key, prev_hash, content_hash, hash)
SELECT seq, at, $1, role, $3, $4, $5, $6, $7::jsonb, $8::text, prev_hash,
       certflow_sha256_hex(certflow_audit_canonical(seq, at, $1, role, $3, $4, $5, $6, $7::jsonb)), hash
  FROM head
RETURNING seq`;
}

const APPEND_SQL = {
  given: [appendSql('given', false), appendSql('given', true)],
  user: [appendSql('user', false), appendSql('user', true)],
  token: [appendSql('token', false), appendSql('token', true)],
} as const;

/** The role's source and $2 for an entry (see ROLE_SOURCES). */
function roleSource(entry: AuditEntry): [keyof typeof ROLE_SOURCES, string | null] {
  const role = entry.role === undefined ? defaultRole(entry.actor) : entry.role;
  if (role !== null) return ['given', role];
  if (entry.actor.startsWith('user:')) return ['user', entry.actor.slice('user:'.length)];
  if (entry.actor.startsWith('token:')) return ['token', entry.actor.slice('token:'.length)];
  return ['given', null];
}

/**
 * Appends an entry. Pass the transaction's client to make the entry commit (or roll back)
 * with the change it describes. Returns false when an entry with `entry.key` exists already.
 */
export async function audit(db: Queryable, entry: AuditEntry): Promise<boolean> {
  const [source, role] = roleSource(entry);
  const key = entry.key ?? null;
  const values = [
    entry.actor,
    role,
    entry.action,
    entry.object ?? null,
    entry.result ?? 'ok',
    entry.requestId ?? null,
    // Through JSON once, so that what is hashed is what jsonb stores (no undefined, Dates as strings).
    JSON.stringify(entry.details ?? {}),
    key,
  ];
  try {
    const { rowCount } = await db.query(APPEND_SQL[source][key === null ? 0 : 1], values);
    return rowCount === 1;
  } catch (e) {
    // Two attempts with the same key at the same moment: the second loses on the unique key.
    const pgErr = e as { code?: string; constraint?: string };
    if (entry.key && pgErr.code === '23505' && pgErr.constraint === 'audit_log_dedup_key_key') return false;
    throw e;
  }
}

interface DbAudit {
  id: string;
  seq: string;
  at: Date;
  actor: string;
  role: string | null;
  action: string;
  object: string | null;
  result: string;
  request_id: string | null;
  details: Record<string, unknown>;
  details_text: string;
  prev_hash: string;
  content_hash: string;
  hash: string;
}

const COLUMNS =
  'id, seq, at, actor, role, action, object, result, request_id, details, details::text AS details_text, prev_hash, content_hash, hash';

function toRow(r: DbAudit): AuditRow {
  return {
    // bigserial / bigint arrive as strings; audit ids stay far below 2^53.
    id: Number(r.id),
    seq: Number(r.seq),
    at: r.at,
    actor: r.actor,
    role: r.role,
    action: r.action,
    object: r.object,
    result: r.result,
    requestId: r.request_id,
    details: r.details,
    prevHash: r.prev_hash,
    contentHash: r.content_hash,
    hash: r.hash,
  };
}

export interface AuditFilter {
  object?: string;
  /** Exact actor, or a prefix ending in ":" ("user:" = every console user). */
  actor?: string;
  /** Exact action, or a prefix ending in "." ("cert." = every certificate action). */
  action?: string;
  result?: string;
  from?: Date;
  to?: Date;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
}

function prefixOrExact(value: string, separator: string): [string, string] {
  return value.endsWith(separator) ? ['LIKE', `${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`] : ['=', value];
}

function whereClause(opts: AuditFilter): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  if (opts.object !== undefined) add((p) => `object = ${p}`, opts.object);
  if (opts.actor) {
    const [op, v] = prefixOrExact(opts.actor, ':');
    add((p) => `actor ${op} ${p}`, v);
  }
  if (opts.action) {
    const [op, v] = prefixOrExact(opts.action, '.');
    add((p) => `action ${op} ${p}`, v);
  }
  if (opts.result) add((p) => `result = ${p}`, opts.result);
  if (opts.from) add((p) => `at >= ${p}`, opts.from);
  if (opts.to) add((p) => `at < ${p}`, opts.to);
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', values };
}

/** Newest first. */
export async function list(db: Queryable, opts: AuditFilter = {}): Promise<AuditRow[]> {
  const { sql, values } = whereClause(opts);
  values.push(Math.min(Math.max(opts.limit ?? 100, 1), 1000), Math.max(opts.offset ?? 0, 0));
  const { rows } = await db.query<DbAudit>(
    `SELECT ${COLUMNS} FROM audit_log ${sql} ORDER BY seq DESC LIMIT $${values.length - 1} OFFSET $${values.length}`,
    values,
  );
  return rows.map(toRow);
}

/** The number of entries matching a filter (limit and offset ignored). */
export async function count(db: Queryable, opts: AuditFilter = {}): Promise<number> {
  const { sql, values } = whereClause(opts);
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log ${sql}`, values);
  return Number(rows[0]!.n);
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** The chain hash of entry `seq`, or undefined when there is no such entry. */
export async function entryHash(db: Queryable, seq: number): Promise<string | undefined> {
  const { rows } = await db.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = $1', [seq]);
  return rows[0]?.hash;
}

export async function head(db: Queryable): Promise<ChainHead> {
  const { rows } = await db.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head WHERE id = 1');
  return { seq: Number(rows[0]?.seq ?? 0), hash: rows[0]?.hash ?? GENESIS_HASH };
}

// ---------------------------------------------------------------------------------------
// Verification

const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

function field(v: string | null): string {
  return v === null ? '~' : `${Buffer.byteLength(v, 'utf8')}:${v}`;
}

/** The canonical content of an entry, exactly as certflow_audit_canonical() builds it at insert. */
export function canonicalContent(
  e: Pick<AuditRow, 'seq' | 'at' | 'actor' | 'role' | 'action' | 'object' | 'result' | 'requestId'> & { detailsText: string },
): string {
  return [
    'certflow-audit-1',
    field(String(e.seq)),
    field(e.at.toISOString()),
    field(e.actor),
    field(e.role),
    field(e.action),
    field(e.object),
    field(e.result),
    field(e.requestId),
    field(e.detailsText),
  ].join('|');
}

export function chainHash(prevHash: string, contentHash: string): string {
  return sha256Hex(`${prevHash}:${contentHash}`);
}

export interface BrokenEntry {
  seq: number;
  /** Row id, when the entry exists (a deleted entry has none). */
  id?: number;
  reason: string;
}

export interface CheckpointCheck {
  seq: number;
  signedAt: Date;
  ok: boolean;
  /** Where the checkpoint is kept: the database's audit_checkpoints, or the file outside it. */
  where: 'database' | 'outside';
  reason?: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Entries read. */
  entries: number;
  head: ChainHead;
  /** The first entry where the chain breaks. */
  firstBroken?: BrokenEntry;
  checkpoints: CheckpointCheck[];
  /** The newest checkpoint that verified: the log up to it is proven unchanged since it was signed. */
  latestVerifiedCheckpoint?: { seq: number; signedAt: Date };
  /** The newest checkpoint kept outside the database (its file), if any verified. */
  latestOutsideCheckpoint?: { seq: number; signedAt: Date; file: string };
  problems: string[];
}

export interface VerifyOptions {
  batch?: number;
  /**
   * The pinned public audit key (PEM or key): the only key checkpoints are checked
   * against. Without it no checkpoint counts as verified (each is a problem).
   */
  publicKey?: string | KeyObject;
  /** The checkpoints kept outside the database: the chain must reach and agree with every one. */
  outside?: OutsideCheckpoints;
}

/**
 * Recomputes the chain from the first entry: every entry's content hash, link and chain
 * hash, gap-free sequence numbers, the head, and every signed checkpoint (signature under
 * the pinned audit key, and the entry it names still having the hash it signed), those in
 * audit_checkpoints and those kept outside the database. A chain that ends before an
 * outside checkpoint, or disagrees with one, is broken there.
 */
export async function verifyChain(db: Queryable, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const batch = opts.batch ?? 5000;
  const problems: string[] = [];
  let firstBroken: BrokenEntry | undefined;
  const broken = (b: BrokenEntry) => {
    firstBroken ??= b;
    problems.push(`entry #${b.seq}${b.id !== undefined ? ` (id ${b.id})` : ''}: ${b.reason}`);
  };
  const hashes = new Map<number, string>();
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let entries = 0;
  const chainHead = await head(db);
  const { rows: cpRows } = await db.query<{ seq: string }>('SELECT seq FROM audit_checkpoints');
  const wanted = new Set([...cpRows.map((r) => Number(r.seq)), ...(opts.outside?.checkpoints ?? []).map((c) => c.seq)]);

  for (let after = 0; ;) {
    const { rows } = await db.query<DbAudit>(`SELECT ${COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, batch]);
    for (const r of rows) {
      const e = toRow(r);
      entries++;
      if (e.seq !== expectedSeq) {
        broken({
          seq: expectedSeq,
          reason: e.seq > expectedSeq ? `missing (deleted): the next entry is #${e.seq}` : `sequence number out of order (found #${e.seq})`,
        });
      }
      if (e.prevHash !== prevHash)
        broken({
          seq: e.seq,
          id: e.id,
          reason: 'does not link to the entry before it (prev_hash differs: an entry before it was removed or rewritten)',
        });
      const content = sha256Hex(canonicalContent({ ...e, detailsText: r.details_text }));
      if (content !== e.contentHash)
        broken({ seq: e.seq, id: e.id, reason: 'content changed after it was written (content hash differs)' });
      if (chainHash(e.prevHash, e.contentHash) !== e.hash)
        broken({ seq: e.seq, id: e.id, reason: 'chain hash differs from sha256(prev_hash:content_hash)' });
      if (wanted.has(e.seq)) hashes.set(e.seq, e.hash);
      prevHash = e.hash;
      expectedSeq = e.seq + 1;
    }
    if (rows.length < batch) break;
    after = Number(rows[rows.length - 1]!.seq);
  }
  const lastSeq = expectedSeq - 1;
  if (chainHead.seq > lastSeq)
    broken({ seq: lastSeq + 1, reason: `missing (deleted): the chain head is at #${chainHead.seq}, the last entry is #${lastSeq}` });
  else if (chainHead.seq < lastSeq) problems.push(`the chain head (#${chainHead.seq}) is behind the last entry (#${lastSeq})`);
  else if (chainHead.hash !== prevHash) problems.push(`the chain head's hash differs from the last entry's (#${lastSeq})`);

  const key = typeof opts.publicKey === 'string' ? createPublicKey(opts.publicKey) : opts.publicKey;
  const recorded = key ? await recordedKeyMismatch(db, key) : [];
  problems.push(...recorded);
  const checkpoints = [
    ...checkCheckpoints(await listCheckpoints(db), 'database', key, hashes, lastSeq),
    ...checkCheckpoints(opts.outside?.checkpoints ?? [], 'outside', key, hashes, lastSeq),
  ];
  for (const c of checkpoints) {
    if (c.ok) continue;
    const where = c.where === 'outside' ? `checkpoint #${c.seq} kept outside the database (${opts.outside!.file})` : `checkpoint #${c.seq}`;
    problems.push(`${where}, signed ${c.signedAt.toISOString()}: ${c.reason}`);
  }
  problems.push(...(opts.outside?.problems ?? []));
  // The log must reach, and agree with, every checkpoint kept outside it: the first one it
  // does not is where the chain breaks (entries deleted, or the log rewritten).
  const outsideBad = checkpoints
    .filter((c) => c.where === 'outside' && !c.ok && c.reason !== SIGNATURE_BAD)
    .sort((a, b) => a.seq - b.seq)[0];
  if (outsideBad) {
    const at = Math.min(outsideBad.seq, lastSeq + 1);
    if (!firstBroken || firstBroken.seq > at)
      firstBroken = {
        seq: at,
        reason: `${outsideBad.reason} — checkpoint #${outsideBad.seq} kept outside the database (${opts.outside!.file}, signed ${outsideBad.signedAt.toISOString()})`,
      };
  }
  const newest = (where: CheckpointCheck['where']) =>
    checkpoints
      .filter((c) => c.ok && c.where === where)
      .sort((a, b) => a.seq - b.seq || a.signedAt.getTime() - b.signedAt.getTime())
      .pop();
  const latest = [newest('database'), newest('outside')]
    .filter((c) => c !== undefined)
    .sort((a, b) => a.seq - b.seq)
    .pop();
  const outside = newest('outside');
  return {
    ok: problems.length === 0,
    entries,
    head: chainHead,
    firstBroken,
    checkpoints,
    latestVerifiedCheckpoint: latest ? { seq: latest.seq, signedAt: latest.signedAt } : undefined,
    latestOutsideCheckpoint: outside ? { seq: outside.seq, signedAt: outside.signedAt, file: opts.outside!.file } : undefined,
    problems,
  };
}

// ---------------------------------------------------------------------------------------
// Checkpoints and the audit key

export interface AuditKeyRow {
  keyId: string;
  keyBackend: string;
  keyAlg: string;
  spki: Buffer;
  createdAt: Date;
}

/** A checkpoint as audit_checkpoints stores it: the same fields as one kept outside the database. */
export type CheckpointRow = SignedCheckpoint;

export async function getAuditKey(db: Queryable, keyId: string): Promise<AuditKeyRow | null> {
  const { rows } = await db.query('SELECT key_id, key_backend, key_alg, spki, created_at FROM audit_keys WHERE key_id = $1', [keyId]);
  const r = rows[0];
  return r ? { keyId: r.key_id, keyBackend: r.key_backend, keyAlg: r.key_alg, spki: r.spki, createdAt: r.created_at } : null;
}

export async function insertAuditKey(
  db: Queryable,
  k: { keyId: string; keyBackend: string; keyAlg: string; spki: Uint8Array },
): Promise<void> {
  await db.query('INSERT INTO audit_keys (key_id, key_backend, key_alg, spki) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING', [
    k.keyId,
    k.keyBackend,
    k.keyAlg,
    k.spki,
  ]);
}

/** Stores a checkpoint; false when the head at `seq` was checkpointed already. */
export async function insertCheckpoint(db: Queryable, c: CheckpointRow): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, sign_alg, signature) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (seq) DO NOTHING`,
    [c.seq, c.hash, c.signedAt, c.keyId, c.signAlg, c.signature],
  );
  return rowCount === 1;
}

/** Oldest first. */
export async function listCheckpoints(db: Queryable, opts: { limit?: number } = {}): Promise<CheckpointRow[]> {
  const { rows } = await db.query(
    `SELECT seq, hash, signed_at, key_id, sign_alg, signature FROM (
       SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT $1) c ORDER BY seq`,
    [opts.limit ?? 100_000],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    hash: r.hash,
    signedAt: r.signed_at,
    keyId: r.key_id,
    signAlg: r.sign_alg,
    signature: r.signature,
  }));
}

const SIGNATURE_BAD = 'the signature does not verify with the pinned audit key';

/** Each checkpoint checked: signed by the pinned key, and the entry it names still there with the hash signed. */
function checkCheckpoints(
  list: SignedCheckpoint[],
  where: CheckpointCheck['where'],
  key: KeyObject | undefined,
  hashes: Map<number, string>,
  lastSeq: number,
): CheckpointCheck[] {
  return list.map((cp) => {
    const result = (reason?: string): CheckpointCheck => ({
      seq: cp.seq,
      signedAt: cp.signedAt,
      where,
      ok: !reason,
      ...(reason ? { reason } : {}),
    });
    if (!key) return result('not checked (no pinned audit key)');
    if (!checkpointSignatureValid(cp, key)) return result(SIGNATURE_BAD);
    if (cp.seq > lastSeq) return result(`the log ends at #${lastSeq}, but a checkpoint names entry #${cp.seq}: entries were deleted`);
    if (hashes.get(cp.seq) !== cp.hash) return result(`entry #${cp.seq} no longer has the hash that was signed: the log was rewritten`);
    return result();
  });
}

/** A problem for each audit key recorded in the database that is not the pinned key (a key put there to sign forged checkpoints). */
async function recordedKeyMismatch(db: Queryable, pinned: KeyObject): Promise<string[]> {
  const { rows } = await db.query<{ key_id: string; spki: Buffer }>('SELECT key_id, spki FROM audit_keys ORDER BY created_at');
  return rows
    .filter((r) => !createPublicKey({ key: r.spki, format: 'der', type: 'spki' }).equals(pinned))
    .map((r) => `the audit key "${r.key_id}" recorded in the database is not the pinned public key`);
}
