-- Issue 21: one definition of a stuck request (src/db/repos/stuck.ts) needs to know since
-- when a request has made no progress, and why an ACME order's signing does not finish.

-- When the request last made progress: entered a new state. A server fault's cycle
-- (stalled -> signing again -> stalled) is no progress, and a state projected again
-- (a retried projection) neither; updated_at still moves with every projection.
ALTER TABLE issuance_requests ADD COLUMN progress_at timestamptz;
UPDATE issuance_requests SET progress_at = updated_at;
ALTER TABLE issuance_requests ALTER COLUMN progress_at SET DEFAULT now(), ALTER COLUMN progress_at SET NOT NULL;

-- The last server fault of the order's signing activity (HSM gone, database down), while
-- the activity retries it; the order stays `processing` meanwhile.
ALTER TABLE acme_orders ADD COLUMN signing_fault text;
