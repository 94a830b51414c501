"""Anthropic's Messages API as a provider: ``provider`` calls it, ``request``, ``response``
and ``stream`` translate to and from OpenAI's format, ``wire`` reads its format and maps its
stop reasons, usage and errors, ``content`` converts images and documents."""

from floopy.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
