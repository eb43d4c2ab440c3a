/**
 * Managed profile versions (table `managed_profiles`): every change of a certificate, key
 * or CRL profile is a new version; the latest one per kind and name is in effect (a retired
 * one removes the profile). A NOTIFY tells every process to rebuild its profile set.
 */
import type { StoredProfile, ProfileKind } from '../../config/profile-set.ts';
import type { Queryable } from '../pool.ts';

export const PROFILES_CHANNEL = 'certflow_profiles';

interface DbProfile {
  kind: ProfileKind;
  name: string;
  version: number;
  definition: Record<string, unknown>;
  retired: boolean;
  changed_by: string;
  changed_at: Date;
}

function toRow(r: DbProfile): StoredProfile {
  return {
    kind: r.kind,
    name: r.name,
    version: r.version,
    definition: r.definition,
    retired: r.retired,
    changedBy: r.changed_by,
    changedAt: r.changed_at,
  };
}

/** The latest version of every managed profile, in the order their names were first stored. */
/** The registered EST and CMP clients that name certificate profile `profile` ("EST client x", "CMP client y"). */
export async function clientsUsing(db: Queryable, profile: string): Promise<string[]> {
  const { rows } = await db.query<{ who: string }>(
    `SELECT 'EST client ' || name AS who FROM est_clients WHERE profile = $1 UNION ALL SELECT 'CMP client ' || ref FROM cmp_clients WHERE profile = $1`,
    [profile],
  );
  return rows.map((r) => r.who);
}

export async function latest(db: Queryable): Promise<StoredProfile[]> {
  const { rows } = await db.query<DbProfile>(
    `SELECT DISTINCT ON (kind, name) kind, name, version, definition, retired, changed_by, changed_at,
            min(changed_at) OVER (PARTITION BY kind, name) AS first_at
     FROM managed_profiles ORDER BY kind, name, version DESC`,
  );
  return rows
    .map((r) => ({ row: toRow(r), first: (r as unknown as { first_at: Date }).first_at }))
    .sort((a, b) => a.first.getTime() - b.first.getTime() || a.row.name.localeCompare(b.row.name))
    .map((r) => r.row);
}

/** Every version of one profile, newest first. */
export async function versions(db: Queryable, kind: ProfileKind, name: string): Promise<StoredProfile[]> {
  const { rows } = await db.query<DbProfile>(
    `SELECT kind, name, version, definition, retired, changed_by, changed_at FROM managed_profiles
     WHERE kind = $1 AND name = $2 ORDER BY version DESC`,
    [kind, name],
  );
  return rows.map(toRow);
}

/**
 * Stores the next version of a profile (version = the latest + 1, under an advisory lock
 * per profile so concurrent editors get consecutive versions) and notifies every process.
 * `expectedVersion`, when given, must be the latest version (0: none yet): an edit based on
 * an older version is refused instead of silently overwriting another change.
 */
export async function insertVersion(
  tx: Queryable,
  p: { kind: ProfileKind; name: string; definition: Record<string, unknown>; retired: boolean; changedBy: string },
  expectedVersion?: number,
): Promise<{ version: number } | { conflict: number }> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`certflow:profile:${p.kind}:${p.name}`]);
  const { rows } = await tx.query<{ v: number }>(
    'SELECT coalesce(max(version), 0)::int AS v FROM managed_profiles WHERE kind = $1 AND name = $2',
    [p.kind, p.name],
  );
  const current = rows[0]!.v;
  if (expectedVersion !== undefined && expectedVersion !== current) return { conflict: current };
  const version = current + 1;
  await tx.query(`INSERT INTO managed_profiles (kind, name, version, definition, retired, changed_by) VALUES ($1, $2, $3, $4, $5, $6)`, [
    p.kind,
    p.name,
    version,
    JSON.stringify(p.definition),
    p.retired,
    p.changedBy,
  ]);
  await tx.query('SELECT pg_notify($1, $2)', [PROFILES_CHANNEL, `${p.kind}:${p.name}`]);
  return { version };
}
