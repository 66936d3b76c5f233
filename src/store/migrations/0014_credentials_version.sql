-- A counter that moves with every change to an API client or a merchant, whoever makes
-- it (the CLI, another node, an operator's own SQL). A serving node keeps credentials in
-- memory while a poll of this counter vouches for them, so a revocation reaches every
-- node within a second without a lookup per request. Triggers, not the store's writes,
-- move it: no path that changes a client can forget to.
CREATE TABLE credentials_version (
    id      {int}   PRIMARY KEY CHECK (id = 1),
    version {int}   NOT NULL
);
INSERT INTO credentials_version (id, version) VALUES (1, 0);
-- on sqlite:
CREATE TRIGGER api_clients_inserted AFTER INSERT ON api_clients
    BEGIN UPDATE credentials_version SET version = version + 1; END;
CREATE TRIGGER api_clients_updated AFTER UPDATE ON api_clients
    BEGIN UPDATE credentials_version SET version = version + 1; END;
CREATE TRIGGER api_clients_deleted AFTER DELETE ON api_clients
    BEGIN UPDATE credentials_version SET version = version + 1; END;
CREATE TRIGGER merchants_inserted AFTER INSERT ON merchants
    BEGIN UPDATE credentials_version SET version = version + 1; END;
CREATE TRIGGER merchants_updated AFTER UPDATE ON merchants
    BEGIN UPDATE credentials_version SET version = version + 1; END;
CREATE TRIGGER merchants_deleted AFTER DELETE ON merchants
    BEGIN UPDATE credentials_version SET version = version + 1; END;
-- on postgres:
CREATE FUNCTION paycc_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credentials_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER api_clients_changed AFTER INSERT OR UPDATE OR DELETE ON api_clients
    FOR EACH STATEMENT EXECUTE FUNCTION paycc_credentials_changed();
CREATE TRIGGER merchants_changed AFTER INSERT OR UPDATE OR DELETE ON merchants
    FOR EACH STATEMENT EXECUTE FUNCTION paycc_credentials_changed();
