-- Per-minute rollups by organization, project, model and provider: what dashboards chart.
-- Read them with sum() and quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms).
-- The deduplication window makes a replayed block (same deduplication token) count once.
CREATE TABLE IF NOT EXISTS $db.requests_by_minute
(
    minute DateTime('UTC'),
    organization LowCardinality(String),
    project LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    prompt_tokens SimpleAggregateFunction(sum, UInt64),
    completion_tokens SimpleAggregateFunction(sum, UInt64),
    total_tokens SimpleAggregateFunction(sum, UInt64),
    cached_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64),
    latency_ms AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float64),
    ttft_ms AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (organization, project, model, provider, minute)
TTL minute + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_minute_mv TO $db.requests_by_minute AS
SELECT
    toStartOfMinute(time) AS minute,
    organization,
    project,
    if(model = '', requested_model, model) AS model,
    provider,
    toUInt64(count()) AS requests,
    toUInt64(countIf(status >= 400)) AS errors,
    toUInt64(sum(prompt_tokens)) AS prompt_tokens,
    toUInt64(sum(completion_tokens)) AS completion_tokens,
    toUInt64(sum(total_tokens)) AS total_tokens,
    toUInt64(sum(cached_tokens)) AS cached_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_ms,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(assumeNotNull(ttft_ms), isNotNull(ttft_ms))
        AS ttft_ms
FROM $db.requests
GROUP BY minute, organization, project, model, provider
