"""The documented defaults: every setting a settings module may override, with its value.

A settings module (``FLOOPY_SETTINGS``) overrides any of these names by defining it in
UPPER_CASE; ``FLOOPY_<NAME>`` environment variables override single values after that.
docs/configuration.md describes each one; a test fails when a setting is left out of it.
"""

from __future__ import annotations

from typing import Any, Final

# Upstream providers by name. `kind` picks the protocol; `api_key_env` names the environment
# variable holding the provider's key (the key itself never goes in settings). A provider
# whose key variable is unset is "unavailable" and its models are answered by `echo`.
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key_env": "OPENAI_API_KEY",
    },
    "anthropic": {
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
    },
    "gemini": {
        "kind": "gemini",
        "base_url": "https://generativelanguage.googleapis.com/v1beta",
        "api_key_env": "GEMINI_API_KEY",
    },
    "echo": {"kind": "echo"},
}

# The model catalog: name clients send -> provider, list prices in USD per 1M tokens (input,
# output, cached input, cache write, reasoning; an unset one falls back as documented) and
# limits. Costs in the request log come from here (floopy/pricing.py). List prices of
# 2025-11, standard tier, prompts up to 200k tokens where a vendor charges more above.
MODELS: dict[str, dict[str, Any]] = {
    "gpt-4o": {
        "provider": "openai",
        "input_price": 2.50,
        "output_price": 10.00,
        "cached_input_price": 1.25,
        "context_window": 128_000,
        "max_output_tokens": 16_384,
    },
    "gpt-4o-mini": {
        "provider": "openai",
        "input_price": 0.15,
        "output_price": 0.60,
        "cached_input_price": 0.075,
        "context_window": 128_000,
        "max_output_tokens": 16_384,
    },
    "gpt-4.1": {
        "provider": "openai",
        "input_price": 2.00,
        "output_price": 8.00,
        "cached_input_price": 0.50,
        "context_window": 1_047_576,
        "max_output_tokens": 32_768,
    },
    "gpt-4.1-mini": {
        "provider": "openai",
        "input_price": 0.40,
        "output_price": 1.60,
        "cached_input_price": 0.10,
        "context_window": 1_047_576,
        "max_output_tokens": 32_768,
    },
    "o3-mini": {
        "provider": "openai",
        "input_price": 1.10,
        "output_price": 4.40,
        "cached_input_price": 0.55,
        "context_window": 200_000,
        "max_output_tokens": 100_000,
    },
    "gpt-4.1-nano": {
        "provider": "openai",
        "input_price": 0.10,
        "output_price": 0.40,
        "cached_input_price": 0.025,
        "context_window": 1_047_576,
        "max_output_tokens": 32_768,
    },
    "gpt-5": {
        "provider": "openai",
        "input_price": 1.25,
        "output_price": 10.00,
        "cached_input_price": 0.125,
        "context_window": 400_000,
        "max_output_tokens": 128_000,
    },
    "gpt-5-mini": {
        "provider": "openai",
        "input_price": 0.25,
        "output_price": 2.00,
        "cached_input_price": 0.025,
        "context_window": 400_000,
        "max_output_tokens": 128_000,
    },
    "gpt-5-nano": {
        "provider": "openai",
        "input_price": 0.05,
        "output_price": 0.40,
        "cached_input_price": 0.005,
        "context_window": 400_000,
        "max_output_tokens": 128_000,
    },
    "o1": {
        "provider": "openai",
        "input_price": 15.00,
        "output_price": 60.00,
        "cached_input_price": 7.50,
        "context_window": 200_000,
        "max_output_tokens": 100_000,
    },
    "o3": {
        "provider": "openai",
        "input_price": 2.00,
        "output_price": 8.00,
        "cached_input_price": 0.50,
        "context_window": 200_000,
        "max_output_tokens": 100_000,
    },
    "o4-mini": {
        "provider": "openai",
        "input_price": 1.10,
        "output_price": 4.40,
        "cached_input_price": 0.275,
        "context_window": 200_000,
        "max_output_tokens": 100_000,
    },
    "text-embedding-3-small": {"provider": "openai", "input_price": 0.02},
    "text-embedding-3-large": {"provider": "openai", "input_price": 0.13},
    # Anthropic: cache writes (5-minute TTL) cost 1.25x input, cache reads 0.1x input.
    "claude-opus-4-5": {
        "provider": "anthropic",
        "input_price": 5.00,
        "output_price": 25.00,
        "cached_input_price": 0.50,
        "cache_write_price": 6.25,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
    },
    "claude-opus-4-1": {
        "provider": "anthropic",
        "input_price": 15.00,
        "output_price": 75.00,
        "cached_input_price": 1.50,
        "cache_write_price": 18.75,
        "context_window": 200_000,
        "max_output_tokens": 32_000,
    },
    "claude-sonnet-4-5": {
        "provider": "anthropic",
        "input_price": 3.00,
        "output_price": 15.00,
        "cached_input_price": 0.30,
        "cache_write_price": 3.75,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
    },
    "claude-sonnet-4": {
        "provider": "anthropic",
        "input_price": 3.00,
        "output_price": 15.00,
        "cached_input_price": 0.30,
        "cache_write_price": 3.75,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
    },
    "claude-haiku-4-5": {
        "provider": "anthropic",
        "input_price": 1.00,
        "output_price": 5.00,
        "cached_input_price": 0.10,
        "cache_write_price": 1.25,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
    },
    "claude-3-5-haiku-latest": {
        "provider": "anthropic",
        "input_price": 0.80,
        "output_price": 4.00,
        "cached_input_price": 0.08,
        "cache_write_price": 1.00,
        "context_window": 200_000,
        "max_output_tokens": 8_192,
    },
    # Gemini: thinking tokens are billed as output; cache storage (per hour) is not counted.
    "gemini-3-pro-preview": {
        "provider": "gemini",
        "input_price": 2.00,
        "output_price": 12.00,
        "cached_input_price": 0.20,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
    },
    "gemini-2.5-pro": {
        "provider": "gemini",
        "input_price": 1.25,
        "output_price": 10.00,
        "cached_input_price": 0.125,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
    },
    "gemini-2.5-flash": {
        "provider": "gemini",
        "input_price": 0.30,
        "output_price": 2.50,
        "cached_input_price": 0.03,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
    },
    "gemini-2.5-flash-lite": {
        "provider": "gemini",
        "input_price": 0.10,
        "output_price": 0.40,
        "cached_input_price": 0.01,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
    },
    "gemini-2.0-flash": {
        "provider": "gemini",
        "input_price": 0.10,
        "output_price": 0.40,
        "cached_input_price": 0.025,
        "context_window": 1_048_576,
        "max_output_tokens": 8_192,
    },
    "gemini-embedding-001": {"provider": "gemini", "input_price": 0.15},
    "echo": {"provider": "echo"},
}

