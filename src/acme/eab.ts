/**
 * External account binding (RFC 8555 7.3.4): a new-account request proves that its sender
 * holds a MAC key the CA operator handed out (`certflow eab create`). The binding is a JWS
 * over the account key, MACed with HS256 under that key; each key binds one account, once.
 * MAC keys are stored sealed under the secrets key (src/core/secrets.ts), never in clear.
 */
import { flattenedVerify, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { openSecret, sealSecret, secretsKey } from '../core/secrets.ts';
import type { Queryable } from '../db/pool.ts';
import * as eabKeys from '../db/repos/acme-eab.ts';
import { checkPublicJwk, decodeHeader, parseFlattenedJws } from './jws.ts';
import { problem } from './problems.ts';

type SecretsConfig = Pick<Config, 'home' | 'secretsKey'>;

/** RFC 8555 7.3.4 names HS256 as the MAC every server must support; certflow keys are for it only. */
const EAB_ALGORITHM = 'HS256';
/** 256-bit keys: HS256's own strength. */
const EAB_KEY_BYTES = 32;

const purpose = (kid: string) => `acme eab key ${kid}`;

/**
 * A new key id and MAC key, and the key sealed under the secrets key as it is stored
 * (repos/acme-eab.ts insert): the MAC key in clear is shown once and never stored.
 */
export async function newEabKey(config: SecretsConfig): Promise<{ kid: string; hmacKey: Buffer; hmacKeyEnc: string }> {
  const kid = randomBytes(16).toString('base64url');
  const hmacKey = randomBytes(EAB_KEY_BYTES);
  return { kid, hmacKey, hmacKeyEnc: sealSecret(await secretsKey(config), purpose(kid), hmacKey) };
}

/**
 * Seals the EAB keys written in clear before migration 053 (run at server start: SQL
 * cannot, the key is outside the database). Returns how many this call sealed.
 */
export async function sealPlaintextEabKeys(db: Queryable, config: SecretsConfig): Promise<number> {
  const rows = await eabKeys.listPlaintext(db);
  if (!rows.length) return 0;
  const k = await secretsKey(config);
  let sealed = 0;
  for (const r of rows) if (await eabKeys.seal(db, r.kid, sealSecret(k, purpose(r.kid), r.plaintextKey!))) sealed++;
  return sealed;
}

function unauthorized(detail: string) {
  return problem('unauthorized', `external account binding: ${detail}`);
}

/**
 * Checks an externalAccountBinding for a new account of `alias` with key `accountJwk`, sent
 * to `url`; returns the EAB key id. The key is only read here; it is bound to the account
 * (and so used up) in the transaction that creates the account.
 */
export async function verifyExternalAccountBinding(
  db: Queryable,
  config: SecretsConfig,
  binding: unknown,
  a: { alias: string; url: string; accountThumbprint: string },
): Promise<string> {
  const what = 'the externalAccountBinding';
  const jws = parseFlattenedJws(binding, what);
  const header = decodeHeader(jws, what);
  if (header.alg !== EAB_ALGORITHM)
    throw problem('malformed', `${what} must be MACed with ${EAB_ALGORITHM}, not ${JSON.stringify(header.alg)}`);
  if (!jws.signature) throw problem('malformed', `${what} has no MAC`);
  if (typeof header.kid !== 'string' || !header.kid) throw problem('malformed', `${what} has no "kid" (the key id from the CA)`);
  if (header.nonce !== undefined) throw problem('malformed', `${what} must not contain a "nonce"`);
  if (header.url !== a.url) throw unauthorized(`"url" must be ${a.url}`);
  const key = await eabKeys.get(db, header.kid);
  // Unknown, for another directory, used: one answer, so that key ids cannot be probed.
  if (!key || key.alias !== a.alias) throw unauthorized(`unknown key id "${header.kid}" for this directory`);
  if (key.accountId) throw unauthorized(`key id "${header.kid}" has been used already`);
  // Only sealed keys count: a key in clear is sealed at server start, never read as it is.
  if (!key.hmacKeyEnc) throw unauthorized(`key id "${header.kid}" is not usable yet (not sealed)`);
  const hmacKey = openSecret(await secretsKey(config), purpose(key.kid), key.hmacKeyEnc, `the MAC key of EAB key id "${key.kid}"`);
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(jws, new Uint8Array(hmacKey), { algorithms: [EAB_ALGORITHM] }));
  } catch {
    throw unauthorized('the MAC does not verify with the key of this key id');
  }
  await checkBoundKey(payload, a.accountThumbprint);
  return key.kid;
}

/** The binding's payload must be the very key the account is created for. */
async function checkBoundKey(payload: Uint8Array, accountThumbprint: string): Promise<void> {
  let jwk: unknown;
  try {
    jwk = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    throw problem('malformed', 'the payload of the externalAccountBinding is not JSON (it must be the account key)');
  }
  const { thumbprint } = await checkPublicJwk(jwk as JWK);
  if (thumbprint !== accountThumbprint) throw unauthorized('it binds another key than the one this request is signed with');
}
