-- Searching a realm's applications by name or client_id (ILIKE '%q%') reads every row
-- of the realm; this index holds the columns the search reads, so the scan can stay in
-- the index (an index-only scan) instead of every row's JSON.
CREATE INDEX applications_search ON applications (realm_id, client_id, name);
