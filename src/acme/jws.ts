/**
 * Request authentication of ACME (RFC 8555 6.2-6.5 on RFC 7515): every POST is a JWS in the
 * flattened JSON serialization whose protected header names the key (jwk, or kid = account
 * URL), a replay nonce and the request URL. This module checks all of it and answers each
 * failure with the problem type RFC 8555 prescribes; signature math is jose's.
 */
import { calculateJwkThumbprint, flattenedVerify, type JWK, type ProtectedHeaderParameters } from 'jose';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { AcmeAccount, VerifiedRequest } from './api.ts';
import { AcmeProblem, badSignatureAlgorithm, problem } from './problems.ts';

/** Signature algorithms accepted for account keys: asymmetric only ("none" and MACs never). */
export const JWS_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

const JOSE_CONTENT_TYPE = 'application/jose+json';

/** Which key each algorithm needs; a mismatch would only fail later, less clearly. */
const KEY_FOR_ALG: Record<JwsAlgorithm, { kty: string; crv?: string }> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  RS256: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

/** Coordinate length (bytes) of each supported curve. */
const CURVE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, Ed25519: 32 };

const MIN_RSA_BITS = 2048;
/** Larger keys only cost verification time; no ACME client makes them. */
const MAX_RSA_BITS = 8192;

/** JWK members that carry private key material (RFC 7518 6.2.2, 6.3.2, 6.4; RFC 8037). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/** A flattened JWS as received, before any check of its content. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function malformed(detail: string, status?: number): AcmeProblem {
  return problem('malformed', detail, status ? { status } : undefined);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- structure -----------------------------------------------------------------------

/**
 * The flattened JWS in a parsed JSON value. The compact serialization (a string) and the
 * general one ("signatures") are refused (RFC 8555 6.2), as is an unprotected header:
 * everything the server relies on must be signed.
 */
export function parseFlattenedJws(value: unknown, what = 'the request body'): FlattenedJws {
  if (typeof value === 'string') throw malformed(`${what} is a compact JWS; ACME requires the flattened JSON serialization`);
  if (!isObject(value)) throw malformed(`${what} is not a JWS in the flattened JSON serialization`);
  if ('signatures' in value) throw malformed(`${what} is a JWS in the general JSON serialization; ACME requires the flattened one`);
  if ('header' in value) throw malformed(`${what} has an unprotected header; ACME allows only the protected header`);
  const { protected: prot, payload, signature } = value;
  for (const [name, v] of [
    ['protected', prot],
    ['payload', payload],
    ['signature', signature],
  ] as const) {
    if (typeof v !== 'string' || !BASE64URL.test(v)) throw malformed(`${what}: "${name}" must be a base64url string`);
  }
  if (!prot) throw malformed(`${what} has no protected header`);
  // An empty signature is checked after the algorithm (checkAlgorithm): alg "none" has
  // one (RFC 7518 3.6), and its answer is badSignatureAlgorithm (RFC 8555 6.2).
  return { protected: prot as string, payload: payload as string, signature: signature as string };
}

/** The protected header as a JSON object; `crit` and `b64` are refused (no ACME extension uses them). */
export function decodeHeader(jws: FlattenedJws, what = 'the JWS'): ProtectedHeaderParameters {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(jws.protected, 'base64url')));
  } catch {
    throw malformed(`the protected header of ${what} is not base64url-encoded JSON`);
  }
  if (!isObject(header)) throw malformed(`the protected header of ${what} is not a JSON object`);
  if ('crit' in header || 'b64' in header)
    throw malformed(`the protected header of ${what} uses "crit" or "b64", which ACME does not support`);
  return header as ProtectedHeaderParameters;
}

/**
 * The header's alg when it is one of `allowed` (badSignatureAlgorithm listing them
 * otherwise: "none" and MACs among others), and the JWS has a signature (malformed otherwise).
 */
function checkAlgorithm<A extends string>(jws: FlattenedJws, alg: unknown, allowed: readonly A[], what = 'the request body'): A {
  if (alg === undefined) throw malformed('the protected header has no "alg"');
  if (typeof alg !== 'string' || !allowed.includes(alg as A)) {
    throw badSignatureAlgorithm(`signature algorithm ${JSON.stringify(alg)} is not supported; use one of ${allowed.join(', ')}`, allowed);
  }
  if (!jws.signature) throw malformed(`${what} has no signature`);
  return alg as A;
}

// ---- keys ------------------------------------------------------------------------------

function b64uBytes(v: unknown, name: string): Buffer {
  if (typeof v !== 'string' || !v || !BASE64URL.test(v)) throw problem('badPublicKey', `the key's "${name}" must be a base64url string`);
  return Buffer.from(v, 'base64url');
}

function rsaBits(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}

