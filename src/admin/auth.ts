/**
 * Who may use the console, and how they prove it: local users with scrypt passwords
 * (src/est/password.ts), sessions (cookie value random, only its hash stored), API tokens
 * bound to one role, and login by a TLS client certificate of this CA bound to a user.
 * Shared by the admin API and the `certflow users` / `certflow tokens` commands; every
 * change is audited in the transaction that makes it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import { CaError } from '../core/errors.ts';
import { lockForTransaction } from '../db/locks.ts';
import { withTransaction, type Queryable } from '../db/pool.ts';
import * as users from '../db/repos/admin-users.ts';
import type { AdminUserRow } from '../db/repos/admin-users.ts';
import * as sessions from '../db/repos/admin-sessions.ts';
import * as tokens from '../db/repos/admin-tokens.ts';
import type { TokenRow } from '../db/repos/admin-tokens.ts';
import * as certificates from '../db/repos/certificates.ts';
import { checkPasswordPolicy, hashPassword, verifyAgainstNothing, verifyPassword } from '../est/password.ts';
import { authenticationFailed } from '../http/auth-failures.ts';
import type { AuthLimiter } from '../http/auth-limiter.ts';
import { record, type Actor } from './actor.ts';
import { checkGrant, covers, grantDetails } from './grants.ts';
import { isRole, ROLES, ROLE_TITLES, type Role } from './roles.ts';

/** Who acts, as the audit log records it. */
export { record, type Actor };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function checkUserName(name: string): void {
  if (!NAME.test(name)) {
    throw new CaError(
      'malformed',
      `user name "${name}" must be 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`,
      {
        rule: 'user.name',
      },
    );
  }
}

function checkRole(role: string): Role {
  if (!isRole(role)) throw new CaError('malformed', `"${role}" is not a role (one of ${ROLES.join(', ')})`, { rule: 'user.role' });
  return role;
}

function unknownUser(name: string): CaError {
  return new CaError('notFound', `no user named "${name}"`, { rule: 'user.unknown' });
}

/** A user as shown by the API and the CLI: never the password hash. */
export function userView(u: AdminUserRow) {
  return {
    name: u.name,
    role: u.role,
    enabled: u.enabled,
    passwordLogin: u.passwordHash !== null,
    certificateSerial: u.certSerial,
    mustChangePassword: u.mustChangePassword,
    createdBy: u.createdBy,
    createdAt: u.createdAt,
    lastLoginAt: u.lastLoginAt,
  };
}

async function certificateForLogin(db: Queryable, serial: string): Promise<string> {
  const cert = await certificates.get(db, serial);
  if (!cert) throw new CaError('notFound', `no certificate with serial ${serial}`, { rule: 'certificate.unknown' });
  if (cert.status !== 'valid' || cert.notAfter.getTime() < Date.now()) {
    throw new CaError('conflict', `certificate ${serial} is ${cert.status === 'valid' ? 'expired' : cert.status}; bind a valid one`, {
      rule: 'user.certificate.invalid',
    });
  }
  return cert.serial;
}

export async function createUser(
  pool: Pool,
  who: Actor,
  u: { name: string; role: string; password?: string; certSerial?: string; mustChangePassword?: boolean },
): Promise<AdminUserRow> {
  checkUserName(u.name);
  const role = checkRole(u.role);
  if (u.password === undefined && !u.certSerial) {
    throw new CaError('malformed', 'a user needs a password or a client certificate to log in with', { rule: 'user.credentials' });
  }
  if (u.password !== undefined) checkPasswordPolicy(u.password);
  await checkGrant(pool, who, 'user.add', u.name, role, `creating user "${u.name}"`);
  const passwordHash = u.password === undefined ? null : await hashPassword(u.password);
  return withTransaction(pool, async (tx) => {
    const certSerial = u.certSerial ? await certificateForLogin(tx, u.certSerial) : null;
    const row = await users.insert(tx, {
      name: u.name,
      role,
      passwordHash,
      certSerial,
      mustChangePassword: u.mustChangePassword,
      createdBy: who.actor,
    });
    await record(tx, who, 'user.add', u.name, {
      ...grantDetails(who, role),
      certificateSerial: certSerial,
      passwordLogin: passwordHash !== null,
    });
    return row;
  });
}

