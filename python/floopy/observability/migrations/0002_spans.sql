-- Trace spans: the request is the root span, each stage and provider attempt a child.
CREATE TABLE IF NOT EXISTS $db.spans
(
    request_id String,
    span_id String,
    parent_id String,
    name LowCardinality(String),
    start_time DateTime64(6, 'UTC'),
    duration_ms Float64,
    status LowCardinality(String),
    attributes Map(LowCardinality(String), String),
    organization LowCardinality(String),
    project LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (request_id, span_id)
TTL toDateTime(start_time) + INTERVAL $spans_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000
