-- Circuit-breaker state changes, per provider and model.
CREATE TABLE IF NOT EXISTS $db.circuit_breaker_events
(
    event_id String,
    time DateTime64(3, 'UTC'),
    provider LowCardinality(String),
    model LowCardinality(String),
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    reason String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (provider, model, time, event_id)
TTL toDateTime(time) + INTERVAL $breaker_events_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000
