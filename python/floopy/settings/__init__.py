"""Settings: the documented defaults, a settings module over them, validated once at start-up.

``load_settings()`` returns a frozen ``Settings``; docs/configuration.md documents every name.
"""

from floopy.settings.firewall import FirewallConfig
from floopy.settings.loader import (
    SETTING_NAMES,
    SettingsError,
    load_settings,
    unknown_env_variables,
)
from floopy.settings.policies import CircuitBreakerConfig, OrganizationConfig, RateLimitPolicy
from floopy.settings.schema import (
    ApiKeyEntry,
    ModelConfig,
    ProviderConfig,
    RoutingRule,
    RoutingTarget,
    Settings,
    effective_provider,
)

__all__ = [
    "SETTING_NAMES",
    "ApiKeyEntry",
    "CircuitBreakerConfig",
    "FirewallConfig",
    "ModelConfig",
    "OrganizationConfig",
    "ProviderConfig",
    "RateLimitPolicy",
    "RoutingRule",
    "RoutingTarget",
    "Settings",
    "SettingsError",
    "effective_provider",
    "load_settings",
    "unknown_env_variables",
]
