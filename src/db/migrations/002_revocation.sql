-- Revocation data, produced by the worker (which holds the CA keys) and served by the
-- front ends: CRLs per CA, and OCSP responses signed ahead of time per certificate (one
-- per certID hash algorithm), refreshed before they expire.

CREATE TABLE crls (
  ca_name         text NOT NULL REFERENCES cas(name),
  crl_number      bigint NOT NULL,
  this_update     timestamptz NOT NULL,
  next_update     timestamptz NOT NULL,
  entries         integer NOT NULL,
  der             bytea NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ca_name, crl_number)
);

CREATE TABLE ocsp_responses (
  serial          text NOT NULL REFERENCES certificates(serial),
  hash_alg        text NOT NULL,            -- certID hash: sha1 | sha256
  cert_status     text NOT NULL,            -- good | revoked (what the response says)
  this_update     timestamptz NOT NULL,
  next_update     timestamptz NOT NULL,
  der             bytea NOT NULL,
  PRIMARY KEY (serial, hash_alg)
);
CREATE INDEX ocsp_responses_next_update_idx ON ocsp_responses (next_update);
