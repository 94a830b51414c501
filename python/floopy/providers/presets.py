"""Ready-made ``PROVIDERS`` entries for the common vendors, to use in a settings module::

    from floopy.providers.presets import PRESETS

    PROVIDERS = {"openai": PRESETS["openai"], "groq": PRESETS["groq"]}

Every OpenAI-compatible vendor is the same code (``kind: openai_compatible``) with its own
base URL and key variable; local servers (Ollama, vLLM) take no key. Azure needs your
resource's URL, so its entry is a template to copy (docs/configuration.md shows it).
OpenAI, Anthropic and Gemini are the default providers' entries (``settings/defaults.py``).
"""

from __future__ import annotations

from typing import Any

from floopy.settings.defaults import PROVIDERS


def _compatible(base_url: str, key: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "openai_compatible", "base_url": base_url}
    if key is not None:
        entry["api_key_env"] = key
    return entry


PRESETS: dict[str, dict[str, Any]] = {
    # Copies, so that editing a preset leaves the defaults as documented.
    **{name: dict(PROVIDERS[name]) for name in ("openai", "anthropic", "gemini")},
    "groq": _compatible("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": _compatible("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "deepseek": _compatible("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "together": _compatible("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": _compatible("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "xai": _compatible("https://api.x.ai/v1", "XAI_API_KEY"),
    "perplexity": _compatible("https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    "openrouter": _compatible("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "cerebras": _compatible("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    # Local servers: no key. Slow first tokens on a CPU are normal, so they get more time.
    "ollama": {**_compatible("http://localhost:11434/v1"), "first_byte_timeout": 300.0},
    "vllm": {**_compatible("http://localhost:8000/v1"), "first_byte_timeout": 300.0},
}
