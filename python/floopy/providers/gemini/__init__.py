"""Google Gemini: request, response, stream and error translation, one module each."""

from floopy.providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
