-- How spans arrive: one row per request holding all its spans, expanded into `spans` (one
-- row per span) by a materialized view. A Null table stores nothing itself; it only feeds the
-- view. Parsing one row per request instead of one per span roughly halves what logging a
-- trace costs the embedded store. A block replayed with its deduplication token reaches
-- `spans` once, like any insert.
CREATE TABLE IF NOT EXISTS $db.traces
(
    request_id String,
    organization LowCardinality(String),
    project LowCardinality(String),
    spans Array(Tuple(
        span_id String,
        parent_id String,
        name String,
        start_time DateTime64(6, 'UTC'),
        duration_ms Float64,
        status String,
        attributes Map(String, String)
    ))
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.traces_to_spans TO $db.spans AS
SELECT
    request_id,
    span.span_id AS span_id,
    span.parent_id AS parent_id,
    span.name AS name,
    span.start_time AS start_time,
    span.duration_ms AS duration_ms,
    span.status AS status,
    span.attributes AS attributes,
    organization,
    project
FROM $db.traces
ARRAY JOIN spans AS span
