-- Counting an application's live refresh families (the bound on them, issue 11)
-- without reading every family of every application.
CREATE INDEX refresh_families_client ON refresh_families(realm_id, client_id);
