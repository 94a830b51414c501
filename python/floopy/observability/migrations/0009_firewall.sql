-- The firewall's verdict in full: the categories of an unsafe verdict (names, such as
-- "Violent Crimes" or "Prompt Injection") and whether the verdict cache gave it rather than
-- the classifier. firewall_verdict, _score, _backend and _model are in 0001.
ALTER TABLE $db.requests
    ADD COLUMN IF NOT EXISTS firewall_categories Array(LowCardinality(String)) AFTER firewall_score,
    ADD COLUMN IF NOT EXISTS firewall_from_cache Bool DEFAULT false AFTER firewall_model
