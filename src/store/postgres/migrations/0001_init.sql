-- PostgreSQL schema; mirrors the SQLite one. Times are unix milliseconds (UTC). Columns ending in _sealed hold AES-256-GCM values
-- (crypto::Keyring::seal); columns ending in _hash hold keyed HMAC-SHA256 digests.

CREATE TABLE api_clients (
    pk              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id       TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    secret_hash     BYTEA   NOT NULL,
    created_at      BIGINT  NOT NULL,
    secret_rotated_at BIGINT
);

CREATE TABLE merchants (
    pk              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT    NOT NULL UNIQUE,
    client_pk       BIGINT  NOT NULL REFERENCES api_clients(pk),
    name            TEXT    NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE customers (
    pk              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cust_id         TEXT    NOT NULL UNIQUE,
    merchant_pk     BIGINT  NOT NULL REFERENCES merchants(pk),
    pan_hash        BYTEA   NOT NULL,
    mobile_hash     BYTEA   NOT NULL,
    -- {pan, name, email, mobile} as the merchant last sent them.
    details_sealed  BYTEA   NOT NULL,
    -- The approved KYC whose identity this customer carries.
    verified_kid    TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (merchant_pk, pan_hash)
);
CREATE INDEX customers_by_mobile ON customers (merchant_pk, mobile_hash, updated_at);

CREATE TABLE kyc_requests (
    kid             TEXT    PRIMARY KEY,
    reference       TEXT    NOT NULL UNIQUE,
    merchant_pk     BIGINT  NOT NULL REFERENCES merchants(pk),
    customer_pk     BIGINT  NOT NULL REFERENCES customers(pk),
    provider        TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT,
    -- Keyed hash of (merchant, pan, name, email, mobile): an identical init reuses an open request.
    fingerprint     BYTEA   NOT NULL,
    url_sealed      BYTEA,
    token_hash      BYTEA,
    redirect_url    TEXT,
    -- The verified identity (domain::kyc::KycIdentity as JSON), once approved.
    result_sealed   BYTEA,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);
-- At most one open request per identical init: the database, not a check, enforces it.
CREATE UNIQUE INDEX kyc_requests_one_open_per_fingerprint ON kyc_requests (fingerprint)
    WHERE state IN ('created','pending','in_progress','awaiting_approval');
-- The identical-init lookups (any state) use this one; the partial index above only
-- enforces uniqueness, and SQLite cannot use it for conditions it cannot prove imply it.
CREATE INDEX kyc_requests_by_fingerprint ON kyc_requests (fingerprint);
CREATE INDEX kyc_requests_by_state_expiry ON kyc_requests (state, expires_at);
CREATE INDEX kyc_requests_by_customer ON kyc_requests (customer_pk, created_at);

-- The sandbox provider's own record of a journey: how far the customer got, and how
-- the tester finished it.
CREATE TABLE sandbox_sessions (
    kid             TEXT    PRIMARY KEY REFERENCES kyc_requests(kid),
    step            TEXT    NOT NULL,
    outcome         TEXT,
    face_match      INTEGER,
    selfie_sealed   BYTEA,
    updated_at      BIGINT  NOT NULL
);
