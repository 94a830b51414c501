-- The hourly, per-user-day and per-property-day rollups filled from the finer rollup's
-- blocks instead of from every request: a materialized view on a table runs on each block
-- inserted into it, so these now aggregate what the per-minute, per-user-hour and
-- per-property-hour views just wrote (a few rows, or one per end user, per insert) rather
-- than the thousands of request rows of the insert again. Each view's SELECT is the one
-- that filled its rollup once from the finer one (0013, 0014): the same figures, the
-- quantiles' states merged. About 10 us of the log store's CPU per logged request (benches/RESULTS.md).
--
-- The finer rollups are only inserted into by their own views: a backfill writes a scratch
-- copy and swaps its partitions in (migrations/__init__.py), which runs no view, so nothing
-- is counted twice. The old views are dropped first; the store migrates before it carries
-- any journal, so no insert falls between the two statements.
DROP VIEW IF EXISTS $db.requests_by_hour_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_hour_from_minute
TO $db.requests_by_hour AS
SELECT
    toStartOfHour(minute) AS hour,
    organization,
    project,
    model,
    provider,
    sum(requests) AS requests,
    sum(errors) AS errors,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(cost_usd) AS cost_usd,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_ms,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms
FROM $db.requests_by_minute
GROUP BY hour, organization, project, model, provider;

DROP VIEW IF EXISTS $db.requests_by_user_day_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_user_day_from_hour
TO $db.requests_by_user_day AS
SELECT
    toDate(hour) AS day,
    organization,
    user_id,
    sum(requests) AS requests,
    sum(errors) AS errors,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    sum(cost_usd) AS cost_usd,
    max(last_seen) AS last_seen
FROM $db.requests_by_user_hour
GROUP BY day, organization, user_id;

DROP VIEW IF EXISTS $db.requests_by_property_day_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_property_day_from_hour
TO $db.requests_by_property_day AS
SELECT
    toDate(hour) AS day,
    organization,
    project,
    property,
    value,
    sum(requests) AS requests,
    sum(errors) AS errors,
    sum(total_tokens) AS total_tokens,
    sum(cost_usd) AS cost_usd
FROM $db.requests_by_property_hour
GROUP BY day, organization, project, property, value
