/**
 * The internal contract of the ACME front end: the protocol shell (router.ts: directory,
 * nonces, JWS verification, problem documents, accounts) serves Routes; resource modules
 * (orders.ts: orders, authorizations, challenges, finalize, certificates) provide them.
 */
import type { JWK, ProtectedHeaderParameters } from 'jose';
import type { Context } from 'koa';
import type { Pool } from 'pg';
import type { AcmeAlias, Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import type { AcmeRa } from '../ra/acme.ts';
import type { AcmeAccount } from '../db/repos/acme-accounts.ts';
import type { AccountCache } from './account-cache.ts';

export interface AcmeDeps {
  config: Config;
  pool: Pool;
  /** The registration authority: workflows and the read-model transactions that go with them. */
  ra: AcmeRa;
  log: Logger;
  /** Accounts cached in this process (server); without it every look-up reads Postgres. */
  accountCache?: AccountCache;
}

export type { AcmeAccount };

/** The directory a request came through. */
export interface AcmeDirectory {
  alias: AcmeAlias;
  /** Absolute base URL: https://host:port/acme or https://host:port/acme/<alias>. */
  base: string;
  /** Absolute URL of a resource path below the base, e.g. url(`/order/${id}`). */
  url(path: string): string;
  /** The account URL (kid) of an account id. */
  accountUrl(accountId: string): string;
}

/** A POST whose JWS verified: signature, nonce, url, and (for kid) an existing account. */
export interface VerifiedRequest {
  /** The request URL, equal to the protected header's url. */
  url: string;
  /** Parsed JSON payload; undefined for POST-as-GET (empty payload). */
  payload: unknown;
  postAsGet: boolean;
  protectedHeader: ProtectedHeaderParameters;
  /** kid-signed requests: the account (status 'valid' unless the route allows others). */
  account?: AcmeAccount;
  /** jwk-signed requests: the key in the header. */
  jwk?: JWK;
}

export interface Route {
  method: 'GET' | 'POST';
  /** koa-router path below the directory base, e.g. '/order/:id'. */
  path: string;
  /** POST routes: which JWS key form is required (default 'kid'). */
  auth?: 'kid' | 'jwk' | 'either';
  /** POST-as-GET allowed (empty payload) — and for GET routes: also served to GET. */
  postAsGet?: boolean;
  /** A resource that is only read: a POST with a payload is refused (malformed). */
  readOnly?: boolean;
  /**
   * Sets ctx.status / ctx.body (an object is sent as JSON) / headers (Location, Link,
   * Retry-After). Throws AcmeProblem (problems.ts) or CaError for errors; the shell
   * renders problem documents, adds Replay-Nonce, Link rel="index" and Cache-Control.
   */
  handler(ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void>;
}

/** A Route of the shell itself, with what only the shell's own resources need. */
export interface ShellRoute extends Route {
  /** Served even when the account has not agreed to the current terms (the account resource). */
  termsExempt?: boolean;
}