# Gateway API keys, stored as SHA-256 hashes (`floopy keys create` prints an entry). Empty
# means development mode: `floopy serve` mints one key and keeps its hash under DATA_DIR.
API_KEYS: tuple[dict[str, Any], ...] = ()

# Named routing rules: a strategy over an ordered list of (provider, model) targets. A key
# or the `floopy-routing-rule` header selects one by name.
ROUTING_RULES: dict[str, dict[str, Any]] = {}

# The projects of each organization, and its default project: {"acme": {"projects": ["web",
# "batch"], "default_project": "web"}}. `floopy-project-id` must name a project of the key's
# organization (one listed here or a key's own `project`), else 403 FORBIDDEN.
ORGANIZATIONS: dict[str, dict[str, Any]] = {}

# Rate-limit policies: requests and/or tokens per sliding window, per API key, organization,
# project or end user. Empty: no limits. Shared through REDIS_URL when it is set.
RATE_LIMITS: tuple[dict[str, Any], ...] = ()

# Where the embedded stores live (logs in chdb, vectors in local Qdrant, JSONL fallback
# files, the development key). Relative paths are resolved from the working directory.
DATA_DIR = "./.floopy"

# ClickHouse server or cluster for the request log; None uses the embedded engine (chdb).
CLICKHOUSE_URL: str | None = None

# Qdrant server or cluster for the semantic cache and firewall verdicts; None uses local mode.
QDRANT_URL: str | None = None

# The embedder of the semantic cache and the firewall's verdict cache: "local" (all-MiniLM-L6-v2,
# int8 ONNX, run in this process from an installed package; nothing downloaded) or the name
# of a MODELS entry whose provider serves embeddings.
EMBEDDING_MODEL = "local"

# Threads running the local embedder (and the local firewall classifier) at once, each on one
# core; they run beside the event loop, which they do not hold.
EMBEDDING_THREADS = 1

