-- An API client can be switched off without rotating its secret.
ALTER TABLE api_clients ADD COLUMN active {bool} NOT NULL DEFAULT {true};

-- (pan, name) of the person a sandbox tester made DigiLocker return instead of the
-- requested one.
ALTER TABLE sandbox_sessions ADD COLUMN person_sealed {bytes};

-- Facts the database keeps about how it is used, written once: the fingerprint of the
-- lookup-hash key, so a start with a different key is refused instead of silently
-- missing every stored hash.
CREATE TABLE paycc_settings (
    name            TEXT    PRIMARY KEY,
    value           {bytes}    NOT NULL,
    created_at      {int} NOT NULL
);
