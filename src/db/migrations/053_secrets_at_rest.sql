-- ACME secrets at rest (issue 16, item 8): EAB MAC keys and the nonce HMAC key are stored
-- encrypted under the secrets key (src/core/secrets.ts), like CMP clients' secrets.
--
-- EAB keys: the encrypted key goes to hmac_key_enc. Rows written before this keep their
-- plaintext in hmac_key until the first server start seals them (sealPlaintextEabKeys:
-- the key to encrypt with is outside the database, so SQL cannot); a key is never read in
-- clear. The nonce key is replaced instead of sealed: nonces are short-lived, and a
-- plaintext key may have leaked already. Clients holding an old nonce get badNonce once
-- and retry with a new one, as RFC 8555 6.5 has them do.
ALTER TABLE acme_eab_keys ALTER COLUMN hmac_key DROP NOT NULL;
ALTER TABLE acme_eab_keys ADD COLUMN hmac_key_enc text;
ALTER TABLE acme_eab_keys ADD CONSTRAINT acme_eab_keys_key_present CHECK (hmac_key IS NOT NULL OR hmac_key_enc IS NOT NULL);

DELETE FROM acme_nonce_keys;
ALTER TABLE acme_nonce_keys DROP COLUMN hmac_key;
ALTER TABLE acme_nonce_keys ADD COLUMN hmac_key_enc text NOT NULL;
