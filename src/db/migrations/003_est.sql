-- EST: registered clients (HTTP Basic, the administrator's "external applications"), and
-- the enrollment read model: issuance_requests gains what EST (and later CMP) enrollments
-- need — label, kind, a fingerprint of the request (a device re-sends the same CSR while
-- it polls), the certificate it renews, and the operator's approval decision.

CREATE TABLE est_clients (
  name              text PRIMARY KEY,
  password_hash     text NOT NULL,            -- scrypt$N$r$p$salt$hash (base64url), never the password
  profile           text,                     -- NULL: the label's profile
  labels            text[] NOT NULL DEFAULT '{}', -- labels this client may use ('' = /.well-known/est/); empty: all
  require_approval  boolean NOT NULL DEFAULT false,
  enabled           boolean NOT NULL DEFAULT true,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE issuance_requests
  ADD COLUMN label        text,
  ADD COLUMN kind         text,                -- enroll | reenroll | serverkeygen | issue
  ADD COLUMN request_hash text,                -- sha256 (hex) of the request DER
  ADD COLUMN replaces     text,                -- serial of the certificate being renewed
  ADD COLUMN decided_by   text,
  ADD COLUMN decided_at   timestamptz;

DROP INDEX IF EXISTS issuance_requests_state_idx;
CREATE INDEX issuance_requests_state_idx ON issuance_requests (state, created_at);