/**
 * A user whose role `who` may hand out: what enabling the user, setting its password or
 * binding its login certificate amounts to (checked and audited by checkGrant). The caller
 * re-reads the user in its transaction and refuses when the role changed meanwhile.
 */
async function userToTakeOver(pool: Pool, who: Actor, name: string, action: string, what: string): Promise<AdminUserRow> {
  const user = await users.get(pool, name);
  if (!user) throw unknownUser(name);
  await checkGrant(pool, who, action, name, checkRole(user.role), what);
  return user;
}

function sameRole(checked: AdminUserRow, now: AdminUserRow | null): AdminUserRow {
  if (!now) throw unknownUser(checked.name);
  if (now.role !== checked.role)
    throw new CaError('conflict', `the role of "${checked.name}" changed meanwhile; try again`, { rule: 'user.changed' });
  return now;
}

/** Disables or enables a user; disabling ends the user's sessions. The last enabled CA Administrator stays. */
export async function setUserEnabled(pool: Pool, who: Actor, name: string, enabled: boolean): Promise<AdminUserRow> {
  // Enabling gives the user's role back: a grant. Disabling takes it away: anyone with users:manage.
  const checked = enabled ? await userToTakeOver(pool, who, name, 'user.enable', `enabling "${name}"`) : undefined;
  return withTransaction(pool, async (tx) => {
    const current = checked ? sameRole(checked, await users.get(tx, name)) : await users.get(tx, name);
    if (!current) throw unknownUser(name);
    if (!enabled && current.enabled && current.role === 'ca-admin') {
      await lockForTransaction(tx, 'certflow:admin-users');
      if ((await users.countEnabled(tx, 'ca-admin')) <= 1) {
        throw new CaError('conflict', `"${name}" is the last enabled CA Administrator; create another before disabling it`, {
          rule: 'user.lastCaAdmin',
        });
      }
    }
    const row = (await users.update(tx, name, { enabled }))!;
    if (!enabled) await sessions.removeForUser(tx, name);
    await record(tx, who, enabled ? 'user.enable' : 'user.disable', name);
    return row;
  });
}

/** An administrator sets a user's password; the user must change it at the next login unless `temporary` is false. */
export async function resetPassword(
  pool: Pool,
  who: Actor,
  name: string,
  password: string,
  opts: { temporary?: boolean } = {},
): Promise<AdminUserRow> {
  checkPasswordPolicy(password);
  // Whoever sets a password can log in as the user: only for roles one may grant.
  const checked = await userToTakeOver(pool, who, name, 'user.password.reset', `setting the password of "${name}"`);
  const passwordHash = await hashPassword(password);
  return withTransaction(pool, async (tx) => {
    sameRole(checked, await users.get(tx, name));
    const row = await users.update(tx, name, { passwordHash, mustChangePassword: opts.temporary ?? true });
    if (!row) throw unknownUser(name);
    await sessions.removeForUser(tx, name);
    await record(tx, who, 'user.password.reset', name);
    return row;
  });
}

/** A user changes their own password (the current one is required). Other sessions of the user end. */
export async function changeOwnPassword(
  pool: Pool,
  who: Actor,
  name: string,
  current: string,
  next: string,
  keepSession?: string,
): Promise<void> {
  const user = await users.get(pool, name);
  if (!user?.passwordHash || !(await verifyPassword(current, user.passwordHash))) {
    await record(pool, who, 'user.password.change', name, { reason: 'wrong current password' }, 'failed');
    throw new CaError('forbidden', 'the current password is wrong', { rule: 'user.password.wrong' });
  }
  checkPasswordPolicy(next);
  if (current === next) throw new CaError('malformed', 'the new password must differ from the current one', { rule: 'user.password.same' });
  const passwordHash = await hashPassword(next);
  await withTransaction(pool, async (tx) => {
    await users.update(tx, name, { passwordHash, mustChangePassword: false });
    await sessions.removeForUser(tx, name, keepSession);
    await record(tx, who, 'user.password.change', name);
  });
}

