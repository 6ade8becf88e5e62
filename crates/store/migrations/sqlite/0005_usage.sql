-- Tokens issued per application per hour, added to by each node's periodic flush of its
-- in-memory counts (never a write per token). Kept for 35 days.
CREATE TABLE usage_hourly (
    realm_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (realm_id, client_id, hour)
);
CREATE INDEX usage_hourly_hour ON usage_hourly (hour);
