"""The typed, frozen form of the settings, and the checks that span several settings.

Every struct rejects unknown fields, so a typo in a settings module is an error at start-up
rather than a silently ignored option. Field defaults come from ``defaults.py``, the one
place a default is written.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

import msgspec

from floopy.settings import defaults
from floopy.settings.firewall import FirewallConfig
from floopy.settings.policies import CircuitBreakerConfig, OrganizationConfig, RateLimitPolicy

ProviderKind = Literal["openai", "openai_compatible", "echo", "anthropic", "gemini", "azure"]
OPENAI_KINDS = ("openai", "openai_compatible", "azure")  # they may speak the Responses API
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
UpstreamClient = Literal["native", "aiohttp"]
StreamRelay = Literal["python", "native"]
Strategy = Literal["fallback", "round_robin", "weighted", "latency", "cost"]
ScrubKind = Literal["emails", "card_numbers", "phone_numbers", "api_keys", "bearer_tokens"]

Positive = Annotated[float, msgspec.Meta(gt=0)]
Price = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]

# The name under which models of an unavailable provider are answered.
ECHO = "echo"

_KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_STORE_SCHEMES = {
    "clickhouse_url": ("http", "https", "clickhouse", "clickhousedb"),
    "qdrant_url": ("http", "https"),
    "redis_url": ("redis", "rediss", "unix"),
    "otel_endpoint": ("http", "https"),
}


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: ProviderKind
    base_url: str = ""
    api_key_env: str | None = None
    headers: dict[str, str] = {}
    connect_timeout: Positive | None = None
    first_byte_timeout: Positive | None = None
    total_timeout: Positive | None = None
    # Azure OpenAI only: the api-version query parameter, and model name -> deployment name
    # (a model without an entry is served by the deployment of the same name).
    api_version: str | None = None
    deployments: dict[str, str] = {}
    # OpenAI kinds only: how /v1/responses reaches the provider, natively (its own
    # /responses) or over chat completions (a compatible server without /responses).
    responses: Literal["native", "chat"] = "native"

    def __post_init__(self) -> None:
        if self.kind != "echo" and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http:// or https:// URL for kind {self.kind!r}, "
                f"got {self.base_url!r}"
            )
        if self.kind == "azure" and not self.api_version:
            raise ValueError(
                "api_version is required for kind 'azure' (the api-version your Azure "
                "OpenAI resource serves, such as '2024-10-21')"
            )
        if self.kind != "azure" and (self.api_version is not None or self.deployments):
            raise ValueError(f"api_version and deployments are for kind 'azure', not {self.kind!r}")
        if self.responses != "native" and self.kind not in OPENAI_KINDS:
            raise ValueError(
                f"responses is for the OpenAI kinds ({', '.join(OPENAI_KINDS)}), not "
                f"{self.kind!r}: the others always get /v1/responses over chat"
            )
        if self.kind not in ("echo", "openai_compatible") and not self.api_key_env:
            raise ValueError(
                f"api_key_env is required for kind {self.kind!r}: name the environment "
                "variable holding the key (kind 'openai_compatible' may go without one)"
            )

    @property
    def needs_key(self) -> bool:
        """Whether requests to this provider carry an API key from the environment."""
        if self.kind == "echo":
            return False
        if self.kind == "openai_compatible":
            return self.api_key_env is not None  # local servers such as Ollama take none
        return True

    def api_key(self) -> str | None:
        """The provider's key, read from its environment variable now (never stored)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env) or None


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    provider: str
    upstream_model: str | None = None  # the name the provider knows; default: the key
    input_price: Price = 0.0  # USD per 1M tokens, as are the other prices
    output_price: Price = 0.0
    cached_input_price: Price | None = None  # None: input_price
    cache_write_price: Price | None = None  # None: input_price
    reasoning_price: Price | None = None  # None: output_price
    context_window: Count | None = None
    max_output_tokens: Count | None = None


class ApiKeyEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: NonEmpty
    hash: str  # "sha256:<64 lowercase hex>" of the key; the key itself is never stored
    organization: NonEmpty = "default"
    project: str | None = None
    locked_to_project: bool = False
    routing_rule: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not _KEY_HASH.fullmatch(self.hash):
            raise ValueError(
                "hash must be 'sha256:' followed by 64 lowercase hex digits "
                "(`floopy keys create` prints a valid entry)"
            )
        if self.locked_to_project and not self.project:
            raise ValueError("locked_to_project needs a project")


class RoutingTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    provider: str
    model: str
    weight: Price = 1.0


class RoutingRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    strategy: Strategy = "fallback"
    targets: Annotated[tuple[RoutingTarget, ...], msgspec.Meta(min_length=1)]


def _from_defaults(name: str, type_: Any) -> Any:
    return msgspec.convert(getattr(defaults, name), type_)


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every setting, validated. Built once at start-up by ``load_settings``."""

    providers: dict[str, ProviderConfig] = msgspec.field(
        default_factory=lambda: _from_defaults("PROVIDERS", dict[str, ProviderConfig])
    )
    models: dict[str, ModelConfig] = msgspec.field(
        default_factory=lambda: _from_defaults("MODELS", dict[str, ModelConfig])
    )
    api_keys: tuple[ApiKeyEntry, ...] = ()
    routing_rules: dict[str, RoutingRule] = {}
    organizations: dict[str, OrganizationConfig] = {}
    rate_limits: tuple[RateLimitPolicy, ...] = ()
    data_dir: NonEmpty = defaults.DATA_DIR
    clickhouse_url: str | None = defaults.CLICKHOUSE_URL
    qdrant_url: str | None = defaults.QDRANT_URL
    embedding_model: NonEmpty = defaults.EMBEDDING_MODEL
    embedding_threads: Count = defaults.EMBEDDING_THREADS
    firewall: FirewallConfig = msgspec.field(default_factory=FirewallConfig)
    redis_url: str | None = defaults.REDIS_URL
    host: NonEmpty = defaults.HOST
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = defaults.PORT
    workers: Count = defaults.WORKERS
    max_body_bytes: Count = defaults.MAX_BODY_BYTES
    max_json_depth: Count = defaults.MAX_JSON_DEPTH
    max_header_value_bytes: Count = defaults.MAX_HEADER_VALUE_BYTES
    max_properties: Annotated[int, msgspec.Meta(ge=0)] = defaults.MAX_PROPERTIES
    header_read_timeout: Positive = defaults.HEADER_READ_TIMEOUT
    shutdown_grace_period: Count = defaults.SHUTDOWN_GRACE_PERIOD
    body_read_timeout: Positive = defaults.BODY_READ_TIMEOUT
    max_targets_per_request: Count = defaults.MAX_TARGETS_PER_REQUEST
    max_attempts_per_request: Count = defaults.MAX_ATTEMPTS_PER_REQUEST
    max_response_bytes: Count = defaults.MAX_RESPONSE_BYTES
    stream_buffer_bytes: Count = defaults.STREAM_BUFFER_BYTES
    stream_stall_timeout: Positive = defaults.STREAM_STALL_TIMEOUT
    upstream_connect_timeout: Positive = defaults.UPSTREAM_CONNECT_TIMEOUT
    upstream_first_byte_timeout: Positive = defaults.UPSTREAM_FIRST_BYTE_TIMEOUT
    upstream_total_timeout: Positive = defaults.UPSTREAM_TOTAL_TIMEOUT
    upstream_pool_size: Count = defaults.UPSTREAM_POOL_SIZE
    upstream_client: UpstreamClient = defaults.UPSTREAM_CLIENT
    stream_relay: StreamRelay = defaults.STREAM_RELAY
    retry_attempts: Annotated[int, msgspec.Meta(ge=0)] = defaults.RETRY_ATTEMPTS
    retry_backoff: Annotated[float, msgspec.Meta(ge=0)] = defaults.RETRY_BACKOFF
    retry_backoff_max: Annotated[float, msgspec.Meta(ge=0)] = defaults.RETRY_BACKOFF_MAX
    upstream_deadline: Positive = defaults.UPSTREAM_DEADLINE
    circuit_breaker: CircuitBreakerConfig = msgspec.field(default_factory=CircuitBreakerConfig)
    log_level: LogLevel = defaults.LOG_LEVEL
    access_log: bool = defaults.ACCESS_LOG
    default_max_tokens: Count = defaults.DEFAULT_MAX_TOKENS
    cache_enabled: bool = defaults.CACHE_ENABLED
    cache_enabled_keys: tuple[NonEmpty, ...] = defaults.CACHE_ENABLED_KEYS
    cache_enabled_projects: tuple[NonEmpty, ...] = defaults.CACHE_ENABLED_PROJECTS
    cache_ttl: Count = defaults.CACHE_TTL
    cache_max_ttl: Count = defaults.CACHE_MAX_TTL
    cache_max_bytes: Count = defaults.CACHE_MAX_BYTES
    cache_max_entry_bytes: Count = defaults.CACHE_MAX_ENTRY_BYTES
    cache_timeout: Positive = defaults.CACHE_TIMEOUT
    cache_semantic_enabled: bool = defaults.CACHE_SEMANTIC_ENABLED
    cache_advanced_by_default: bool = defaults.CACHE_ADVANCED_BY_DEFAULT
    cache_semantic_threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = (
        defaults.CACHE_SEMANTIC_THRESHOLD
    )
    cache_semantic_timeout: Positive = defaults.CACHE_SEMANTIC_TIMEOUT
    cache_semantic_max_chars: Count = defaults.CACHE_SEMANTIC_MAX_CHARS
    logging_enabled: bool = defaults.LOGGING_ENABLED
    log_requests_ttl_days: Count = defaults.LOG_REQUESTS_TTL_DAYS
    log_spans_ttl_days: Count = defaults.LOG_SPANS_TTL_DAYS
    log_breaker_events_ttl_days: Count = defaults.LOG_BREAKER_EVENTS_TTL_DAYS
    log_rollups_ttl_days: Count = defaults.LOG_ROLLUPS_TTL_DAYS
    log_bodies_ttl_days: Count = defaults.LOG_BODIES_TTL_DAYS
    log_bodies: bool = defaults.LOG_BODIES
    log_body_max_bytes: Count = defaults.LOG_BODY_MAX_BYTES
    log_scrub: tuple[ScrubKind, ...] = msgspec.field(
        default_factory=lambda: _from_defaults("LOG_SCRUB", tuple[ScrubKind, ...])
    )
    log_batch_size: Count = defaults.LOG_BATCH_SIZE
    log_flush_interval: Positive = defaults.LOG_FLUSH_INTERVAL
    log_flush_max_interval: Positive = defaults.LOG_FLUSH_MAX_INTERVAL
    log_spool_max_bytes: Count = defaults.LOG_SPOOL_MAX_BYTES
    log_probe_interval: Positive = defaults.LOG_PROBE_INTERVAL
    log_store_max_memory: Count = defaults.LOG_STORE_MAX_MEMORY
    log_store_backlog_max_bytes: Count = defaults.LOG_STORE_BACKLOG_MAX_BYTES
    log_query_timeout: Positive = defaults.LOG_QUERY_TIMEOUT
    log_query_max_rows: Count = defaults.LOG_QUERY_MAX_ROWS
    dashboard_enabled: bool = defaults.DASHBOARD_ENABLED
    dashboard_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = defaults.DASHBOARD_PORT
    dashboard_session_ttl: Positive = defaults.DASHBOARD_SESSION_TTL
    dashboard_export_max_rows: Count = defaults.DASHBOARD_EXPORT_MAX_ROWS
    dashboard_tls_cert: str | None = defaults.DASHBOARD_TLS_CERT
    dashboard_tls_key: str | None = defaults.DASHBOARD_TLS_KEY
    otel_endpoint: str | None = defaults.OTEL_ENDPOINT
    otel_headers: dict[str, str] = msgspec.field(
        default_factory=lambda: dict(defaults.OTEL_HEADERS)
    )
    otel_timeout: Positive = defaults.OTEL_TIMEOUT
    otel_queue_size: Count = defaults.OTEL_QUEUE_SIZE
    otel_batch_size: Count = defaults.OTEL_BATCH_SIZE
    otel_batch_interval: Positive = defaults.OTEL_BATCH_INTERVAL
    otel_max_attempts: Count = defaults.OTEL_MAX_ATTEMPTS
    otel_retry_backoff: Annotated[float, msgspec.Meta(ge=0)] = defaults.OTEL_RETRY_BACKOFF
    otel_service_name: NonEmpty = defaults.OTEL_SERVICE_NAME
    metrics_max_label_sets: Count = defaults.METRICS_MAX_LABEL_SETS
    source: str = "defaults"  # where these settings came from, for start-up output

    def __post_init__(self) -> None:
        _check_echo(self)
        _check_models(self)
        _check_routing_rules(self)
        _check_api_keys(self)
        _check_store_urls(self)
        _check_cache(self)
        _check_vectors(self)
        _check_dashboard(self)

    def unavailable_providers(self) -> list[str]:
        """Providers that need a key whose environment variable is unset, sorted."""
        return sorted(
            name
            for name, provider in self.providers.items()
            if provider.needs_key and provider.api_key() is None
        )

    def provider_available(self, provider: str) -> bool:
        """Whether ``provider`` is configured and has its key (if it needs one)."""
        config = self.providers.get(provider)
        return config is not None and (not config.needs_key or config.api_key() is not None)

    def effective_provider(self, model_name: str) -> str:
        """The provider that answers ``model_name``: its catalog provider, or ``echo`` when
        that provider's key is unset. Read at call time, so a key exported later counts.

        Raises KeyError for a model that is not in the catalog.
        """
        provider = self.models[model_name].provider
        return provider if self.provider_available(provider) else ECHO


def effective_provider(settings: Settings, model_name: str) -> str:
    """Function form of ``Settings.effective_provider``."""
    return settings.effective_provider(model_name)


def _known(names: Any) -> str:
    return ", ".join(sorted(names)) or "none"


def _check_echo(settings: Settings) -> None:
    echo = settings.providers.get(ECHO)
    if echo is not None and echo.kind != "echo":
        raise ValueError(
            f"PROVIDERS[{ECHO!r}].kind: the name {ECHO!r} is reserved for the echo provider, "
            f"got kind {echo.kind!r}"
        )


def _check_models(settings: Settings) -> None:
    for name, model in settings.models.items():
        if model.provider not in settings.providers:
            raise ValueError(
                f"MODELS[{name!r}].provider: unknown provider {model.provider!r}; "
                f"PROVIDERS defines: {_known(settings.providers)}"
            )


def _check_routing_rules(settings: Settings) -> None:
    for name, rule in settings.routing_rules.items():
        for index, target in enumerate(rule.targets):
            if target.provider not in settings.providers:
                raise ValueError(
                    f"ROUTING_RULES[{name!r}].targets[{index}].provider: unknown provider "
                    f"{target.provider!r}; PROVIDERS defines: {_known(settings.providers)}"
                )


def _check_api_keys(settings: Settings) -> None:
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    for index, entry in enumerate(settings.api_keys):
        where = f"API_KEYS[{index}]"
        if entry.id in seen_ids:
            raise ValueError(f"{where}.id: duplicate id {entry.id!r}")
        if entry.hash in seen_hashes:
            raise ValueError(f"{where}.hash: the same key hash appears twice")
        if entry.routing_rule is not None and entry.routing_rule not in settings.routing_rules:
            raise ValueError(
                f"{where}.routing_rule: unknown routing rule {entry.routing_rule!r}; "
                f"ROUTING_RULES defines: {_known(settings.routing_rules)}"
            )
        seen_ids.add(entry.id)
        seen_hashes.add(entry.hash)


def _check_dashboard(settings: Settings) -> None:
    if settings.dashboard_enabled and settings.dashboard_port == settings.port:
        raise ValueError(
            f"DASHBOARD_PORT: must differ from PORT ({settings.port}): the dashboard is never "
            "served on the gateway's port"
        )
    if (settings.dashboard_tls_cert is None) != (settings.dashboard_tls_key is None):
        raise ValueError("DASHBOARD_TLS_CERT and DASHBOARD_TLS_KEY: set both, or neither")


def _check_store_urls(settings: Settings) -> None:
    for field, schemes in _STORE_SCHEMES.items():
        url = getattr(settings, field)
        if url is None:
            continue
        scheme, sep, _ = url.partition("://")
        if scheme not in schemes:
            # Only the scheme is shown: the rest of a store URL may carry a password.
            got = f"scheme {scheme!r}" if sep else "no scheme"
            raise ValueError(
                f"{field.upper()}: expected a URL starting with "
                f"{' or '.join(s + '://' for s in schemes)}, got {got}"
            )


def _check_cache(settings: Settings) -> None:
    if settings.cache_ttl > settings.cache_max_ttl:
        raise ValueError(
            f"CACHE_TTL: {settings.cache_ttl}s is longer than CACHE_MAX_TTL "
            f"({settings.cache_max_ttl}s), the longest an answer may be cached"
        )
    if settings.cache_max_entry_bytes > settings.cache_max_bytes:
        raise ValueError(
            f"CACHE_MAX_ENTRY_BYTES: {settings.cache_max_entry_bytes} is larger than "
            f"CACHE_MAX_BYTES ({settings.cache_max_bytes}), the whole in-memory cache"
        )


def _check_vectors(settings: Settings) -> None:
    if settings.embedding_model != "local" and settings.embedding_model not in settings.models:
        raise ValueError(
            f"EMBEDDING_MODEL: {settings.embedding_model!r} is neither 'local' nor a model of "
            f"MODELS; MODELS defines: {_known(settings.models)}"
        )
    model = settings.firewall.model
    if model is not None and model not in settings.models:
        raise ValueError(
            f"FIREWALL.model: unknown model {model!r}; MODELS defines: {_known(settings.models)}"
        )
