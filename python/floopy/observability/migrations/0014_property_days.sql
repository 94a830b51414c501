-- Per property value and day, for the Properties pages over ranges beyond two days (charted
-- per day). With 20 keys of up to 50 values each, the hourly rollup (0010) holds about a row
-- per value, key and hour: more rows than requests at a few thousand an hour; per day it is
-- 24 times smaller. Filled from here on by its materialized view, and once from the hourly
-- rollup (which keeps the rollups' retention): a backfill a month at a time, each month
-- replacing that month (migrations/__init__.py), so running it again counts nothing twice.
CREATE TABLE IF NOT EXISTS $db.requests_by_property_day
(
    day Date,
    organization LowCardinality(String),
    project LowCardinality(String),
    property LowCardinality(String),
    value String,
    requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    total_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (organization, project, property, day, value)
TTL day + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_property_day_mv
TO $db.requests_by_property_day AS
SELECT
    toDate(time) AS day,
    organization,
    project,
    property,
    value,
    toUInt64(count()) AS requests,
    toUInt64(countIf(status >= 400)) AS errors,
    toUInt64(sum(total_tokens)) AS total_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd
FROM $db.requests
ARRAY JOIN mapKeys(properties) AS property, mapValues(properties) AS value
GROUP BY day, organization, project, property, value;

-- backfill
INSERT INTO $db.requests_by_property_day
SELECT
    toDate(hour) AS day,
    organization,
    project,
    property,
    value,
    sum(requests),
    sum(errors),
    sum(total_tokens),
    sum(cost_usd)
FROM $db.requests_by_property_hour
WHERE $partition
GROUP BY day, organization, project, property, value
