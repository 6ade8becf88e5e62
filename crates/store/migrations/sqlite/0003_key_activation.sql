-- A key is published when it is created and signs from `activates_at`, so that a
-- rotated-in key is in the JWKS before any token it signed exists. Keys made before
-- this column existed signed from their creation.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;
