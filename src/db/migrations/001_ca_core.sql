-- CA core: certificate authorities, issued certificates (with the TBS persisted before
-- signing, so that a retried signing activity re-signs the same TBS and never draws a
-- second serial), and an audit log.

CREATE TABLE cas (
  name            text PRIMARY KEY,
  role            text NOT NULL CHECK (role IN ('root', 'issuing')),
  parent          text REFERENCES cas(name),
  key_id          text NOT NULL,            -- id inside the key store
  key_alg         text NOT NULL,            -- ec-p256 | ec-p384 | rsa-2048 | ...
  key_backend     text NOT NULL,            -- software | pkcs11
  subject         text NOT NULL,
  serial          text NOT NULL,            -- hex
  not_before      timestamptz NOT NULL,
  not_after       timestamptz NOT NULL,
  cert_der        bytea NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE certificates (
  serial          text PRIMARY KEY,         -- lower-case hex, 20 bytes, positive
  request_id      text NOT NULL UNIQUE,     -- order / enrollment / operator request: one certificate each
  protocol        text NOT NULL,            -- acme | est | cmp | operator
  ca_name         text NOT NULL REFERENCES cas(name),
  profile         text NOT NULL,
  status          text NOT NULL CHECK (status IN ('signing', 'valid', 'revoked', 'hold')),
  subject         text NOT NULL,
  sans            jsonb NOT NULL DEFAULT '[]',
  not_before      timestamptz NOT NULL,
  not_after       timestamptz NOT NULL,
  tbs_der         bytea NOT NULL,
  cert_der        bytea,                    -- NULL while status = 'signing'
  csr_der         bytea NOT NULL,
  requester       text,                     -- account / client / operator that asked
  replaces        text,                     -- serial of the certificate this one renews
  revoked_at      timestamptz,
  revocation_reason text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  issued_at       timestamptz,
  CHECK ((status = 'signing') = (cert_der IS NULL))
);
CREATE INDEX certificates_status_idx ON certificates (status);
CREATE INDEX certificates_ca_idx ON certificates (ca_name, status);
CREATE INDEX certificates_not_after_idx ON certificates (not_after);

CREATE TABLE audit_log (
  id              bigserial PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  actor           text NOT NULL,            -- operator | worker | acme:<account> | ...
  action          text NOT NULL,            -- ca.create | cert.issue | cert.revoke | ...
  object          text,                     -- serial, CA name, order id
  details         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_object_idx ON audit_log (object);

-- Requests the operator (and later EST/CMP) made; the workflow projects its state here so
-- that `certflow cert issue` and list commands read Postgres, not Temporal.
CREATE TABLE issuance_requests (
  id              text PRIMARY KEY,
  protocol        text NOT NULL,
  workflow_id     text NOT NULL UNIQUE,
  profile         text NOT NULL,
  state           text NOT NULL,            -- pending | signing | issued | failed
  csr_der         bytea NOT NULL,
  requester       text,
  serial          text REFERENCES certificates(serial),
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX issuance_requests_state_idx ON issuance_requests (state);
