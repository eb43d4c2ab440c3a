/**
 * Console users (table `admin_users`); failed logins are counted by src/http/auth-limiter.ts.
 * Users are never deleted (audit entries name them); they are disabled.
 */
import { CaError } from '../../core/errors.ts';
import type { Queryable } from '../pool.ts';

export interface AdminUserRow {
  name: string;
  role: string;
  /** scrypt hash; null for users that log in by certificate only. Never shown. */
  passwordHash: string | null;
  /** Serial (hex) of the TLS client certificate bound to the user. */
  certSerial: string | null;
  enabled: boolean;
  mustChangePassword: boolean;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt: Date | null;
}

const COLUMNS = 'name, role, password_hash, cert_serial, enabled, must_change_password, created_by, created_at, updated_at, last_login_at';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toRow(r: any): AdminUserRow {
  return {
    name: r.name,
    role: r.role,
    passwordHash: r.password_hash,
    certSerial: r.cert_serial,
    enabled: r.enabled,
    mustChangePassword: r.must_change_password,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastLoginAt: r.last_login_at,
  };
}

export interface NewAdminUser {
  name: string;
  role: string;
  passwordHash: string | null;
  certSerial?: string | null;
  mustChangePassword?: boolean;
  createdBy: string;
}

/** Stores a new user; a taken name (or certificate) is a 'conflict'. */
export async function insert(db: Queryable, u: NewAdminUser): Promise<AdminUserRow> {
  const { rows } = await db.query(
    `INSERT INTO admin_users (name, role, password_hash, cert_serial, must_change_password, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [u.name, u.role, u.passwordHash, u.certSerial ?? null, u.mustChangePassword ?? false, u.createdBy],
  );
  if (!rows[0]) {
    const taken = await get(db, u.name);
    throw new CaError('conflict', taken ? `a user named "${u.name}" exists` : `certificate ${u.certSerial} is bound to another user`, {
      rule: 'user.exists',
    });
  }
  return toRow(rows[0]);
}

export async function get(db: Queryable, name: string): Promise<AdminUserRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM admin_users WHERE name = $1`, [name]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function getByCertificate(db: Queryable, serial: string): Promise<AdminUserRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM admin_users WHERE cert_serial = $1`, [serial]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function list(db: Queryable): Promise<AdminUserRow[]> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM admin_users ORDER BY name`);
  return rows.map(toRow);
}

export async function countEnabled(db: Queryable, role?: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM admin_users WHERE enabled AND ($1::text IS NULL OR role = $1)',
    [role ?? null],
  );
  return rows[0]!.n;
}

/** Applies a change to one user; null when there is no such user. */
export async function update(
  db: Queryable,
  name: string,
  change: { enabled?: boolean; passwordHash?: string; mustChangePassword?: boolean; certSerial?: string | null; role?: string },
): Promise<AdminUserRow | null> {
  const sets: string[] = [];
  const values: unknown[] = [name];
  const set = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  };
  if (change.enabled !== undefined) set('enabled', change.enabled);
  if (change.passwordHash !== undefined) set('password_hash', change.passwordHash);
  if (change.mustChangePassword !== undefined) set('must_change_password', change.mustChangePassword);
  if (change.certSerial !== undefined) set('cert_serial', change.certSerial);
  if (change.role !== undefined) set('role', change.role);
  try {
    const { rows } = await db.query(
      `UPDATE admin_users SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE name = $1 RETURNING ${COLUMNS}`,
      values,
    );
    return rows[0] ? toRow(rows[0]) : null;
  } catch (e) {
    if ((e as { code?: string }).code === '23505') {
      throw new CaError('conflict', `certificate ${change.certSerial} is bound to another user`, { rule: 'user.certificate.taken' });
    }
    throw e;
  }
}

export async function touchLogin(db: Queryable, name: string): Promise<void> {
  await db.query('UPDATE admin_users SET last_login_at = now() WHERE name = $1', [name]);
}
