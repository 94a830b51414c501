-- Coarser rollups for long ranges. At a few thousand requests an hour spread over many
-- models, projects and end users, the per-minute rollup (0004) and the per-user hourly one
-- (0010) hold nearly a row per request: a week of them is as much to read as the raw rows.
-- Per hour, Overview reads the one for the whole hours inside its range and the per-minute
-- one for the edges, so its answer is what the minute rollup alone would give; per day, the
-- Users pages read the other for ranges beyond two days (charted per day). Each is filled from here on by its
-- materialized view, and once from the finer rollup (which keeps the rollups' retention,
-- older than the raw rows may be): a backfill a month at a time, each month replacing that
-- month (migrations/__init__.py), so running it again counts nothing twice.
CREATE TABLE IF NOT EXISTS $db.requests_by_hour
(
    hour DateTime('UTC'),
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
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, organization, project, model, provider)
TTL hour + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_hour_mv TO $db.requests_by_hour AS
SELECT
    toStartOfHour(time) AS hour,
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
GROUP BY hour, organization, project, model, provider;

-- backfill
INSERT INTO $db.requests_by_hour
SELECT
    toStartOfHour(minute) AS hour,
    organization,
    project,
    model,
    provider,
    sum(requests),
    sum(errors),
    sum(prompt_tokens),
    sum(completion_tokens),
    sum(total_tokens),
    sum(cached_tokens),
    sum(cost_usd),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms),
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms)
FROM $db.requests_by_minute
WHERE $partition
GROUP BY hour, organization, project, model, provider;

-- Per end user and day, across projects (a Users page filtered by project reads the hourly
-- rollup): an end user mostly sticks to an organization, so this holds about a row per user
-- and day. Ordered by user, so one user's days are read together.
CREATE TABLE IF NOT EXISTS $db.requests_by_user_day
(
    day Date,
    organization LowCardinality(String),
    user_id String,
    requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    prompt_tokens SimpleAggregateFunction(sum, UInt64),
    completion_tokens SimpleAggregateFunction(sum, UInt64),
    total_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (organization, user_id, day)
TTL day + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_user_day_mv
TO $db.requests_by_user_day AS
SELECT
    toDate(time) AS day,
    organization,
    user_id,
    toUInt64(count()) AS requests,
    toUInt64(countIf(status >= 400)) AS errors,
    toUInt64(sum(prompt_tokens)) AS prompt_tokens,
    toUInt64(sum(completion_tokens)) AS completion_tokens,
    toUInt64(sum(total_tokens)) AS total_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd,
    max(time) AS last_seen
FROM $db.requests
WHERE user_id != ''
GROUP BY day, organization, user_id;

-- backfill
INSERT INTO $db.requests_by_user_day
SELECT
    toDate(hour) AS day,
    organization,
    user_id,
    sum(requests),
    sum(errors),
    sum(prompt_tokens),
    sum(completion_tokens),
    sum(total_tokens),
    sum(cost_usd),
    max(last_seen)
FROM $db.requests_by_user_hour
WHERE $partition
GROUP BY day, organization, user_id
