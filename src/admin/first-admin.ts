/**
 * The first CA Administrator of a dev stack: when no console user exists, `certflow start`
 * creates "admin" (ca-admin) with a random password, prints it once to the terminal
 * (never to a log file), and the console makes them choose their own at the first login.
 * No default password ever; in production use `certflow users add --role ca-admin`.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { openDatabase } from '../db/open.ts';
import * as users from '../db/repos/admin-users.ts';
import { createUser } from './auth.ts';

export async function announceFirstAdmin(config: Config, log: Logger, say: (m: string) => void): Promise<void> {
  const pool = await openDatabase(config, log, { migrate: false });
  try {
    if ((await users.list(pool)).length) return;
    const password = randomBytes(15).toString('base64url');
    await createUser(
      pool,
      { actor: 'certflow-start', role: 'system' },
      { name: 'admin', role: 'ca-admin', password, mustChangePassword: true },
    );
    say(
      `first console user created: "admin" (CA Administrator), one-time password ${password} — shown only now; you choose your own at the first login`,
    );
  } catch (e) {
    // Two starts at once: whoever lost the race says nothing.
    if (!/exists/.test(errorMessage(e))) say(`could not create the first console user: ${errorMessage(e)}`);
  } finally {
    await pool.end();
  }
}