/** Only the members RFC 7638 hashes: what is stored, compared and thumbprinted. */
function canonicalJwk(jwk: Record<string, unknown>): JWK {
  const kty = jwk.kty;
  if (kty === 'EC') {
    const crv = String(jwk.crv);
    const size = CURVE_BYTES[crv];
    if (!size || crv === 'Ed25519')
      throw problem('badPublicKey', `EC curve ${JSON.stringify(jwk.crv)} is not supported; use P-256, P-384 or P-521`);
    if (b64uBytes(jwk.x, 'x').length !== size || b64uBytes(jwk.y, 'y').length !== size) {
      throw problem('badPublicKey', `the ${crv} key's coordinates must be ${size} bytes long`);
    }
    return { kty, crv, x: jwk.x as string, y: jwk.y as string };
  }
  if (kty === 'RSA') {
    const bits = rsaBits(b64uBytes(jwk.n, 'n'));
    b64uBytes(jwk.e, 'e');
    if (bits < MIN_RSA_BITS) throw problem('badPublicKey', `the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    if (bits > MAX_RSA_BITS) throw problem('badPublicKey', `the RSA key has ${bits} bits; at most ${MAX_RSA_BITS} are supported`);
    return { kty, n: jwk.n as string, e: jwk.e as string };
  }
  if (kty === 'OKP') {
    if (jwk.crv !== 'Ed25519') throw problem('badPublicKey', `OKP subtype ${JSON.stringify(jwk.crv)} is not supported; use Ed25519`);
    if (b64uBytes(jwk.x, 'x').length !== 32) throw problem('badPublicKey', 'the Ed25519 key must be 32 bytes long');
    return { kty, crv: 'Ed25519', x: jwk.x as string };
  }
  throw problem(
    'badPublicKey',
    `key type ${JSON.stringify(kty)} is not supported; use EC (P-256, P-384, P-521), RSA (>= ${MIN_RSA_BITS} bits) or Ed25519`,
  );
}

/**
 * A public key from a JWS "jwk" header (or a key-change/EAB payload): refused when it
 * carries private members (a client that sends its private key has a bug worth knowing
 * about), when its type or size is unsupported, or when it is not a valid key (an EC point
 * off the curve). Returns the canonical public JWK and its RFC 7638 thumbprint.
 */
export async function checkPublicJwk(value: unknown): Promise<{ jwk: JWK; thumbprint: string }> {
  if (!isObject(value)) throw malformed('"jwk" must be a JSON Web Key object');
  const leaked = PRIVATE_MEMBERS.filter((m) => m in value);
  if (leaked.length) throw malformed(`"jwk" contains private key material (${leaked.join(', ')}); send the public key only`);
  const jwk = canonicalJwk(value);
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw problem('badPublicKey', `"jwk" is not a valid ${jwk.kty} public key: ${(e as Error).message}`);
  }
  return { jwk, thumbprint: await calculateJwkThumbprint(jwk, 'sha256') };
}

/** RFC 7638 thumbprint (base64url SHA-256) of a public JWK. */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

function checkKeyFitsAlgorithm(jwk: JWK, alg: JwsAlgorithm): void {
  const need = KEY_FOR_ALG[alg];
  if (jwk.kty !== need.kty || (need.crv && jwk.crv !== need.crv)) {
    const have = jwk.crv ? `${jwk.kty} ${jwk.crv}` : String(jwk.kty);
    throw badSignatureAlgorithm(`algorithm ${alg} needs a key of type ${need.crv ?? need.kty}, not ${have}`, JWS_ALGORITHMS);
  }
}

/** Verifies the signature and returns the payload bytes. */
async function verifySignature(jws: FlattenedJws, jwk: JWK, alg: string, what = 'the JWS'): Promise<Uint8Array> {
  try {
    const { payload } = await flattenedVerify(jws, jwk, { algorithms: [alg] });
    return payload;
  } catch {
    throw malformed(`the signature of ${what} does not verify`);
  }
}

/** The payload: undefined when empty (POST-as-GET, RFC 8555 6.3), else a JSON object. */
function parsePayload(bytes: Uint8Array, what = 'the JWS payload'): Record<string, unknown> | undefined {
  if (bytes.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw malformed(`${what} is not valid JSON`);
  }
  if (!isObject(value)) throw malformed(`${what} must be a JSON object`);
  return value;
}

// ---- requests ---------------------------------------------------------------------------

export type JwsAuth = 'kid' | 'jwk' | 'either';

export interface JwsRequestInput {
  /** The URL the request was sent to, absolute; must equal the header's "url". */
  url: string;
  contentType: string | undefined;
  body: Uint8Array;
  /** Which key form the resource requires. */
  auth: JwsAuth;
  /** The account id a kid names when it is an account URL of this directory; undefined otherwise. */
  accountIdOf(kid: string): string | undefined;
  /** Accept accounts that are not 'valid' (no resource does today; RFC 8555 7.3.6). */
  allowInactiveAccount?: boolean;
}

export interface JwsVerifierDeps {
  /** true exactly once per issued, unexpired nonce. */
  consumeNonce(nonce: string): Promise<boolean>;
  /** The account with this id, whatever its status; null if none. */
  findAccount(id: string): Promise<AcmeAccount | null>;
}

function parseBody(input: JwsRequestInput): unknown {
  // RFC 8555 6.2: "application/jose+json"; parameters (charset) are tolerated.
  const type = (input.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== JOSE_CONTENT_TYPE) {
    throw malformed(`Content-Type must be ${JOSE_CONTENT_TYPE}, not ${input.contentType ? `"${input.contentType}"` : 'missing'}`, 415);
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(input.body));
  } catch {
    throw malformed('the request body is not JSON');
  }
}

/** The key a request is signed with: its jwk, or the key of the account its kid names. */
async function requestKey(
  header: ProtectedHeaderParameters,
  input: JwsRequestInput,
  deps: JwsVerifierDeps,
): Promise<{ jwk: JWK; thumbprint?: string; account?: AcmeAccount }> {
  const hasJwk = header.jwk !== undefined;
  const hasKid = header.kid !== undefined;
  if (hasJwk === hasKid) throw malformed('the protected header must contain exactly one of "jwk" and "kid"');
  if (hasJwk && input.auth === 'kid') throw malformed('this resource requires a JWS signed with an account key ("kid"), not "jwk"');
  if (hasKid && input.auth === 'jwk') throw malformed('this resource requires a JWS with the public key in "jwk", not "kid"');
  if (hasJwk) return checkPublicJwk(header.jwk);
  if (typeof header.kid !== 'string') throw malformed('"kid" must be an account URL');
  const id = input.accountIdOf(header.kid);
  const account = id === undefined ? null : await deps.findAccount(id);
  if (!account) throw problem('accountDoesNotExist', `no account at ${header.kid} in this directory`);
  return { jwk: account.jwk, account };
}

/**
 * Checks a POST request end to end: serialization, algorithm, header fields, key,
 * signature, nonce, URL and account status, then parses the payload. Order: cheap
 * structural checks first; the nonce is used only once the signature verifies (so that
 * nobody without the key can burn it), and the URL is compared after that.
 */
export async function verifyRequest(input: JwsRequestInput, deps: JwsVerifierDeps): Promise<VerifiedRequest> {
  const jws = parseFlattenedJws(parseBody(input));
  const header = decodeHeader(jws);
  const alg = checkAlgorithm(jws, header.alg, JWS_ALGORITHMS);
  if (typeof header.nonce !== 'string' || !header.nonce) throw problem('badNonce', 'the protected header has no "nonce"');
  if (typeof header.url !== 'string' || !header.url) throw malformed('the protected header has no "url"');
  const key = await requestKey(header, input, deps);
  checkKeyFitsAlgorithm(key.jwk, alg);
  const payloadBytes = await verifySignature(jws, key.jwk, alg);
  if (!(await deps.consumeNonce(header.nonce))) {
    throw problem('badNonce', "the nonce is unknown, used or expired; use the one in this response's Replay-Nonce header");
  }
  if (header.url !== input.url) throw problem('unauthorized', `the JWS was signed for ${header.url}, but sent to ${input.url}`);
  if (key.account && key.account.status !== 'valid' && !input.allowInactiveAccount) {
    throw problem('unauthorized', `account ${key.account.id} is ${key.account.status}`);
  }
  const payload = parsePayload(payloadBytes);
  const verified: VerifiedRequest = { url: input.url, payload, postAsGet: payload === undefined, protectedHeader: header };
  if (key.account) verified.account = key.account;
  else verified.jwk = key.jwk;
  return verified;
}

/**
 * The inner JWS of a key change (RFC 8555 7.3.5): signed by the new key, given in its
 * "jwk"; same "url" as the outer JWS; a nonce is allowed but not checked (the outer JWS
 * carries the one that counts).
 */
export async function verifyInnerJws(
  value: unknown,
  outerUrl: string,
): Promise<{ jwk: JWK; thumbprint: string; payload: Record<string, unknown> }> {
  const what = 'the inner JWS of the key change';
  const jws = parseFlattenedJws(value, what);
  const header = decodeHeader(jws, what);
  const alg = checkAlgorithm(jws, header.alg, JWS_ALGORITHMS, what);
  if (header.kid !== undefined) throw malformed(`${what} must name the new key in "jwk", not "kid"`);
  if (header.jwk === undefined) throw malformed(`${what} has no "jwk" (the new account key)`);
  const { jwk, thumbprint } = await checkPublicJwk(header.jwk);
  checkKeyFitsAlgorithm(jwk, alg);
  const payload = parsePayload(await verifySignature(jws, jwk, alg, what), `the payload of ${what}`);
  if (header.url !== outerUrl)
    throw malformed(`${what} has "url" ${JSON.stringify(header.url)}; it must equal the outer JWS's ${outerUrl}`);
  if (!payload) throw malformed(`${what} has an empty payload; it must be {"account", "oldKey"}`);
  return { jwk, thumbprint, payload };
}
