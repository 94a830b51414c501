-- One row per request in, two tables out: a worker journals each request as one line, its
-- spans inside it, and the log store inserts those lines here. `request_rows` keeps
-- nothing (Null); its views write the request into `requests` (whose own views fill the
-- rollups) and each span into `spans`. One line and one insert per request instead of two
-- halves the worker's writes, the rows the engine parses, and the inserts per round.
-- `traces` stays for journal files written before this migration.
--
-- A column added to `requests` later is added here too (`requests_from_intake` selects
-- every column but `spans`, by name).
CREATE TABLE IF NOT EXISTS $db.request_rows
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
    cache_similarity Nullable(Float32),
    cache_saved_usd Nullable(Float64),
    firewall_verdict LowCardinality(String),
    firewall_score Nullable(Float32),
    firewall_categories Array(LowCardinality(String)),
    firewall_backend LowCardinality(String),
    firewall_model LowCardinality(String),
    firewall_from_cache Bool,
    stream Bool,
    finish_reason LowCardinality(String),
    request_body String,
    response_body String,
    client_ip String,
    user_agent String,
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

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.requests_from_intake TO $db.requests AS
SELECT * EXCEPT (spans)
FROM $db.request_rows;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.spans_from_intake TO $db.spans AS
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
FROM $db.request_rows
ARRAY JOIN spans AS span
