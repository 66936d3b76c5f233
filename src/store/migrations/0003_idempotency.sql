-- Idempotency-Key on init: per API client, the request's keyed hash and, once done,
-- the sealed reply to give again.
CREATE TABLE idempotency_keys (
    client_pk       {int} NOT NULL REFERENCES api_clients(pk),
    idem_key        TEXT    NOT NULL,
    request_hash    {bytes}    NOT NULL,
    reply_sealed    {bytes},
    created_at      {int} NOT NULL,
    PRIMARY KEY (client_pk, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
