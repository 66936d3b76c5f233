-- Merchant callbacks. Each API client may name a URL; its webhook secret is sealed
-- (it must be read back to sign). callback_events is the outbox: a row is written in
-- the same transaction as the state change it announces, and the delivery worker
-- sends it. Rows hold ids and a state word only, never personal data.
ALTER TABLE api_clients ADD COLUMN callback_url TEXT;
ALTER TABLE api_clients ADD COLUMN callback_secret_sealed {bytes};

CREATE TABLE callback_events (
    pk              {serial_pk},
    -- Stable across retries: merchants de-duplicate on it.
    event_id        TEXT    NOT NULL UNIQUE,
    client_pk       {int} NOT NULL REFERENCES api_clients(pk),
    kid             TEXT    NOT NULL,
    cust_id         TEXT    NOT NULL,
    merchant_code   TEXT    NOT NULL,
    -- The state the request entered.
    state           TEXT    NOT NULL,
    -- 'pending' until delivered, or 'dead' once the retry schedule ran out.
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        {int} NOT NULL DEFAULT 0,
    next_attempt_at {int} NOT NULL,
    -- A worker holds the row until then; after it, the row is free again.
    lease_until     {int} NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      {int} NOT NULL,
    updated_at      {int} NOT NULL,
    delivered_at    {int}
);
CREATE INDEX callback_events_due ON callback_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX callback_events_by_kid ON callback_events (kid, pk);
