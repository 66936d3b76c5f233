-- Times are unix milliseconds (UTC). Columns ending in _sealed hold AES-256-GCM values
-- (crypto::Keyring::seal); columns ending in _hash hold keyed HMAC-SHA256 digests.

CREATE TABLE api_clients (
    pk              {pk},
    client_id       TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    secret_hash     {bytes}    NOT NULL,
    created_at      {int} NOT NULL,
    secret_rotated_at {int}
);

CREATE TABLE merchants (
    pk              {pk},
    code            TEXT    NOT NULL UNIQUE,
    client_pk       {int} NOT NULL REFERENCES api_clients(pk),
    name            TEXT    NOT NULL,
    active          {bool} NOT NULL DEFAULT {true},
    created_at      {int} NOT NULL
);

CREATE TABLE customers (
    pk              {pk},
    cust_id         TEXT    NOT NULL UNIQUE,
    merchant_pk     {int} NOT NULL REFERENCES merchants(pk),
    pan_hash        {bytes}    NOT NULL,
    mobile_hash     {bytes}    NOT NULL,
    -- (pan, name, email, mobile) as the merchant last sent them.
    details_sealed  {bytes}    NOT NULL,
    -- The approved KYC whose identity this customer carries.
    verified_kid    TEXT,
    active          {bool} NOT NULL DEFAULT {true},
    created_at      {int} NOT NULL,
    updated_at      {int} NOT NULL,
    UNIQUE (merchant_pk, pan_hash)
);
CREATE INDEX customers_by_mobile ON customers (merchant_pk, mobile_hash, updated_at);

CREATE TABLE kyc_requests (
    kid             TEXT    PRIMARY KEY,
    reference       TEXT    NOT NULL UNIQUE,
    merchant_pk     {int} NOT NULL REFERENCES merchants(pk),
    customer_pk     {int} NOT NULL REFERENCES customers(pk),
    provider        TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT,
    -- Keyed hash of (merchant, pan, name, email, mobile): an identical init reuses an open request.
    fingerprint     {bytes}    NOT NULL,
    url_sealed      {bytes},
    token_hash      {bytes},
    redirect_url    TEXT,
    -- The verified identity (domain::kyc::KycIdentity as JSON), once approved.
    result_sealed   {bytes},
    created_at      {int} NOT NULL,
    updated_at      {int} NOT NULL,
    expires_at      {int} NOT NULL
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
    selfie_sealed   {bytes},
    updated_at      {int} NOT NULL
);
