-- Every administrative change: who, what, when, to which realm/application. Kept when
-- the realm or application is gone, so it names them rather than referencing them.
CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    realm TEXT NOT NULL,
    client_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_realm ON audit_log (realm, seq);
