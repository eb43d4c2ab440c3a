-- Key archival for EST server-side key generation (RFC 7030 4.4): when a label has
-- archiveServerKeys, the generated private key (PKCS#8) is stored encrypted with a fresh
-- AES-256-GCM key, which is itself wrapped (RSA-OAEP-SHA256) under an archive key held by
-- the CA key store. The front end only ever sees the archive key's public half (spki);
-- recovery (`certflow keys recover`) needs the key store.

CREATE TABLE archive_keys (
  key_id       text PRIMARY KEY,              -- id inside the key store
  key_backend  text NOT NULL,                 -- software | pkcs11
  spki         bytea NOT NULL,                -- DER SubjectPublicKeyInfo (RSA)
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE archived_keys (
  serial       text PRIMARY KEY REFERENCES certificates(serial),
  request_id   text NOT NULL,
  key_id       text NOT NULL REFERENCES archive_keys(key_id),
  wrapped_key  bytea NOT NULL,                -- RSA-OAEP-SHA256(AES key)
  iv           bytea NOT NULL,                -- 12 bytes
  ciphertext   bytea NOT NULL,                -- AES-256-GCM(PKCS#8 DER)
  tag          bytea NOT NULL,                -- GCM tag, 16 bytes
  created_at   timestamptz NOT NULL DEFAULT now()
);