# The LLM firewall (DESIGN section 6): "mode" block (400 PROMPT_THREAT_DETECTED), flag (log
# only) or off, per key or project too; the classifier backend ("local": an offline injection
# and jailbreak classifier; "llm": a Llama Guard model from MODELS); fail open or closed; the
# verdict cache of unsafe prompts (cosine similarity, time to live, shared or per
# organization); what is screened (the last user turn, tool results) in windows of text.
FIREWALL: dict[str, Any] = {
    "mode": "off",
    "projects": {},
    "keys": {},
    "client_may_disable": False,
    "client_may_enable": True,
    "backend": "local",
    "model": None,
    "fail": "open",
    "timeout": 5.0,
    "threshold": 0.5,
    "verdict_cache": True,
    "verdict_cache_similarity": 0.95,
    "verdict_cache_ttl": 7 * 24 * 3600.0,
    "verdict_cache_shared": False,
    "tool_results": False,
    "window_chars": 4000,
    "max_windows": 8,
}

# Redis shared by gateway instances (exact cache, rate limits, circuit breakers); None keeps
# that state in process, which is right for a single instance.
REDIS_URL: str | None = None

# Address the gateway listens on; 0.0.0.0 (or ::) to accept connections from other hosts.
HOST = "127.0.0.1"

# TCP port the gateway listens on.
PORT = 8787

# Worker processes; each has its own event loop and upstream connection pool.
WORKERS = 1

# Largest request body accepted (10 MiB); larger bodies get 413 PAYLOAD_TOO_LARGE.
MAX_BODY_BYTES = 10 * 1024 * 1024

# Deepest JSON nesting accepted in a request body, so a hostile body cannot exhaust the parser.
MAX_JSON_DEPTH = 64

# Longest value accepted in a floopy-* request header, in bytes.
MAX_HEADER_VALUE_BYTES = 4096

# Most floopy-property-* headers accepted on one request.
MAX_PROPERTIES = 64

# Seconds a client has to send a request's headers (also how long an idle keep-alive
# connection is kept waiting for its next request) and then its whole body.
HEADER_READ_TIMEOUT = 30.0
BODY_READ_TIMEOUT = 60.0

# Seconds a stopping gateway (SIGTERM, SIGINT) gives its workers to finish the requests in
# flight before they are killed: without it a stop waits for the slowest upstream call.
SHUTDOWN_GRACE_PERIOD = 30

# Most targets one request may name (the comma-separated `model` and `floopy-fallback`
# together; 400 beyond), and most upstream attempts it may make in all, retries included.
MAX_TARGETS_PER_REQUEST = 8
MAX_ATTEMPTS_PER_REQUEST = 12

# The largest whole (non-stream) answer read from a provider; a longer one is a 502.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

# Bytes of one stream the gateway may have sent that its client has not yet received (1 MiB);
# past it the gateway stops reading the provider until the client catches up, so a client
# that reads slowly, or not at all, holds a bounded amount of the worker's memory.
STREAM_BUFFER_BYTES = 1024 * 1024

# Seconds a stream waits for a client that stays behind and receives nothing; then the
# client counts as gone: its connection is closed and the request logged as 499.
STREAM_STALL_TIMEOUT = 60.0

# Seconds to open a connection to a provider (a provider's own `connect_timeout` wins).
UPSTREAM_CONNECT_TIMEOUT = 10.0

# Seconds to wait for a provider's first response byte (first token when streaming); once a
# stream is under way, the longest silence allowed between two reads.
UPSTREAM_FIRST_BYTE_TIMEOUT = 60.0

# Seconds a whole upstream call may take, stream included: a stream still running is cut.
UPSTREAM_TOTAL_TIMEOUT = 600.0

# Retries of one target after its first attempt, on retriable failures only (connection
# errors, timeouts, 408, 409, 429, 5xx); then the next target.
RETRY_ATTEMPTS = 2

# Seconds before the first retry; each retry doubles it, with jitter (half to all of it).
RETRY_BACKOFF = 0.25

# Longest wait before a retry, in seconds. A provider's Retry-After is honoured up to this;
# a longer one moves on to the next target at once.
RETRY_BACKOFF_MAX = 4.0

# Seconds one request may spend on upstream attempts in all, retries and fallbacks included
# (for a stream: until its first event). No attempt or retry starts past it.
UPSTREAM_DEADLINE = 600.0

# The circuit breaker of each (provider, model) target: it opens after `failures` failures
# in a row, or when at least `failure_ratio` of the calls in the last `window` seconds failed
# (once there were `min_requests`); open targets are skipped; after `cooldown` seconds one
# probe goes through, and its outcome closes or reopens the breaker.
CIRCUIT_BREAKER: dict[str, Any] = {
    "enabled": True,
    "failures": 5,
    "failure_ratio": 0.5,
    "min_requests": 20,
    "window": 60.0,
    "cooldown": 30.0,
}

