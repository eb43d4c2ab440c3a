/**
 * Who may hand out which powers (issue 22, item 4). The rule: a principal grants only
 * permissions it holds itself. It applies to everything that gives a role to someone:
 * creating a user, changing a user's role, enabling a user, creating an API token — and to
 * what takes over an account of that role: setting its password, binding a login
 * certificate to it. So a CA Administrator (users:manage, but no key recovery or
 * certificate actions) can manage CA Administrators and Auditors in the console, but cannot
 * make an Officer, or become one. Roles it cannot grant are created on the CA host with
 * `certflow users add`: the CLI (an operator with the database login and the key files) is
 * the root of trust, audited as operator:<os user>. Taking powers away (disable, revoke a
 * token, demote) needs no such check. Every grant, and every refused one, is audited with
 * who granted it.
 */
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import { record, type Actor } from './actor.ts';
import { isRole, MATRIX, ROLE_TITLES, type Permission, type Role } from './roles.ts';

/** The permissions of `role` that a principal of role `granter` does not hold ([] = it may grant it). */
function missingToGrant(granter: string | null, role: Role): Permission[] {
  // The CLI and `certflow start` (the first CA Administrator) run on the CA host: the root of trust.
  if (granter === 'cli' || granter === 'system') return [];
  const held: readonly Permission[] = isRole(granter) ? MATRIX[granter] : [];
  return MATRIX[role].filter((p) => !held.includes(p));
}

/** Whether a holder of `holder` has every permission of `role` (a token's role against its user's). */
export function covers(holder: Role, role: Role): boolean {
  return missingToGrant(holder, role).length === 0;
}

/**
 * Refuses (forbidden, audited as `action` with result denied) when `who` would grant
 * permissions it does not hold by giving `role` — to `object` (a user or a token).
 */
export async function checkGrant(db: Queryable, who: Actor, action: string, object: string, role: Role, what: string): Promise<void> {
  const missing = missingToGrant(who.role, role);
  if (!missing.length) return;
  await record(db, who, action, object, { role, missing, refused: what }, 'denied');
  const granter = isRole(who.role) ? `the ${ROLE_TITLES[who.role]} role` : 'this principal';
  throw new CaError(
    'forbidden',
    `${what}: ${granter} may grant only permissions it holds, and the ${ROLE_TITLES[role]} role also has ${missing.join(', ')}. ` +
      'Roles beyond your own are given on the CA host with `certflow users add`',
    { rule: 'rbac.grant', details: { missing } },
  );
}

/** What a granted role carries, for the audit entry of the grant. */
export function grantDetails(who: Actor, role: Role): Record<string, unknown> {
  return { role, grantedBy: who.actor, permissions: MATRIX[role] };
}
