/**
 * Registered EST clients (table `est_clients`): the administrator's "external applications"
 * (RFC 7030 3.2.3) that authenticate with HTTP Basic. Written by the CLI, read by the EST
 * front end on every request (so that disabling or removing a client takes effect at once).
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

export interface EstClientRow {
  name: string;
  /** scrypt$N$r$p$salt$hash (see src/est/password.ts); never the password. */
  passwordHash: string;
  /** Certificate profile for this client's enrollments; null: the label's profile. */
  profile: string | null;
  /** EST labels the client may use ('' = /.well-known/est/ itself); empty: all labels. */
  labels: string[];
  /** Every enrollment waits for operator approval; false: the label decides. */
  requireApproval: boolean;
  enabled: boolean;
  /** Where notices about its certificates (expiry) go; null: nowhere. */
  email: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewEstClient {
  name: string;
  passwordHash: string;
  profile?: string | null;
  labels?: string[];
  requireApproval?: boolean;
  enabled?: boolean;
  email?: string | null;
}

interface DbEstClient {
  name: string;
  password_hash: string;
  profile: string | null;
  labels: string[];
  require_approval: boolean;
  enabled: boolean;
  email: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'name, password_hash, profile, labels, require_approval, enabled, email, created_at, updated_at';

function toRow(r: DbEstClient): EstClientRow {
  return {
    name: r.name,
    passwordHash: r.password_hash,
    profile: r.profile,
    labels: r.labels,
    requireApproval: r.require_approval,
    enabled: r.enabled,
    email: r.email,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Stores a new client and returns the stored row; a taken name is a 'conflict'. */
export async function insert(db: Queryable, c: NewEstClient): Promise<EstClientRow> {
  // ON CONFLICT DO NOTHING instead of catching 23505: inside a caller's transaction a
  // unique violation would abort the transaction, this leaves it usable.
  const { rows } = await db.query<DbEstClient>(
    `INSERT INTO est_clients (name, password_hash, profile, labels, require_approval, enabled, email)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (name) DO NOTHING
     RETURNING ${COLUMNS}`,
    // pg sends a JS string array as a text[] literal ('' included, as "").
    [c.name, c.passwordHash, c.profile ?? null, c.labels ?? [], c.requireApproval ?? false, c.enabled ?? true, c.email ?? null],
  );
  if (!rows[0]) throw new CaError('conflict', `EST client "${c.name}" exists`, { rule: 'estClient.exists', details: { name: c.name } });
  return toRow(rows[0]);
}

export async function get(db: Queryable, name: string): Promise<EstClientRow | null> {
  const { rows } = await db.query<DbEstClient>(`SELECT ${COLUMNS} FROM est_clients WHERE name = $1`, [name]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** All clients by name. */
export async function list(db: Queryable): Promise<EstClientRow[]> {
  const { rows } = await db.query<DbEstClient>(`SELECT ${COLUMNS} FROM est_clients ORDER BY name`);
  return rows.map(toRow);
}

/** Deletes a client; false when there was none of that name. */
export async function remove(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM est_clients WHERE name = $1', [name]);
  return rowCount === 1;
}

/** Enables or disables a client; false when there is none of that name. */
export async function setEnabled(db: Queryable, name: string, enabled: boolean): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE est_clients SET enabled = $2, updated_at = now() WHERE name = $1', [name, enabled]);
  return rowCount === 1;
}

/** Replaces a client's password hash; false when there is none of that name. */
export async function setPassword(db: Queryable, name: string, passwordHash: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE est_clients SET password_hash = $2, updated_at = now() WHERE name = $1', [
    name,
    passwordHash,
  ]);
  return rowCount === 1;
}
