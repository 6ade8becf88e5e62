-- The PostgreSQL store: the same tables as SQLite's, shared by every node.
-- Times are unix seconds (BIGINT), as in SQLite. Settings that change shape between
-- versions live in the JSON `data` column, so that adding a setting needs no migration;
-- it is TEXT, as records.rs writes it, because jsonb would refuse a `\u0000` escape
-- that SQLite accepts.
CREATE TABLE realms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE applications (
    realm_id TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (realm_id, client_id)
);

-- The private part only ever sealed under the master key every node is given.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    realm_id TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    sealed_private BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    expires_at BIGINT
);
CREATE INDEX signing_keys_realm ON signing_keys (realm_id);

-- One row per revoked token, only until that token would have expired.
CREATE TABLE revocations (
    jti TEXT PRIMARY KEY,
    realm_id TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expiry ON revocations (expires_at);

-- Refresh-token chains: one row per chain, kept until the chain expires.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    realm_id TEXT NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

-- One-time values (signed credentials, assertion jtis) some node accepted: the
-- SHA-256 of the value, until the value could no longer be accepted anyway.
CREATE TABLE replay_claims (
    key BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX replay_claims_expiry ON replay_claims (expires_at);

-- The change log every node reads to keep its caches in step. Writers take an
-- advisory lock before appending and hold it to commit, so that sequence order is
-- commit order and a reader never steps past an entry not yet visible to it.
CREATE TABLE changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    realm_id TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    at BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
