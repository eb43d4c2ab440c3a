-- The audit log against its own database owner (issue 16, item 5).
--
-- 1. TRUNCATE bypasses row triggers: every audit table refuses it by a statement trigger
--    (audit_log had one already), and audit_keys becomes append-only like the others.
-- 2. The runtime login of servers and workers is not the owner of these tables: migrations
--    run as the owner, and src/db/roles.ts grants the runtime login only SELECT and INSERT
--    on the audit tables (UPDATE on audit_head, which its trigger moves one entry forward).
--    runtime_grants records what was granted to which login, so that every start does not
--    grant again.
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION certflow_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION certflow_append_only();
CREATE TRIGGER audit_keys_append_only BEFORE UPDATE OR DELETE ON audit_keys
  FOR EACH ROW EXECUTE FUNCTION certflow_append_only();
CREATE TRIGGER audit_keys_no_truncate BEFORE TRUNCATE ON audit_keys
  FOR EACH STATEMENT EXECUTE FUNCTION certflow_append_only();

REVOKE ALL ON audit_log, audit_checkpoints, audit_keys, audit_head FROM PUBLIC;

CREATE TABLE runtime_grants (
  role       text PRIMARY KEY,                 -- the runtime login (current_user of DATABASE_URL)
  plan_hash  text NOT NULL,                    -- sha256 of the tables and privileges granted
  granted_at timestamptz NOT NULL DEFAULT now()
);
