-- Every administrative change: who, what, when, to which realm/application. Kept when
-- the realm or application is gone, so it names them rather than referencing them.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    realm TEXT NOT NULL,
    client_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_realm ON audit_log (realm, seq);
