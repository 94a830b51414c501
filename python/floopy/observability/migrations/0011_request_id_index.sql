-- The dashboard opens one request by its id: a skip index on it reads a few granules
-- instead of the whole id column (the table is ordered by organization, project and hour).
ALTER TABLE $db.requests ADD INDEX IF NOT EXISTS request_idx request_id TYPE bloom_filter GRANULARITY 1;

ALTER TABLE $db.requests MATERIALIZE INDEX request_idx
