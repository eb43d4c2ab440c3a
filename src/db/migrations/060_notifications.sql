-- Notifications (issue 20): what certflow tells people, and every attempt to tell them.
--
-- A notice is one thing worth telling, once: its id is the thing and the threshold crossed
-- ("certificate.expiring:<serial>:7d"), so a sweep that finds it again, or runs twice after
-- a crash, adds nothing. Its deliveries (one per channel and recipient) are made in the same
-- transaction as the notice and never again; each is carried out by a workflow with a fixed
-- id (notify-<delivery id>), every attempt is recorded, and after the last failed attempt the
-- delivery is dead-lettered (status 'dead') for the console and `certflow notifications list`.

CREATE TABLE notices (
  id            text PRIMARY KEY,
  type          text NOT NULL,               -- certificate.expiring | ca.expiring | crl.expiring | request.stuck | audit.verification_failed | test
  subject       text NOT NULL,               -- one line for a person (the e-mail subject)
  data          jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notices_created_idx ON notices (created_at DESC);

CREATE TABLE notice_deliveries (
  id            text PRIMARY KEY,            -- deterministic: hash of (notice, channel, target)
  notice_id     text NOT NULL REFERENCES notices(id),
  channel       text NOT NULL CHECK (channel IN ('email', 'webhook')),
  target        text NOT NULL,               -- an e-mail address or a webhook URL
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz,
  UNIQUE (notice_id, channel, target)
);
CREATE INDEX notice_deliveries_open_idx ON notice_deliveries (created_at) WHERE status = 'pending';
CREATE INDEX notice_deliveries_status_idx ON notice_deliveries (status, updated_at DESC);

CREATE TABLE notice_attempts (
  delivery_id   text NOT NULL REFERENCES notice_deliveries(id),
  attempt       integer NOT NULL,
  at            timestamptz NOT NULL DEFAULT now(),
  ok            boolean NOT NULL,
  detail        text NOT NULL,               -- "HTTP 204", "250 queued", or the error
  PRIMARY KEY (delivery_id, attempt)
);

-- Where expiry notices reach the requester of an EST or CMP certificate (ACME: the
-- account's contact).
ALTER TABLE est_clients ADD COLUMN email text;
ALTER TABLE cmp_clients ADD COLUMN email text;
