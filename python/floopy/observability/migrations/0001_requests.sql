-- One row per request. ReplacingMergeTree on the request id (with the time it carries), so
-- a batch replayed twice leaves one row; bodies have their own, shorter TTL.
CREATE TABLE IF NOT EXISTS $db.requests
(
    request_id String,
    time DateTime64(3, 'UTC'),
    organization LowCardinality(String),
    project LowCardinality(String),
    api_key_id LowCardinality(String),
    user_id String,
    session_id String,
    session_name String,
    session_path String,
    properties Map(LowCardinality(String), String),
    method LowCardinality(String),
    path LowCardinality(String),
    requested_model LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    fallback_used Bool,
    status UInt16,
    error_code LowCardinality(String),
    latency_ms Float64,
    ttft_ms Nullable(Float64),
    stage_latency_ms Map(LowCardinality(String), Float64),
    prompt_tokens UInt32,
    completion_tokens UInt32,
    total_tokens UInt32,
    cached_tokens UInt32,
    reasoning_tokens UInt32,
    cache_write_tokens UInt32,
    cost_usd Nullable(Float64),
    cache_status LowCardinality(String),
    cache_tier LowCardinality(String),
    firewall_verdict LowCardinality(String),
    firewall_score Nullable(Float32),
    firewall_backend LowCardinality(String),
    firewall_model LowCardinality(String),
    stream Bool,
    finish_reason LowCardinality(String),
    request_body String CODEC(ZSTD(3)) TTL toDateTime(time) + INTERVAL $bodies_ttl_days DAY,
    response_body String CODEC(ZSTD(3)) TTL toDateTime(time) + INTERVAL $bodies_ttl_days DAY,
    client_ip String,
    user_agent String,
    INDEX session_idx session_id TYPE bloom_filter GRANULARITY 4,
    INDEX user_idx user_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (organization, project, toStartOfHour(time), request_id)
TTL toDateTime(time) + INTERVAL $requests_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000
