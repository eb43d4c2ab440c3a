-- CA lifecycle (issue 19). A CA (table cas) is a name with a place in the hierarchy and a
-- status; its keys and certificates are its generations (table ca_keys): the first one is
-- made when the CA is created or imported, every rollover adds one. Issuance uses the
-- active generation (the newest whose activate_at has come); every generation keeps
-- signing CRLs and OCSP responses for the certificates it issued.

CREATE TABLE ca_keys (
  ca_name         text NOT NULL REFERENCES cas(name),
  generation      integer NOT NULL CHECK (generation >= 1),
  -- Which key of the parent signed this generation's certificate (NULL: self-signed, or a
  -- parent outside certflow's key stores).
  parent_generation integer,
  key_id          text NOT NULL,            -- id inside the key store ('' when certflow holds no key)
  key_alg         text NOT NULL,
  key_backend     text NOT NULL CHECK (key_backend IN ('software', 'pkcs11', 'none')),
  spki            bytea,                    -- the key's SubjectPublicKeyInfo (known before the certificate)
  subject         text NOT NULL,
  serial          text,                     -- hex; NULL until the certificate exists
  not_before      timestamptz,
  not_after       timestamptz,
  cert_der        bytea,                    -- NULL while an external CA's CSR waits for its certificate
  tbs_der         bytea,                    -- a certificate certflow signs is stored as TBS first (one serial)
  csr_der         bytea,                    -- PKCS#10 of an externally signed generation
  activate_at     timestamptz NOT NULL DEFAULT now(),
  -- Root key rollover (RFC 9810 4.4): the new key certified by the old one and the old by the new.
  new_with_old    bytea,
  old_with_new    bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ca_name, generation),
  CHECK ((cert_der IS NULL) = (serial IS NULL)),
  CHECK ((cert_der IS NULL) = (not_after IS NULL))
);
-- A key belongs to one CA generation.
CREATE UNIQUE INDEX ca_keys_key_idx ON ca_keys (key_backend, key_id) WHERE key_backend <> 'none';

INSERT INTO ca_keys (ca_name, generation, parent_generation, key_id, key_alg, key_backend, subject, serial, not_before, not_after,
                     cert_der, activate_at, created_at)
SELECT name, 1, CASE WHEN parent IS NULL THEN NULL ELSE 1 END, key_id, key_alg, key_backend, subject, serial, not_before, not_after,
       cert_der, created_at, created_at
FROM cas;

ALTER TABLE cas
  DROP COLUMN key_id,
  DROP COLUMN key_alg,
  DROP COLUMN key_backend,
  DROP COLUMN subject,
  DROP COLUMN serial,
  DROP COLUMN not_before,
  DROP COLUMN not_after,
  DROP COLUMN cert_der,
  -- pending: created, its certificate not there yet (an external CA's CSR waits for signing)
  ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('pending', 'active', 'revoked')),
  -- A CA certflow knows (for chains) but holds no key of: the outside root of an externally signed CA.
  ADD COLUMN external boolean NOT NULL DEFAULT false,
  ADD COLUMN revoked_at timestamptz,
  ADD COLUMN revocation_reason text,
  -- Name of the CRL profile (managed profiles, kind 'crl'); NULL: the revocation settings.
  ADD COLUMN crl_profile text,
  -- The workflow that created the CA: a retried activity of that workflow finds its own row.
  ADD COLUMN created_by_workflow text;

-- Which generation of its CA signed a certificate (the key that signs its OCSP responses and CRLs).
ALTER TABLE certificates ADD COLUMN ca_generation integer NOT NULL DEFAULT 1;
ALTER TABLE certificates ADD FOREIGN KEY (ca_name, ca_generation) REFERENCES ca_keys (ca_name, generation);

-- CRLs per generation; numbers stay unique (and increasing) per CA across its generations.
-- A delta CRL (RFC 5280 5.2.4) names the complete CRL it is based on.
ALTER TABLE crls ADD COLUMN generation integer NOT NULL DEFAULT 1;
ALTER TABLE crls ADD COLUMN delta_base bigint;
CREATE INDEX crls_generation_idx ON crls (ca_name, generation, crl_number DESC);

-- Managed profiles: certificate, key and CRL profiles edited in the console / admin API /
-- `certflow profiles apply`, versioned (a change is a new version; the configuration file
-- is version 0, the seed). A retired profile's last version has retired = true.
CREATE TABLE managed_profiles (
  kind            text NOT NULL CHECK (kind IN ('certificate', 'key', 'crl')),
  name            text NOT NULL,
  version         integer NOT NULL CHECK (version >= 1),
  definition      jsonb NOT NULL,
  retired         boolean NOT NULL DEFAULT false,
  changed_by      text NOT NULL,
  changed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name, version)
);