export async function setUserRole(pool: Pool, who: Actor, name: string, role: string): Promise<AdminUserRow> {
  const newRole = checkRole(role);
  await checkGrant(pool, who, 'user.role', name, newRole, `giving "${name}" the role`);
  return withTransaction(pool, async (tx) => {
    await lockForTransaction(tx, 'certflow:admin-users');
    const current = await users.get(tx, name);
    if (!current) throw unknownUser(name);
    if (current.role === 'ca-admin' && newRole !== 'ca-admin' && current.enabled && (await users.countEnabled(tx, 'ca-admin')) <= 1) {
      throw new CaError('conflict', `"${name}" is the last enabled CA Administrator`, { rule: 'user.lastCaAdmin' });
    }
    const row = (await users.update(tx, name, { role: newRole }))!;
    await sessions.removeForUser(tx, name);
    await record(tx, who, 'user.role', name, { ...grantDetails(who, newRole), from: current.role, to: newRole });
    return row;
  });
}

/** Binds a client certificate of this CA to a user (null unbinds). */
export async function bindCertificate(pool: Pool, who: Actor, name: string, serial: string | null): Promise<AdminUserRow> {
  // A bound certificate logs in as the user: only for roles one may grant. Unbinding takes access away.
  const checked = serial ? await userToTakeOver(pool, who, name, 'user.certificate.bind', `binding a certificate to "${name}"`) : undefined;
  return withTransaction(pool, async (tx) => {
    if (checked) sameRole(checked, await users.get(tx, name));
    const certSerial = serial ? await certificateForLogin(tx, serial) : null;
    const row = await users.update(tx, name, { certSerial });
    if (!row) throw unknownUser(name);
    await record(tx, who, certSerial ? 'user.certificate.bind' : 'user.certificate.unbind', name, { certificateSerial: certSerial });
    return row;
  });
}

// ---------------------------------------------------------------------------------------
// Sessions

export interface AuthSettings {
  idleSeconds: number;
  maxSessionSeconds: number;
  /** Failed logins per client address and per user name (src/http/auth-limiter.ts). */
  limiter: AuthLimiter;
}

const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export interface NewSession {
  /** The cookie value (shown to the browser only). */
  cookie: string;
  csrfToken: string;
  user: AdminUserRow;
}

async function openSession(
  pool: Pool,
  user: AdminUserRow,
  method: string,
  client: { ip?: string; userAgent?: string },
  settings: AuthSettings,
): Promise<NewSession> {
  const cookie = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(32).toString('base64url');
  await sessions.insert(pool, {
    idHash: sha256Hex(cookie),
    userName: user.name,
    csrfToken,
    authMethod: method,
    clientIp: client.ip,
    userAgent: client.userAgent,
    maxSeconds: settings.maxSessionSeconds,
  });
  await users.touchLogin(pool, user.name);
  return { cookie, csrfToken, user };
}

/**
 * Password login. Unknown users, wrong passwords and disabled users all get the same
 * answer (and an unknown user the time of a real verification). Attempts are counted per
 * client address and per user name BEFORE the password is checked, so parallel guesses are
 * counted too; over the limit they are refused (429) without a check (src/http/
 * auth-limiter.ts). Every checked attempt is audited; refused ones are reported in one entry.
 */
export async function login(
  pool: Pool,
  input: { name: string; password: string; ip?: string; userAgent?: string; requestId?: string },
  settings: AuthSettings,
): Promise<NewSession> {
  const name = input.name.slice(0, 64);
  const who: Actor = { actor: `user:${name}`, role: null, requestId: input.requestId };
  const user = await settings.limiter.guard('console', { address: input.ip, user: name }, async () => {
    const found = NAME.test(input.name) ? await users.get(pool, input.name) : null;
    const ok = found?.passwordHash ? await verifyPassword(input.password, found.passwordHash) : await verifyAgainstNothing(input.password);
    if (!found || !ok || !found.enabled) {
      authenticationFailed({ protocol: 'console', address: input.ip, credential: name });
      await record(
        pool,
        { ...who, role: found?.role ?? null },
        'auth.login',
        name,
        { method: 'password', reason: !found || !ok ? 'wrong user name or password' : 'user disabled', ip: input.ip },
        'failed',
      );
      throw new CaError('unauthorized', 'wrong user name or password', { rule: 'auth.wrong' });
    }
    return found;
  });
  const session = await openSession(pool, user, 'password', input, settings);
  await record(pool, { ...who, role: user.role }, 'auth.login', user.name, { method: 'password', ip: input.ip });
  return session;
}

