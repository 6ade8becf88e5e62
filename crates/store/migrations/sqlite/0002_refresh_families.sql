-- Refresh-token chains (only for applications with refresh tokens): one row per chain,
-- kept until the chain expires.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY NOT NULL,
    realm_id TEXT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_families_expiry ON refresh_families(expires_at);
