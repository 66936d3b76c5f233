-- An operator's rate limit for one API client, in place of the node's default
-- (PAYCC_CLIENT_RATE); both NULL: the default; a rate of 0: no limit.
ALTER TABLE api_clients ADD COLUMN rate_per_second {int};
ALTER TABLE api_clients ADD COLUMN rate_burst {int};
