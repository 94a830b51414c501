"""Loading the settings: the defaults, then the settings module, then environment variables.

``FLOOPY_SETTINGS`` names the settings module, as a dotted module name (``mysite.floopy``)
or a path to a ``.py`` file; unset means the documented defaults alone. The module's
UPPER_CASE attributes override defaults; an UPPER_CASE name that is not a setting is an error,
since a typo would otherwise be ignored without a word. ``FLOOPY_<NAME>`` variables override
single values last. Each value is validated on its own first, so every error message starts
with the setting it is about: ``MODELS['gpt-4o'].provider: ...``.

The built-in ``echo`` provider is always defined: a provider whose API key variable is unset
has its models answered by ``echo`` (see ``Settings.effective_provider``), so the gateway
answers out of the box and start-up output lists the unavailable providers.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, get_args, get_origin

import msgspec

from floopy.settings import defaults
from floopy.settings.firewall import FirewallConfig
from floopy.settings.policies import CircuitBreakerConfig, OrganizationConfig, RateLimitPolicy
from floopy.settings.schema import (
    ECHO,
    ApiKeyEntry,
    ModelConfig,
    ProviderConfig,
    RoutingRule,
    RoutingTarget,
    Settings,
)

SETTINGS_VAR = "FLOOPY_SETTINGS"
ENV_PREFIX = "FLOOPY_"

# Setting name (UPPER_CASE) -> its field in Settings.
_FIELDS = {f.name.upper(): f for f in msgspec.structs.fields(Settings) if f.name != "source"}
SETTING_NAMES: tuple[str, ...] = tuple(_FIELDS)

_CONFIG_FIELDS = {
    f.name
    for struct in (
        ProviderConfig,
        ModelConfig,
        ApiKeyEntry,
        RoutingRule,
        RoutingTarget,
        CircuitBreakerConfig,
        FirewallConfig,
        RateLimitPolicy,
        OrganizationConfig,
    )
    for f in msgspec.structs.fields(struct)
}
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]*)`")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(Exception):
    """An invalid setting. The message starts with the setting's name."""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Loads and validates the settings; raises SettingsError naming the bad setting."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {name: getattr(defaults, name) for name in _FIELDS}
    origins: dict[str, str] = {}
    spec = env.get(SETTINGS_VAR, "").strip()
    if spec:
        from_module = _module_settings(_import_settings(spec), spec)
        values.update(from_module)
        origins.update(dict.fromkeys(from_module, f"set in {spec}"))
    from_env = _env_settings(env, _key_variables(values["PROVIDERS"]))
    values.update(from_env)
    origins.update({name: f"from {ENV_PREFIX}{name}" for name in from_env})
    return _build(values, origins, _source(spec, from_env))


def _source(spec: str, from_env: Iterable[str]) -> str:
    overridden = ", ".join(ENV_PREFIX + name for name in from_env)
    base = spec or "defaults"
    return f"{base} + {overridden}" if overridden else base


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean {close[0]}?" if close else ""


# --- the settings module -------------------------------------------------------------------


def _import_settings(spec: str) -> ModuleType:
    try:
        if spec.endswith(".py") or "/" in spec or os.sep in spec:
            return _import_path(Path(spec))
        return _import_dotted(spec)
    except SettingsError:
        raise
    except Exception as exc:  # the module's own code failed: say where, keep the cause
        raise SettingsError(
            f"{SETTINGS_VAR}: cannot load {spec!r}: {type(exc).__name__}: {exc}"
        ) from exc


