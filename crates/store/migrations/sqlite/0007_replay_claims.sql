-- One-time values (signed credentials, assertion jtis) this store's server accepted:
-- the SHA-256 of the value, until the value could no longer be accepted anyway. Kept
-- in the store so that a restart does not make them acceptable again.
CREATE TABLE replay_claims (
    key BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX replay_claims_expiry ON replay_claims (expires_at);