/** Login with a verified TLS client certificate (serial) bound to an enabled user. */
export async function loginWithCertificate(
  pool: Pool,
  input: { serial: string; ip?: string; userAgent?: string; requestId?: string },
  settings: AuthSettings,
): Promise<NewSession> {
  const user = await users.getByCertificate(pool, input.serial);
  if (!user || !user.enabled) {
    await record(
      pool,
      { actor: `cert:${input.serial}`, role: null, requestId: input.requestId },
      'auth.login',
      user?.name ?? null,
      {
        method: 'certificate',
        serial: input.serial,
        reason: user ? 'user disabled' : 'certificate bound to no user',
        ip: input.ip,
      },
      'failed',
    );
    throw new CaError('unauthorized', `certificate ${input.serial} is not bound to an enabled console user`, { rule: 'auth.certificate' });
  }
  const session = await openSession(pool, user, 'certificate', input, settings);
  await record(pool, { actor: `user:${user.name}`, role: user.role, requestId: input.requestId }, 'auth.login', user.name, {
    method: 'certificate',
    serial: input.serial,
    ip: input.ip,
  });
  return session;
}

export interface SessionPrincipal {
  kind: 'session';
  user: AdminUserRow;
  role: Role;
  csrfToken: string;
  idHash: string;
  authMethod: string;
}

export interface TokenPrincipal {
  kind: 'token';
  token: TokenRow;
  role: Role;
}

export type Principal = SessionPrincipal | TokenPrincipal;

export function actorOf(p: Principal, requestId?: string): Actor {
  return p.kind === 'session'
    ? { actor: `user:${p.user.name}`, role: p.role, requestId }
    : { actor: `token:${p.token.id}`, role: p.role, requestId };
}

/** The session of a cookie value, if it is live and its user still enabled. */
export async function resolveSession(pool: Pool, cookie: string, settings: AuthSettings): Promise<SessionPrincipal | undefined> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return undefined;
  const idHash = sha256Hex(cookie);
  const s = await sessions.touch(pool, idHash, settings.idleSeconds);
  if (!s) return undefined;
  const user = await users.get(pool, s.userName);
  if (!user?.enabled || !isRole(user.role)) {
    await sessions.remove(pool, idHash);
    return undefined;
  }
  return { kind: 'session', user, role: user.role, csrfToken: s.csrfToken, idHash, authMethod: s.authMethod };
}

export async function logout(pool: Pool, p: SessionPrincipal, requestId?: string): Promise<void> {
  await sessions.remove(pool, p.idHash);
  await record(pool, actorOf(p, requestId), 'auth.logout', p.user.name);
}

// ---------------------------------------------------------------------------------------
// API tokens: "cft_<id>_<secret>", each belonging to a console user

const TOKEN = /^cft_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

/** Days an API token lives when its creator says nothing, and at most. */
export const TOKEN_DEFAULT_DAYS = 90;
export const TOKEN_MAX_DAYS = 365;

/**
 * Creates an API token for console user `t.owner` with role `t.role` (default: the owner's
 * role). The token's role must be one the owner holds (its permissions a subset of the
 * owner's) and one `who` may grant; it expires after `expiresDays` (default 90, at most 365).
 */