# Upstream connections kept per worker process, across all providers.
UPSTREAM_POOL_SIZE = 256

# The HTTP client that calls providers: "native" (hyper in the native core; the faster) or
# "aiohttp" (for what only aiohttp does, such as HTTP proxies from HTTPS_PROXY).
UPSTREAM_CLIENT: Final = "native"

# Where chat streams are relayed: "native" (read, translated where needed, relayed and
# written to the client by the native client's thread and its completion queue, with no
# Python step per chunk; with UPSTREAM_CLIENT "aiohttp" streams are relayed in Python) or
# "python" (each upstream chunk read, translated, relayed and written by the event loop).
STREAM_RELAY: Final = "native"

# Server log level: critical, error, warning, info or debug.
LOG_LEVEL: Final = "info"

# Whether granian writes one access-log line per request (the request log is separate).
ACCESS_LOG = False

# max_tokens sent to providers that require it when the client did not set one.
DEFAULT_MAX_TOKENS = 4096

# --- the cache (DESIGN section 6) -------------------------------------------------------

# Whether requests are cached unless they say otherwise (`floopy-cache-enabled: false`,
# `cache-control: no-store`). Off by default: a cache changes what clients get back, so it is
# turned on where it is wanted, for everyone here or for some keys or projects below.
CACHE_ENABLED = False

# API key ids and projects whose requests are cached by default even with CACHE_ENABLED off.
CACHE_ENABLED_KEYS: tuple[str, ...] = ()
CACHE_ENABLED_PROJECTS: tuple[str, ...] = ()

# Seconds a cached answer is served, unless the request's `cache-control: max-age=N` says
# otherwise; a max-age is capped at CACHE_MAX_TTL.
CACHE_TTL = 3600
CACHE_MAX_TTL = 7 * 24 * 3600

# Bytes of cached answers each worker process keeps in memory when REDIS_URL is unset
# (256 MiB); past it the least recently used go first.
CACHE_MAX_BYTES = 256 * 1024 * 1024

# The largest answer stored (4 MiB); a longer one is served but not cached.
CACHE_MAX_ENTRY_BYTES = 4 * 1024 * 1024

# Seconds a cache store may take to answer a lookup or a write; past it, or on an error, the
# request goes on without the cache (counted in /metrics), and the store is left alone for a
# second before it is asked again.
CACHE_TIMEOUT = 0.05

# The semantic tier (a paraphrase of a single-turn prompt: an optional system message and one
# user message) and the advanced tier (the last user message of a multi-turn conversation
# whose earlier turns match exactly), looked up after the exact tier. The semantic tier runs
# for every request that uses the cache unless CACHE_SEMANTIC_ENABLED is off; the advanced
# tier only for requests with `floopy-cache-advanced: true`, or all of them with
# CACHE_ADVANCED_BY_DEFAULT. Embeddings come from EMBEDDING_MODEL, vectors go to QDRANT_URL
# or the embedded engine under DATA_DIR.
CACHE_SEMANTIC_ENABLED = True
CACHE_ADVANCED_BY_DEFAULT = False

# The cosine similarity at or above which a stored prompt answers a new one. Chosen on the
# labelled pairs in benches/cache/pairs.jsonl: the lowest threshold with no false hit there
# (docs/cache.md gives the numbers). A different EMBEDDING_MODEL needs its own measurement.
CACHE_SEMANTIC_THRESHOLD = 0.9

# Seconds the semantic and advanced tiers may take to embed the prompt and search the vector
# index; past it the request goes on without them (an error in /metrics, the tiers left alone
# for a second).
CACHE_SEMANTIC_TIMEOUT = 0.25

# The longest last user message (characters) the semantic and advanced tiers look up; a longer
# one only uses the exact tier. The local model reads 256 tokens; a prompt it would have to
# cut is never looked up either, since what differs may be in the part it did not read.
CACHE_SEMANTIC_MAX_CHARS = 2000

# --- the request log (DESIGN section 5) ---------------------------------------------------

# Whether every request is logged to ClickHouse (records, trace spans, breaker events).
LOGGING_ENABLED = True

# Days each log table keeps its rows (a ClickHouse TTL, applied at start-up when changed).
LOG_REQUESTS_TTL_DAYS = 90
LOG_SPANS_TTL_DAYS = 30
LOG_BREAKER_EVENTS_TTL_DAYS = 90
LOG_ROLLUPS_TTL_DAYS = 400

# Days request and response bodies are kept; shorter than the rows that carry them.
LOG_BODIES_TTL_DAYS = 30

