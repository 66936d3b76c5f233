-- The audit trail: who read a person's identity or changed what, and when. Entries are
-- only ever appended; each carries a keyed hash over the previous entry's hash, its own
-- number and its fields, so an entry changed, removed or moved breaks the chain there
-- (`paycc audit verify`). Ids and words only, never identity data.
CREATE TABLE audit_log (
    seq         {int} PRIMARY KEY,
    at          {int} NOT NULL,
    -- An API client id, `cli:USER@HOST`, or `paycc` for the server's own acts.
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    kid         TEXT,
    cust_id     TEXT,
    -- The API client concerned: the reader, or the client an operator changed.
    client_id   TEXT,
    request_id  TEXT,
    outcome     TEXT NOT NULL,
    chain       {bytes} NOT NULL
);
CREATE INDEX audit_log_by_kid ON audit_log (kid, seq);
CREATE INDEX audit_log_by_client ON audit_log (client_id, seq);
CREATE INDEX audit_log_by_time ON audit_log (at);
