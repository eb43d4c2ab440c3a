-- Operator console (issue 10).
--
-- 1. The audit log becomes append-only and hash-chained. Every entry gets a sequence
--    number without gaps (seq), the hash of its canonical content (content_hash), the hash
--    of the entry before it (prev_hash) and its own chain hash
--    hash = sha256_hex(prev_hash || ':' || content_hash). The head of the chain lives in
--    the one-row table audit_head: an append updates that row (which serializes appenders
--    and, under READ COMMITTED, always sees the latest committed head) and inserts the
--    entry in the same statement (src/db/repos/audit.ts). UPDATE, DELETE and TRUNCATE of
--    audit_log are refused by triggers; whoever gets past them (a superuser disabling the
--    triggers) breaks the chain, which `certflow audit verify` recomputes in JS.
-- 2. Checkpoints: the worker signs the head (seq, hash) with the audit key of the CA key
--    store (public half in audit_keys), so a log rewritten wholesale is detected too.
-- 3. The console's users, sessions, API tokens and login throttling.

-- The canonical content of an entry: each field as "<octets>:<value>" ("~" for NULL),
-- joined with "|". The verifier (JS) builds the same string from the stored columns.
CREATE FUNCTION certflow_audit_field(v text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT CASE WHEN v IS NULL THEN '~' ELSE octet_length(v)::text || ':' || v END $$;

CREATE FUNCTION certflow_audit_canonical(seq bigint, at timestamptz, actor text, role text, action text,
                                         target text, result text, request_id text, details jsonb) RETURNS text
  LANGUAGE sql STABLE
  AS $$
    SELECT 'certflow-audit-1'
      || '|' || certflow_audit_field(seq::text)
      || '|' || certflow_audit_field(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      || '|' || certflow_audit_field(actor)
      || '|' || certflow_audit_field(role)
      || '|' || certflow_audit_field(action)
      || '|' || certflow_audit_field(target)
      || '|' || certflow_audit_field(result)
      || '|' || certflow_audit_field(request_id)
      || '|' || certflow_audit_field(details::text)
  $$;

CREATE FUNCTION certflow_sha256_hex(v text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT encode(sha256(convert_to(v, 'UTF8')), 'hex') $$;

ALTER TABLE audit_log
  ADD COLUMN seq          bigint,
  ADD COLUMN role         text,                -- ca-admin | officer | ... | cli | client | system
  ADD COLUMN result       text NOT NULL DEFAULT 'ok', -- ok | failed | denied
  ADD COLUMN request_id   text,                -- HTTP request / issuance request / workflow id
  ADD COLUMN dedup_key    text,                -- exactly-once key of entries written by activities
  ADD COLUMN prev_hash    text,
  ADD COLUMN content_hash text,
  ADD COLUMN hash         text;

-- Times with millisecond precision: what a JS Date holds, so the verifier rebuilds them exactly.
ALTER TABLE audit_log ALTER COLUMN at SET DEFAULT date_trunc('milliseconds', clock_timestamp());

CREATE TABLE audit_head (
  id         int PRIMARY KEY CHECK (id = 1),
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  prev_hash  text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Entries written before this migration join the chain in their id order.
DO $$
DECLARE
  r record;
  h text := repeat('0', 64);
  n bigint := 0;
  c text;
BEGIN
  UPDATE audit_log SET at = date_trunc('milliseconds', at);
  FOR r IN SELECT id, at, actor, action, object, details FROM audit_log ORDER BY id LOOP
    n := n + 1;
    c := certflow_sha256_hex(certflow_audit_canonical(n, r.at, r.actor, NULL, r.action, r.object, 'ok', NULL, r.details));
    UPDATE audit_log SET seq = n, prev_hash = h, content_hash = c, hash = certflow_sha256_hex(h || ':' || c)
      WHERE id = r.id RETURNING hash INTO h;
  END LOOP;
  INSERT INTO audit_head (id, seq, hash) VALUES (1, n, h);
END $$;

ALTER TABLE audit_log
  ALTER COLUMN seq SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN content_hash SET NOT NULL,
  ALTER COLUMN hash SET NOT NULL,
  ADD CONSTRAINT audit_log_seq_key UNIQUE (seq),
  ADD CONSTRAINT audit_log_dedup_key_key UNIQUE (dedup_key);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION certflow_append_only() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
  END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION certflow_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION certflow_append_only();

-- The head only moves forward, one entry at a time.
CREATE FUNCTION certflow_audit_head_forward() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq <> OLD.seq + 1 OR NEW.prev_hash IS DISTINCT FROM OLD.hash THEN
      RAISE EXCEPTION 'audit_head only advances by one entry' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END $$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
  FOR EACH ROW EXECUTE FUNCTION certflow_audit_head_forward();

-- The audit key's public half (the private key stays in the CA key store of the worker).
CREATE TABLE audit_keys (
  key_id      text PRIMARY KEY,
  key_backend text NOT NULL,                   -- software | pkcs11
  key_alg     text NOT NULL,                   -- ec-p256
  spki        bytea NOT NULL,                  -- DER SubjectPublicKeyInfo
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Signed checkpoints of the chain head (message: see checkpointMessage in audit.ts).
CREATE TABLE audit_checkpoints (
  seq         bigint PRIMARY KEY,
  hash        text NOT NULL,
  signed_at   timestamptz NOT NULL,
  key_id      text NOT NULL REFERENCES audit_keys(key_id),
  sign_alg    text NOT NULL,
  signature   bytea NOT NULL
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION certflow_append_only();

-- Console users (local accounts; optionally bound to a TLS client certificate of this CA).
CREATE TABLE admin_users (
  name                 text PRIMARY KEY,
  role                 text NOT NULL CHECK (role IN ('ca-admin', 'admin', 'officer', 'auditor', 'operator')),
  password_hash        text,                    -- scrypt$N$r$p$salt$hash; NULL: certificate login only
  cert_serial          text,                    -- serial (hex) of the client certificate that logs in as this user
  enabled              boolean NOT NULL DEFAULT true,
  must_change_password boolean NOT NULL DEFAULT false,
  created_by           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  last_login_at        timestamptz
);
CREATE UNIQUE INDEX admin_users_cert_serial_idx ON admin_users (cert_serial) WHERE cert_serial IS NOT NULL;

CREATE TABLE admin_sessions (
  id_hash      text PRIMARY KEY,                -- sha256 (hex) of the cookie value; never the value
  user_name    text NOT NULL REFERENCES admin_users(name),
  csrf_token   text NOT NULL,
  auth_method  text NOT NULL,                   -- password | certificate
  client_ip    text,
  user_agent   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL             -- absolute end, whatever the activity
);
CREATE INDEX admin_sessions_user_idx ON admin_sessions (user_name);

-- API tokens for automation: each bound to one role; only a hash of the secret is stored.
CREATE TABLE admin_tokens (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('ca-admin', 'admin', 'officer', 'auditor', 'operator')),
  secret_hash  text NOT NULL,                   -- sha256 (hex) of the 256-bit secret
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);

-- Failed logins per user name and per client address (login throttling).
CREATE TABLE admin_login_failures (
  key          text PRIMARY KEY,                -- user:<name> | ip:<address>
  failures     integer NOT NULL,
  first_at     timestamptz NOT NULL,
  locked_until timestamptz
);
