/**
 * HTTP Basic authentication of registered EST clients (RFC 7030 3.2.3, RFC 7617). The EST
 * front end calls authenticateBasic for requests with an Authorization header and
 * clientMayUse before it serves a label; its 401 answers announce charset="UTF-8", which is
 * how parseBasicAuth decodes the credentials.
 */
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as estClients from '../db/repos/est-clients.ts';
import type { EstClientRow } from '../db/repos/est-clients.ts';
import { verifyAgainstNothing, verifyPasswordCached } from './password.ts';

/** RFC 7235 auth-scheme (a token), then optionally whitespace and the credentials. */
const AUTHORIZATION = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ \t]+(.*))?$/s;
/** token68 as base64 (RFC 4648 section 4); padding may be left off. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const CONTROL = /\p{Cc}/u;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(why: string): CaError {
  return new CaError('unauthorized', `malformed HTTP Basic credentials: ${why}`, { rule: 'est.auth.basic' });
}

/**
 * Strict base64: Buffer.from(s, 'base64') skips characters it does not know and ignores
 * trailing bits, so garbage would decode to *something*; re-encoding must give the input.
 */
function decodeBase64(token: string): Buffer {
  if (!BASE64.test(token)) throw malformed('the credentials are not base64');
  const unpadded = token.replace(/=+$/, '');
  if (unpadded.length % 4 === 1 || (token.length !== unpadded.length && token.length % 4 !== 0)) {
    throw malformed('the base64 has a wrong length');
  }
  const bytes = Buffer.from(unpadded, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) throw malformed('the credentials are not canonical base64');
  return bytes;
}

/**
 * The user name and password of an Authorization header (RFC 7617): base64 of
 * "user:password", split at the FIRST colon (a user-id cannot contain one, a password can).
 * undefined when the header is missing or uses another scheme (Bearer, ...); a Basic header
 * that cannot be decoded throws 'unauthorized'.
 */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = AUTHORIZATION.exec(header?.trim() ?? '');
  if (!m || m[1]!.toLowerCase() !== 'basic') return undefined;
  const token = m[2]?.trim();
  if (!token) throw malformed('nothing after "Basic"');
  let decoded: string;
  try {
    decoded = utf8.decode(decodeBase64(token));
  } catch (e) {
    if (CaError.is(e)) throw e;
    throw malformed('the credentials are not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) throw malformed('no ":" between user name and password');
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // RFC 7617 2: neither part may contain control characters.
  if (CONTROL.test(user) || CONTROL.test(password)) throw malformed('control characters in the user name or password');
  return { user, password };
}

const WRONG_CREDENTIALS = 'wrong user name or password';

/**
 * The enabled client that the Authorization header authenticates. Unknown names and wrong
 * passwords get the same message and (through a verification against nothing) the same
 * time, so that neither tells which names are registered. The password is checked before
 * `enabled`, so only someone who knows it learns that a client is disabled.
 */
export async function authenticateBasic(db: Queryable, header: string | undefined): Promise<EstClientRow> {
  const credentials = parseBasicAuth(header);
  if (!credentials) {
    throw new CaError('unauthorized', 'EST requires authentication: HTTP Basic (registered client) or a TLS client certificate', {
      rule: 'est.auth.missing',
    });
  }
  const client = await estClients.get(db, credentials.user);
  const ok = client
    ? await verifyPasswordCached(client.name, credentials.password, client.passwordHash)
    : await verifyAgainstNothing(credentials.password);
  if (!client || !ok) throw new CaError('unauthorized', WRONG_CREDENTIALS, { rule: 'est.auth.wrong' });
  if (!client.enabled) {
    throw new CaError('forbidden', `EST client "${client.name}" is disabled`, {
      rule: 'est.auth.disabled',
      details: { client: client.name },
    });
  }
  return client;
}

/** Whether the client may enroll through `label` ('' = /.well-known/est/); no labels = all. */
export function clientMayUse(client: Pick<EstClientRow, 'labels'>, label: string): boolean {
  return client.labels.length === 0 || client.labels.includes(label);
}

/**
 * Rule for names given to `certflow est-client add`: they are Basic user-ids (no ":",
 * RFC 7617), appear in audit actors ("est:<name>") and in logs, so they are kept to a
 * plain, unambiguous alphabet.
 */
export function checkClientName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(name)) {
    throw new CaError(
      'malformed',
      `EST client name ${JSON.stringify(name)} must be 1-128 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`,
      {
        rule: 'estClient.name',
      },
    );
  }
}
