-- Retention: once a request has ended and its retention has passed (or on an erasure
-- request), its identity data is deleted and the row stays as a tombstone: kid, custId,
-- merchant, state and dates, with the moment of the purge.
ALTER TABLE kyc_requests ADD COLUMN purged_at {int};
-- The sweep reads unpurged requests oldest first (SQLite, without statistics, takes a
-- partial index here only when nothing else matches the state list).
CREATE INDEX kyc_requests_purgeable ON kyc_requests (purged_at, updated_at);
CREATE INDEX webhook_events_by_age ON webhook_events (received_at);
CREATE INDEX sandbox_sessions_by_age ON sandbox_sessions (updated_at);