# Whether request and response bodies are logged at all.
LOG_BODIES = True

# Bodies longer than this (bytes) are cut before logging.
LOG_BODY_MAX_BYTES = 256 * 1024

# What is replaced by a placeholder in bodies and properties before anything is written:
# any of "emails", "card_numbers", "phone_numbers", "api_keys", "bearer_tokens".
LOG_SCRUB: tuple[str, ...] = ("api_keys", "bearer_tokens")

# Rows the log store process inserts at once, and the seconds between its rounds over the
# journals. ClickHouse wants few, large inserts: each one costs as much CPU as a few hundred
# rows (a statement and a new part per table; benches/RESULTS.md, "The log store process").
# A request is one row. One second keeps a row queryable within about a second and a half
# of its answer. Under load the rounds stretch, each waiting four times as long as the last
# took, up to LOG_FLUSH_MAX_INTERVAL: fewer, larger inserts when the cores are busiest.
LOG_BATCH_SIZE = 10_000
LOG_FLUSH_INTERVAL = 1.0
LOG_FLUSH_MAX_INTERVAL = 4.0

# The embedded ClickHouse's memory cap (bytes), passed to the engine
# (max_server_memory_usage): a query or merge that would pass it fails rather than grow.
LOG_STORE_MAX_MEMORY = 1024 * 1024 * 1024

# Bytes of journal files the log store process takes over and has not inserted yet, per
# table: its backlog when it falls behind the workers (each worker's own files hold three
# generations of LOG_SPOOL_MAX_BYTES on top). Past it the store takes nothing more until it
# catches up.
LOG_STORE_BACKLOG_MAX_BYTES = 2 * 1024 * 1024 * 1024

# The read channel (floopy logs query / tail, the dashboard): seconds a query may run, and
# rows it may return.
LOG_QUERY_TIMEOUT = 30.0
LOG_QUERY_MAX_ROWS = 100_000

# The dashboard (web UI and its JSON API): served on its own port, never the gateway's, by
# the log store process (or by `floopy dashboard` beside a ClickHouse server).
DASHBOARD_ENABLED = True
DASHBOARD_PORT = 8788
# Seconds a dashboard login lasts.
DASHBOARD_SESSION_TTL = 12 * 3600.0
# Rows one export (JSONL or CSV) of the request list may hold at most.
DASHBOARD_EXPORT_MAX_ROWS = 100_000
# Certificate and key files (PEM) to serve the dashboard over TLS; the session cookie is then
# marked Secure. None: plain HTTP (put a TLS proxy in front beyond localhost).
DASHBOARD_TLS_CERT: str | None = None
DASHBOARD_TLS_KEY: str | None = None

# Size cap of one journal file (100 MiB); three generations are kept per sink and process.
LOG_SPOOL_MAX_BYTES = 100 * 1024 * 1024

# Seconds between the log store's checks that ClickHouse answers again.
LOG_PROBE_INTERVAL = 5.0

# OpenTelemetry trace export (docs/tracing.md). Off while OTEL_ENDPOINT is None; set it to an
# OTLP/HTTP collector's base URL (http://collector:4318) or its full traces URL (ending in
# /v1/traces). Every worker sends its requests' spans there, protobuf-encoded, in batches
# from a thread of its own: the request only puts its finished row on a queue.
OTEL_ENDPOINT: str | None = None
# Headers sent with every export (an API key of a hosted collector), as a JSON object.
OTEL_HEADERS: dict[str, str] = {}
# Seconds one export POST may take.
OTEL_TIMEOUT = 10.0
# Requests waiting to be exported, per worker: past it a request's spans are dropped and
# counted (floopy_otel_spans_dropped_total), never waited for.
OTEL_QUEUE_SIZE = 2048
# Requests per export POST, and the most seconds a request waits for its batch to fill.
OTEL_BATCH_SIZE = 256
OTEL_BATCH_INTERVAL = 1.0
# Tries of one batch (the first and the retries of a 429, 5xx or network error, with
# exponential backoff from OTEL_RETRY_BACKOFF seconds) before its spans are dropped.
OTEL_MAX_ATTEMPTS = 4
OTEL_RETRY_BACKOFF = 0.5
# The service.name resource attribute of the exported spans.
OTEL_SERVICE_NAME = "floopy"

# /metrics: the most label sets each latency histogram and usage counter keeps per worker.
# Past it a new model/provider/project combination is counted under model="other" (and
# floopy_metrics_label_sets_overflow_total), so a client inventing model names cannot grow
# a scrape without bound.
METRICS_MAX_LABEL_SETS = 500
