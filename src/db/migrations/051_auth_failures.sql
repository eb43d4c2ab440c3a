-- Failed authentications per client address on every front end (console login, EST Basic,
-- CMP MAC) and per console user name (issue 16, items 3 and 7), exact under concurrency and
-- across processes: an attempt takes a slot BEFORE the slow credential check (scrypt, PBM),
-- in one locked row, and gives it back when the credentials were right. So N parallel
-- guesses are N counted attempts, and at most the limit of them reach the check. A key is
-- locked for a while once the limit of failures is reached; attempts refused meanwhile are
-- only counted (refused), and reported in the audit log once, not one entry each.
-- The rules (limit, window, lock) are configuration: src/http/auth-limiter.ts.
CREATE TABLE auth_failures (
  key           text PRIMARY KEY,              -- <front end>:ip:<address> | console:user:<name>
  failures      integer NOT NULL DEFAULT 0,    -- failures in the window, plus attempts being checked now
  window_start  timestamptz NOT NULL DEFAULT now(),
  locked_until  timestamptz,
  refused       integer NOT NULL DEFAULT 0,    -- attempts refused since refused_since, not yet reported
  refused_since timestamptz
);

-- Takes a slot for one attempt: allowed unless the key is locked or its failures (and
-- attempts in flight) fill the window. When an allowed attempt finds refused attempts not
-- yet reported, it returns (and clears) them: the caller writes one audit entry for all.
CREATE FUNCTION certflow_auth_attempt(k text, max_failures int, window_seconds int)
  RETURNS TABLE (allowed boolean, retry_after int, report_refused int, report_since timestamptz)
  LANGUAGE plpgsql
  AS $$
  #variable_conflict use_column
  DECLARE
    r auth_failures;
  BEGIN
    INSERT INTO auth_failures (key) VALUES (k) ON CONFLICT (key) DO NOTHING;
    SELECT * INTO r FROM auth_failures f WHERE f.key = k FOR UPDATE;
    IF r.locked_until IS NOT NULL AND r.locked_until <= now() OR r.window_start <= now() - make_interval(secs => window_seconds) THEN
      r.failures := 0;
      r.window_start := now();
      r.locked_until := NULL;
    END IF;
    IF r.locked_until IS NOT NULL OR r.failures >= max_failures THEN
      UPDATE auth_failures f SET failures = r.failures, window_start = r.window_start, locked_until = r.locked_until,
             refused = f.refused + 1, refused_since = coalesce(f.refused_since, now())
       WHERE f.key = k;
      RETURN QUERY SELECT false,
        greatest(1, ceil(extract(epoch FROM coalesce(r.locked_until, r.window_start + make_interval(secs => window_seconds)) - now()))::int),
        0, NULL::timestamptz;
      RETURN;
    END IF;
    UPDATE auth_failures f SET failures = r.failures + 1, window_start = r.window_start, locked_until = NULL, refused = 0, refused_since = NULL
     WHERE f.key = k;
    RETURN QUERY SELECT true, 0, r.refused, r.refused_since;
  END $$;

-- Settles an allowed attempt: right credentials give the slot back; a failure keeps it and
-- locks the key when the failures reach the limit (locked_now: this failure started the lock).
CREATE FUNCTION certflow_auth_settle(k text, ok boolean, max_failures int, lock_seconds int)
  RETURNS TABLE (locked_now boolean, failures int, locked_until timestamptz)
  LANGUAGE plpgsql
  AS $$
  #variable_conflict use_column
  DECLARE
    r auth_failures;
  BEGIN
    SELECT * INTO r FROM auth_failures f WHERE f.key = k FOR UPDATE;
    IF NOT FOUND THEN
      RETURN QUERY SELECT false, 0, NULL::timestamptz;
      RETURN;
    END IF;
    IF ok THEN
      UPDATE auth_failures f SET failures = greatest(f.failures - 1, 0) WHERE f.key = k;
      RETURN QUERY SELECT false, greatest(r.failures - 1, 0), r.locked_until;
    ELSIF r.failures >= max_failures AND (r.locked_until IS NULL OR r.locked_until <= now()) THEN
      UPDATE auth_failures f SET locked_until = now() + make_interval(secs => lock_seconds) WHERE f.key = k;
      RETURN QUERY SELECT true, r.failures, now() + make_interval(secs => lock_seconds);
    ELSE
      RETURN QUERY SELECT false, r.failures, r.locked_until;
    END IF;
  END $$;

DROP TABLE admin_login_failures;
