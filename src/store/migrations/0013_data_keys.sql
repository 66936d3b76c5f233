-- The data keys values here may be sealed with: every key configured at a start is
-- noted. A start without a noted key is refused while any value still names it; once
-- none does, the key is forgotten (`paycc keys rotate` re-seals values under the first
-- key, `paycc keys status` counts them).
CREATE TABLE data_keys (
    key_id      TEXT    PRIMARY KEY,
    noted_at    {int} NOT NULL
);
