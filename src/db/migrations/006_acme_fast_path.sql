-- ACME fast path (issue 8).
--
-- Nonces: issued without a database write (HMAC-authenticated, see src/acme/nonce.ts); a nonce
-- is recorded only when it is used, so that it is accepted once across every server process
-- and across restarts. Rows expire with the nonce lifetime and are purged in the background.
DROP TABLE acme_nonces;
CREATE TABLE acme_nonce_keys (
  id          int PRIMARY KEY,
  hmac_key    bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE acme_used_nonces (
  nonce       bytea PRIMARY KEY,             -- the authenticated part (time + random)
  expires_at  timestamptz NOT NULL
);
CREATE INDEX acme_used_nonces_expires_idx ON acme_used_nonces (expires_at);

-- An authorization created by an order is validated inside that order's workflow while the
-- order is open: owner_order_id names it (NULL: pre-authorization, own workflow).
ALTER TABLE acme_authzs ADD COLUMN owner_order_id text;
-- When the authorization became valid (CAA is checked again at finalize when this is old).
ALTER TABLE acme_authzs ADD COLUMN validated_at timestamptz;
-- Failed validations per account and identifier (rate limit).
CREATE INDEX acme_authzs_failed_idx ON acme_authzs (account_id, identifier_value, updated_at) WHERE status = 'invalid';

-- The open orders that use an authorization (deactivation stops them).
CREATE INDEX acme_orders_authz_ids_idx ON acme_orders USING gin (authz_ids);

-- RFC 9773: a certificate is replaced by at most one order that is not invalid.
CREATE UNIQUE INDEX acme_orders_replaces_uniq ON acme_orders (replaces) WHERE replaces IS NOT NULL AND status <> 'invalid';

-- Registered domains (Public Suffix List) of an order's DNS names, for the per-domain limit.
ALTER TABLE acme_orders ADD COLUMN registered_domains text[] NOT NULL DEFAULT '{}';
CREATE INDEX acme_orders_domains_idx ON acme_orders USING gin (registered_domains);

-- New accounts per client address (rate limit).
ALTER TABLE acme_accounts ADD COLUMN created_ip inet;
CREATE INDEX acme_accounts_ip_idx ON acme_accounts (created_ip, created_at);

-- OCSP pre-signing off the issuance path: issued certificates wait here (same transaction as
-- the certificate) until the worker's background signer has signed their OCSP responses.
CREATE TABLE ocsp_queue (
  serial      text PRIMARY KEY REFERENCES certificates(serial),
  enqueued_at timestamptz NOT NULL DEFAULT now()
);
