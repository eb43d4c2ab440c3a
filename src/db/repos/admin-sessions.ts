/**
 * Console sessions (table `admin_sessions`). The cookie carries a random 256-bit value;
 * only its SHA-256 is stored, so a copy of the database opens no session.
 */
import type { Queryable } from '../pool.ts';

export interface SessionRow {
  idHash: string;
  userName: string;
  csrfToken: string;
  authMethod: string;
  clientIp: string | null;
  userAgent: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

const COLUMNS = 'id_hash, user_name, csrf_token, auth_method, client_ip, user_agent, created_at, last_seen_at, expires_at';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toRow(r: any): SessionRow {
  return {
    idHash: r.id_hash,
    userName: r.user_name,
    csrfToken: r.csrf_token,
    authMethod: r.auth_method,
    clientIp: r.client_ip,
    userAgent: r.user_agent,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
  };
}

export async function insert(
  db: Queryable,
  s: { idHash: string; userName: string; csrfToken: string; authMethod: string; clientIp?: string; userAgent?: string; maxSeconds: number },
): Promise<SessionRow> {
  const { rows } = await db.query(
    `INSERT INTO admin_sessions (id_hash, user_name, csrf_token, auth_method, client_ip, user_agent, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) RETURNING ${COLUMNS}`,
    [s.idHash, s.userName, s.csrfToken, s.authMethod, s.clientIp ?? null, (s.userAgent ?? '').slice(0, 300) || null, s.maxSeconds],
  );
  return toRow(rows[0]);
}

/**
 * The live session with this hash, its idle clock restarted (written at most once a
 * minute); null when there is none, it expired, or it was idle longer than `idleSeconds`
 * (such a session is deleted).
 */
export async function touch(db: Queryable, idHash: string, idleSeconds: number): Promise<SessionRow | null> {
  const { rows } = await db.query(
    `UPDATE admin_sessions SET last_seen_at = now()
     WHERE id_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
       AND last_seen_at < now() - interval '1 minute'
     RETURNING ${COLUMNS}`,
    [idHash, idleSeconds],
  );
  if (rows[0]) return toRow(rows[0]);
  const { rows: current } = await db.query(
    `SELECT ${COLUMNS} FROM admin_sessions
     WHERE id_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)`,
    [idHash, idleSeconds],
  );
  if (current[0]) return toRow(current[0]);
  await remove(db, idHash);
  return null;
}

export async function remove(db: Queryable, idHash: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM admin_sessions WHERE id_hash = $1', [idHash]);
  return rowCount === 1;
}

/** Ends every session of a user (disabled, password reset); returns how many. */
export async function removeForUser(db: Queryable, userName: string, exceptIdHash?: string): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM admin_sessions WHERE user_name = $1 AND id_hash IS DISTINCT FROM $2', [
    userName,
    exceptIdHash ?? null,
  ]);
  return rowCount ?? 0;
}

/** Deletes sessions that ended; called now and then by the console. */
export async function sweep(db: Queryable, idleSeconds: number): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM admin_sessions WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)',
    [idleSeconds],
  );
  return rowCount ?? 0;
}
