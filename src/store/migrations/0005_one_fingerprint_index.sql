-- The identical-init lookups now name the open states exactly as the partial unique
-- index does, so SQLite uses that index; the plain one only cost a random-key b-tree
-- page write per init.
DROP INDEX kyc_requests_by_fingerprint;
