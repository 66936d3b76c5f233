-- When paycc last asked the provider about a request (status reads, the reconciler).
ALTER TABLE kyc_requests ADD COLUMN checked_at {int};
CREATE INDEX kyc_requests_by_provider_check ON kyc_requests (provider, state, checked_at);

-- Provider webhook deliveries already handled, so a redelivery is answered and ignored.
CREATE TABLE webhook_events (
    provider        TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    received_at     {int} NOT NULL,
    PRIMARY KEY (provider, event_id)
);