def _import_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise SettingsError(f"{SETTINGS_VAR}: no settings file at {str(path)!r}")
    name = "floopy_settings_module"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SettingsError(f"{SETTINGS_VAR}: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _import_dotted(name: str) -> ModuleType:
    # The console script does not put the working directory on sys.path (python -m does);
    # a settings module next to where the operator runs `floopy serve` should be found.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(name)


def _module_settings(module: ModuleType, spec: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if attr.startswith("_") or not attr.isupper():
            continue  # helpers, imports and private names are not settings
        if attr not in _FIELDS:
            raise SettingsError(
                f"{attr}: not a setting (in {spec}){_did_you_mean(attr, _FIELDS)} "
                "Name helper values in lower case or with a leading underscore."
            )
        found[attr] = value
    return found


# --- environment overrides -----------------------------------------------------------------


def _key_variables(providers: object) -> set[str]:
    """Variables named as providers' api_key_env: a FLOOPY_-prefixed key variable is no typo."""
    names: set[str] = set()
    if isinstance(providers, Mapping):
        for provider in providers.values():
            if isinstance(provider, Mapping):
                var = provider.get("api_key_env")
            else:
                var = getattr(provider, "api_key_env", None)
            if isinstance(var, str):
                names.add(var)
    return names


def _env_settings(env: Mapping[str, str], key_variables: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var == SETTINGS_VAR or var in key_variables:
            continue
        name = var.removeprefix(ENV_PREFIX)
        if name in _FIELDS:
            found[name] = _parse_env(name, env[var], _FIELDS[name].type)
    return found


def unknown_env_variables(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[str]:
    """``FLOOPY_*`` variables that set nothing, each with a "did you mean" when one is close.

    They are reported, not fatal: a shell may well hold ``FLOOPY_``-named variables of its
    own (a key for a client script, say), and refusing to start over them would be hostile."""
    env = os.environ if environ is None else environ
    key_variables = _key_variables(settings.providers)
    reports = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var == SETTINGS_VAR or var in key_variables:
            continue
        name = var.removeprefix(ENV_PREFIX)
        if name not in _FIELDS:
            reports.append(f"{var} is not a setting, ignored{_did_you_mean(name, _FIELDS)}")
    return reports


def _parse_env(name: str, raw: str, type_: Any) -> Any:
    info = msgspec.inspect.type_info(type_)
    if isinstance(info, msgspec.inspect.UnionType):
        if raw == "":
            return None  # FLOOPY_REDIS_URL= turns an optional setting off
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(info, msgspec.inspect.BoolType):
        return _parse_bool(name, raw)
    if isinstance(info, msgspec.inspect.IntType):
        return _parse_number(name, raw, int, "an integer")
    if isinstance(info, msgspec.inspect.FloatType):
        return _parse_number(name, raw, float, "a number")
    if isinstance(info, (msgspec.inspect.StrType, msgspec.inspect.LiteralType)):
        return raw
    return _parse_json(name, raw)


def _parse_bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise SettingsError(
        f"{name}: {ENV_PREFIX}{name}={raw[:40]!r} is not a boolean (true/false/1/0/yes/no)"
    )


def _parse_number(name: str, raw: str, kind: type[int] | type[float], what: str) -> int | float:
    try:
        return kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: {ENV_PREFIX}{name}={raw[:40]!r} is not {what}") from None


def _parse_json(name: str, raw: str) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        # The value itself is not shown: PROVIDERS headers may carry secrets.
        raise SettingsError(f"{name}: {ENV_PREFIX}{name} is not valid JSON: {exc}") from None


# --- validation ----------------------------------------------------------------------------


def _build(values: dict[str, Any], origins: dict[str, str], source: str) -> Settings:
    typed = {
        name.lower(): _convert(name, value, origins.get(name)) for name, value in values.items()
    }
    # echo is built in: it stands in for providers whose key is unset.
    typed["providers"].setdefault(ECHO, ProviderConfig(kind="echo"))
    if "MODELS" not in origins:
        # The default catalog spans several vendors; it keeps the models of the providers
        # configured, so PROVIDERS with OpenAI alone does not also demand a MODELS.
        typed["models"] = {
            name: model
            for name, model in typed["models"].items()
            if model.provider in typed["providers"]
        }
    try:
        return Settings(**typed, source=source)
    except (ValueError, TypeError) as exc:
        raise SettingsError(_with_context(str(exc), origins)) from None


def _convert(name: str, value: Any, origin: str | None) -> Any:
    type_ = _FIELDS[name].type
    if get_origin(type_) is dict and isinstance(value, Mapping):
        # One entry at a time, so the error names the key (msgspec's path shows `[...]`).
        item_type = get_args(type_)[1]
        return {
            _entry_key(name, key, origin): _convert_one(f"{name}[{key!r}]", item, item_type, origin)
            for key, item in value.items()
        }
    return _convert_one(name, value, type_, origin)


def _entry_key(name: str, key: object, origin: str | None) -> str:
    if not isinstance(key, str):
        raise SettingsError(_located(name, f"keys must be strings, got {key!r}", origin))
    return key


def _convert_one(where: str, value: Any, type_: Any, origin: str | None) -> Any:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(where, str(exc), origin)) from None


def _describe(where: str, error: str, origin: str | None) -> str:
    """msgspec's ``Expected ... - at `$.x`` as ``SETTING[...].x: Expected ...``."""
    match = _MSGSPEC_PATH.match(error)
    assert match is not None  # the pattern matches any string
    message = match["message"]
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        message += _did_you_mean(unknown["field"], _CONFIG_FIELDS)
    return _located(where + (match["path"] or ""), message, origin)


def _located(where: str, message: str, origin: str | None) -> str:
    return f"{where}: {message}" + (f" ({origin})" if origin else "")


def _with_context(message: str, origins: dict[str, str]) -> str:
    """Adds where the offending setting came from to a cross-setting error."""
    name = re.split(r"[\[.:]", message, maxsplit=1)[0]
    if name == "MODELS" and "MODELS" not in origins and "PROVIDERS" in origins:
        message += " (MODELS is the default catalog here; set MODELS to match your PROVIDERS)"
    elif name in origins:
        message += f" ({origins[name]})"
    return message
