-- ACME (RFC 8555). Accounts, nonces and EAB keys are written by the front end; orders,
-- authorizations and challenges are the read model of the order and authz workflows
-- (the workflows are their only writers, through storage activities).

CREATE TABLE acme_nonces (
  value       text PRIMARY KEY,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX acme_nonces_expires_idx ON acme_nonces (expires_at);

CREATE TABLE acme_eab_keys (
  kid         text PRIMARY KEY,
  alias       text NOT NULL,                 -- ACME alias the key is for ('' = default)
  hmac_key    bytea NOT NULL,
  account_id  text,                          -- set when used: single use, bound to that account
  created_at  timestamptz NOT NULL DEFAULT now(),
  used_at     timestamptz
);

CREATE TABLE acme_accounts (
  id          text PRIMARY KEY,
  alias       text NOT NULL,
  jwk         jsonb NOT NULL,                -- public JWK
  thumbprint  text NOT NULL,                 -- RFC 7638 of jwk
  status      text NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
  contact     jsonb NOT NULL DEFAULT '[]',
  tos_agreed  text,                          -- URL of the terms agreed to
  eab_kid     text REFERENCES acme_eab_keys(kid),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (alias, thumbprint)
);
ALTER TABLE acme_eab_keys ADD FOREIGN KEY (account_id) REFERENCES acme_accounts(id);

CREATE TABLE acme_authzs (
  id          text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES acme_accounts(id),
  alias       text NOT NULL,
  identifier_type  text NOT NULL,            -- dns | ip
  identifier_value text NOT NULL,            -- without "*." for wildcards
  wildcard    boolean NOT NULL DEFAULT false,
  status      text NOT NULL,                 -- pending | valid | invalid | deactivated | expired | revoked
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_authzs_reuse_idx ON acme_authzs (account_id, identifier_type, identifier_value, wildcard, status, expires_at);

CREATE TABLE acme_challenges (
  id          text PRIMARY KEY,
  authz_id    text NOT NULL REFERENCES acme_authzs(id),
  type        text NOT NULL,                 -- http-01 | dns-01 | tls-alpn-01
  token       text NOT NULL,
  status      text NOT NULL,                 -- pending | processing | valid | invalid
  validated_at timestamptz,
  error       jsonb,                         -- problem document
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_challenges_authz_idx ON acme_challenges (authz_id);

CREATE TABLE acme_orders (
  id          text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES acme_accounts(id),
  alias       text NOT NULL,
  status      text NOT NULL,                 -- pending | ready | processing | valid | invalid
  identifiers jsonb NOT NULL,                -- [{type, value}] as requested
  authz_ids   text[] NOT NULL,
  not_before  timestamptz,
  not_after   timestamptz,
  expires_at  timestamptz NOT NULL,
  profile     text NOT NULL,                 -- certificate profile
  acme_profile text,                         -- draft-aaron-acme-profiles name, if asked
  replaces    text,                          -- ARI certID (RFC 9773)
  error       jsonb,
  serial      text REFERENCES certificates(serial),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_orders_account_idx ON acme_orders (account_id, created_at DESC, id);
CREATE INDEX acme_orders_status_idx ON acme_orders (status, updated_at);
