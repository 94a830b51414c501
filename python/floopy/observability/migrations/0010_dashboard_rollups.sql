-- Rollups for the dashboard's Users, Properties and Sessions pages, so they never scan raw
-- rows for their tables and charts. Hourly per end user, hourly per property value, daily per
-- session. Each is filled from here on by its materialized view, and once from the rows
-- already logged: a backfill, run a month at a time, each month replacing that month of the
-- rollup (migrations/__init__.py), so a migration cut short and run again counts no row
-- twice. Read them with sum()/min()/max() and GROUP BY: parts merge in the background.
CREATE TABLE IF NOT EXISTS $db.requests_by_user_hour
(
    hour DateTime('UTC'),
    organization LowCardinality(String),
    project LowCardinality(String),
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
PARTITION BY toYYYYMM(hour)
ORDER BY (organization, project, hour, user_id)
TTL hour + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_user_hour_mv
TO $db.requests_by_user_hour AS
SELECT
    toStartOfHour(time) AS hour,
    organization,
    project,
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
GROUP BY hour, organization, project, user_id;

-- backfill
INSERT INTO $db.requests_by_user_hour
SELECT
    toStartOfHour(time) AS hour,
    organization,
    project,
    user_id,
    toUInt64(count()),
    toUInt64(countIf(status >= 400)),
    toUInt64(sum(prompt_tokens)),
    toUInt64(sum(completion_tokens)),
    toUInt64(sum(total_tokens)),
    sum(ifNull(cost_usd, 0)),
    max(time)
FROM $db.requests
WHERE $partition AND user_id != ''
GROUP BY hour, organization, project, user_id;

CREATE TABLE IF NOT EXISTS $db.requests_by_property_hour
(
    hour DateTime('UTC'),
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
PARTITION BY toYYYYMM(hour)
ORDER BY (organization, project, property, hour, value)
TTL hour + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_property_hour_mv
TO $db.requests_by_property_hour AS
SELECT
    toStartOfHour(time) AS hour,
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
GROUP BY hour, organization, project, property, value;

-- backfill
INSERT INTO $db.requests_by_property_hour
SELECT
    toStartOfHour(time) AS hour,
    organization,
    project,
    property,
    value,
    toUInt64(count()),
    toUInt64(countIf(status >= 400)),
    toUInt64(sum(total_tokens)),
    sum(ifNull(cost_usd, 0))
FROM $db.requests
ARRAY JOIN mapKeys(properties) AS property, mapValues(properties) AS value
WHERE $partition
GROUP BY hour, organization, project, property, value;

CREATE TABLE IF NOT EXISTS $db.requests_by_session_day
(
    day Date,
    organization LowCardinality(String),
    session_id String,
    session_name SimpleAggregateFunction(anyLast, String),
    session_path SimpleAggregateFunction(anyLast, String),
    first_time SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_time SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    total_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64),
    user_ids SimpleAggregateFunction(groupUniqArrayArray(64), Array(String)),
    projects SimpleAggregateFunction(groupUniqArrayArray(64), Array(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (organization, day, session_id)
TTL day + INTERVAL $rollups_ttl_days DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_by_session_day_mv
TO $db.requests_by_session_day AS
SELECT
    toDate(time) AS day,
    organization,
    session_id,
    anyLast(session_name) AS session_name,
    anyLast(session_path) AS session_path,
    min(time) AS first_time,
    max(time) AS last_time,
    toUInt64(count()) AS requests,
    toUInt64(countIf(status >= 400)) AS errors,
    toUInt64(sum(total_tokens)) AS total_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd,
    groupUniqArrayIf(64)(user_id, user_id != '') AS user_ids,
    groupUniqArray(64)(toString(project)) AS projects
FROM $db.requests
WHERE session_id != ''
GROUP BY day, organization, session_id;

-- backfill
INSERT INTO $db.requests_by_session_day
SELECT
    toDate(time) AS day,
    organization,
    session_id,
    anyLast(session_name),
    anyLast(session_path),
    min(time),
    max(time),
    toUInt64(count()),
    toUInt64(countIf(status >= 400)),
    toUInt64(sum(total_tokens)),
    sum(ifNull(cost_usd, 0)),
    groupUniqArrayIf(64)(user_id, user_id != ''),
    groupUniqArray(64)(toString(project))
FROM $db.requests
WHERE $partition AND session_id != ''
GROUP BY day, organization, session_id
