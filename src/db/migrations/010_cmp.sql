-- CMP (RFC 9810): registered clients (MAC secrets, or a pinned certificate for RAs) and
-- the message log of each transaction, which makes a retried HTTP request (same
-- transactionID and senderNonce) get the very same answer and lets the server reject
-- replayed or out-of-order messages. The issuance state itself is the workflow's
-- (issuance_requests, projected by `cmp-<transactionID>`).

CREATE TABLE cmp_clients (
  ref               text PRIMARY KEY,          -- senderKID (UTF-8) of MAC-protected messages, or a name for a certificate client
  secret_enc        text,                      -- AES-256-GCM of the shared secret under the CMP secrets key (never in clear)
  cert_sha256       text,                      -- a registered signer certificate (hex SHA-256 of its DER), e.g. an RA's
  profile           text,                      -- NULL: the alias's profile
  aliases           text[] NOT NULL DEFAULT '{}', -- aliases it may use ('' = /.well-known/cmp); empty: all
  ra                boolean NOT NULL DEFAULT false, -- may send raVerified POP (a registration authority)
  require_approval  boolean NOT NULL DEFAULT false,
  enabled           boolean NOT NULL DEFAULT true,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((secret_enc IS NULL) <> (cert_sha256 IS NULL))
);
CREATE UNIQUE INDEX cmp_clients_cert_idx ON cmp_clients (cert_sha256) WHERE cert_sha256 IS NOT NULL;

CREATE TABLE cmp_transactions (
  transaction_id    bytea PRIMARY KEY,
  alias             text NOT NULL,
  body_type         text NOT NULL,             -- ir | cr | kur | p10cr | rr | genm (first message)
  client            text NOT NULL,             -- ref:<senderKID> | cert:<serial> | certsha256:<hex>
  protection        text NOT NULL,             -- mac | signature
  request_id        text,                      -- issuance request (= workflow id cmp-<transactionID hex>)
  closed            boolean NOT NULL DEFAULT false,
  last_request_nonce bytea NOT NULL,           -- senderNonce of the latest request
  last_request_hash bytea NOT NULL,            -- sha256 of the latest request's DER
  last_response     bytea,                     -- the answer to it, once made (NULL while being made)
  last_sender_nonce bytea,                     -- our senderNonce in that answer: the next request's recipNonce
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cmp_transactions_updated_idx ON cmp_transactions (updated_at);