export async function createToken(
  pool: Pool,
  who: Actor,
  t: { name: string; owner: string; role?: string; expiresDays?: number },
): Promise<{ token: string; row: TokenRow }> {
  if (!/^[\p{L}\p{N} ._@-]{1,64}$/u.test(t.name)) {
    throw new CaError('malformed', 'a token name is 1-64 letters, digits, spaces, ".", "_", "@" or "-"', { rule: 'token.name' });
  }
  const days = t.expiresDays ?? TOKEN_DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > TOKEN_MAX_DAYS) {
    throw new CaError('malformed', `expiresDays must be a whole number of days from 1 to ${TOKEN_MAX_DAYS}`, { rule: 'token.expires' });
  }
  const owner = await users.get(pool, t.owner);
  if (!owner?.enabled || !isRole(owner.role))
    throw new CaError('notFound', `no enabled user named "${t.owner}" to own the token`, { rule: 'token.owner' });
  const role = checkRole(t.role ?? owner.role);
  await checkGrant(pool, who, 'token.create', owner.name, role, `creating a token for "${owner.name}"`);
  if (!covers(owner.role, role)) {
    throw new CaError(
      'forbidden',
      `a token of "${owner.name}" (${ROLE_TITLES[owner.role]}) cannot have the ${ROLE_TITLES[role]} role: a token holds at most its user's permissions`,
      { rule: 'token.role' },
    );
  }
  const id = randomBytes(12).toString('base64url').replace(/[-_]/g, '').padEnd(16, '0').slice(0, 16);
  const secret = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + days * 86_400_000);
  const row = await withTransaction(pool, async (tx) => {
    const stored = await tokens.insert(tx, {
      id,
      name: t.name,
      role,
      owner: owner.name,
      secretHash: sha256Hex(secret),
      createdBy: who.actor,
      expiresAt,
    });
    await record(tx, who, 'token.create', id, { ...grantDetails(who, role), name: t.name, owner: owner.name, expiresAt });
    return stored;
  });
  return { token: `cft_${id}_${secret}`, row };
}

export async function revokeToken(pool: Pool, who: Actor, id: string): Promise<void> {
  await withTransaction(pool, async (tx) => {
    if (!(await tokens.revoke(tx, id))) {
      throw new CaError('notFound', `no active API token with id "${id}"`, { rule: 'token.unknown' });
    }
    await record(tx, who, 'token.revoke', id);
  });
}

export function tokenView(t: TokenRow) {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    owner: t.owner,
    createdBy: t.createdBy,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    lastUsedAt: t.lastUsedAt,
    revokedAt: t.revokedAt,
    active: !t.revokedAt && (!t.expiresAt || t.expiresAt.getTime() > Date.now()),
  };
}

/** The principal of an "Authorization: Bearer cft_…" header; 'unauthorized' when it is not a live token. */
export async function authenticateToken(pool: Pool, bearer: string): Promise<TokenPrincipal> {
  const m = TOKEN.exec(bearer);
  const row = m ? await tokens.get(pool, m[1]!) : null;
  const ok = row && m && timingSafeEqual(Buffer.from(row.secretHash, 'hex'), Buffer.from(sha256Hex(m[2]!), 'hex'));
  if (!row || !ok) throw new CaError('unauthorized', 'unknown API token', { rule: 'auth.token' });
  if (row.revokedAt) throw new CaError('unauthorized', `API token ${row.id} was revoked`, { rule: 'auth.token.revoked' });
  if (row.expiresAt && row.expiresAt.getTime() <= Date.now())
    throw new CaError('unauthorized', `API token ${row.id} expired`, { rule: 'auth.token.expired' });
  if (!isRole(row.role)) throw new CaError('unauthorized', `API token ${row.id} has an unknown role`, { rule: 'auth.token' });
  // A token lives only as long as its user, and never holds more than its user does now.
  if (!row.owner)
    throw new CaError('unauthorized', `API token ${row.id} belongs to no user: create a new one (\`certflow tokens create --user\`)`, {
      rule: 'auth.token.owner',
    });
  const owner = await users.get(pool, row.owner);
  if (!owner?.enabled)
    throw new CaError('unauthorized', `API token ${row.id}: its user "${row.owner}" is disabled`, { rule: 'auth.token.owner' });
  if (!isRole(owner.role) || !covers(owner.role, row.role))
    throw new CaError('unauthorized', `API token ${row.id}: its user "${row.owner}" no longer holds the ${row.role} role`, {
      rule: 'auth.token.owner',
    });
  await tokens.touch(pool, row.id);
  return { kind: 'token', token: row, role: row.role };
}
