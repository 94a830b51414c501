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
    "echo": {"kind": "echo"},
}

# The model catalog: name clients send -> provider, list prices in USD per 1M tokens
# (input, output, cached input) and limits. Costs in the request log come from here.
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
    "echo": {"provider": "echo"},
}

# Gateway API keys, stored as SHA-256 hashes (`floopy keys create` prints an entry). Empty
# means development mode: `floopy serve` mints one key and keeps its hash under DATA_DIR.
API_KEYS: tuple[dict[str, Any], ...] = ()

# Named routing rules: a strategy over an ordered list of (provider, model) targets. A key
# or the `floopy-routing-rule` header selects one by name.
ROUTING_RULES: dict[str, dict[str, Any]] = {}

# Where the embedded stores live (logs in chdb, vectors in local Qdrant, JSONL fallback
# files, the development key). Relative paths are resolved from the working directory.
DATA_DIR = "./.floopy"

# ClickHouse server or cluster for the request log; None uses the embedded engine (chdb).
CLICKHOUSE_URL: str | None = None

# Qdrant server or cluster for the semantic cache and firewall verdicts; None uses local mode.
QDRANT_URL: str | None = None

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

# Seconds to open a connection to a provider (a provider's own `connect_timeout` wins).
UPSTREAM_CONNECT_TIMEOUT = 10.0

# Seconds to wait for a provider's first response byte (first token when streaming).
UPSTREAM_FIRST_BYTE_TIMEOUT = 60.0

# Seconds a whole upstream call may take, stream included.
UPSTREAM_TOTAL_TIMEOUT = 600.0

# Upstream connections kept per worker process, across all providers.
UPSTREAM_POOL_SIZE = 256

# Server log level: critical, error, warning, info or debug.
LOG_LEVEL: Final = "info"

# Whether granian writes one access-log line per request (the request log is separate).
ACCESS_LOG = False

# max_tokens sent to providers that require it when the client did not set one.
DEFAULT_MAX_TOKENS = 4096
