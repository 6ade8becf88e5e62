-- Realms, applications and signing keys are small; settings that change shape between
-- versions live in the JSON `data` column so that adding a setting needs no migration.
CREATE TABLE realms (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE applications (
    realm_id TEXT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (realm_id, client_id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    realm_id TEXT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    expires_at INTEGER
);
CREATE INDEX signing_keys_realm ON signing_keys(realm_id);

-- One row per revoked token, only until that token would have expired.
CREATE TABLE revocations (
    jti TEXT PRIMARY KEY NOT NULL,
    realm_id TEXT NOT NULL REFERENCES realms(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_expiry ON revocations(expires_at);

-- The change log every process reads to keep its caches in step.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    realm_id TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    at INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes(at);
