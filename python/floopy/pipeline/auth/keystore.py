"""The presented gateway API key to its API_KEYS entry (organization, project,
key policy).

Keys are looked up by their SHA-256 hash, so the gateway never holds a plaintext key. The
dict lookup's timing can only reveal something about the hash, which does not help anyone
find a key; the final ``hmac.compare_digest`` keeps the comparison itself constant-time.
With API_KEYS empty, the gateway accepts a development key whose hash lives under DATA_DIR.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

from floopy.errors import InvalidApiKey
from floopy.keys import DEV_KEY_ID, DevKey, ensure_dev_key, hash_key
from floopy.settings import ApiKeyEntry

if TYPE_CHECKING:
    from floopy.settings import Settings

__all__ = ["DevKey", "KeyStore", "dev_key_entry", "ensure_dev_key"]

_MISSING = (
    "Missing API key. Pass your Floopy key as `Authorization: Bearer <key>` "
    "(or in the `x-api-key` header)."
)
_INVALID = "Invalid API key. Check the key you are sending, or mint one with `floopy keys create`."


def dev_key_entry(key_hash: str) -> ApiKeyEntry:
    return ApiKeyEntry(id=DEV_KEY_ID, hash=key_hash, organization="default", name="development")


class KeyStore:
    """The accepted keys, by hash. Built once per worker at start-up."""

    __slots__ = ("_by_hash", "dev_key")

    def __init__(self, entries: Iterable[ApiKeyEntry], dev_key: DevKey | None = None) -> None:
        self._by_hash = {entry.hash: entry for entry in entries}
        self.dev_key = dev_key  # set in development mode (API_KEYS empty)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        if settings.api_keys:
            return cls(settings.api_keys)
        dev_key = ensure_dev_key(settings.data_dir)
        return cls([dev_key_entry(dev_key.hash)], dev_key)

    def authenticate(self, presented: str | None) -> ApiKeyEntry:
        """The entry for ``presented`` (a key, or an ``Authorization`` value with ``Bearer``).

        Raises InvalidApiKey; the message never repeats what was presented.
        """
        key = _bare_key(presented)
        if not key:
            raise InvalidApiKey(_MISSING)
        digest = hash_key(key)
        entry = self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.hash, digest):
            raise InvalidApiKey(_INVALID)
        return entry


def _bare_key(presented: str | None) -> str:
    if presented is None:
        return ""
    text = presented.strip()
    scheme, _, rest = text.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else text
