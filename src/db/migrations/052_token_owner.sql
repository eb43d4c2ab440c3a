-- API tokens belong to a console user (issue 16, item 7; issue 22, item 4): a token works
-- only while its user is enabled and still holds every permission of the token's role, and
-- tokens have an end. Tokens made in the console by a user belong to that user; tokens
-- made with the CLI before this have no user and stop working (make new ones with
-- `certflow tokens create --user`). Tokens that never expired expire 90 days from now.
ALTER TABLE admin_tokens ADD COLUMN owner text REFERENCES admin_users(name);
UPDATE admin_tokens t SET owner = substr(t.created_by, 6)
 WHERE t.created_by LIKE 'user:%' AND EXISTS (SELECT 1 FROM admin_users u WHERE u.name = substr(t.created_by, 6));
UPDATE admin_tokens SET expires_at = now() + interval '90 days' WHERE expires_at IS NULL AND revoked_at IS NULL;
CREATE INDEX admin_tokens_owner_idx ON admin_tokens (owner);
