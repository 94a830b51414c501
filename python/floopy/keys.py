"""Gateway API keys: minting, hashing, and the development key kept under DATA_DIR.

A key is shown once, when it is minted; settings and disk hold only its SHA-256 hash. SHA-256
without salt is enough here because keys are 256 random bits, not passwords: there is nothing
to guess, and an unsalted hash lets the gateway find a key with one dict lookup.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floopy.settings import SettingsError

KEY_PREFIX = "fpk_"
DEV_KEY_FILE = "dev-key.json"
DEV_KEY_ID = "dev"

_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def mint_key() -> str:
    """A new key: ``fpk_`` and 43 URL-safe base64 characters (256 random bits)."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    return KEY_PREFIX + raw.decode("ascii")


def hash_key(key: str) -> str:
    """The form a key is stored in: ``sha256:<64 lowercase hex>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key_hash: str) -> str:
    """A stable, public id for a key (logged with each request), derived from its hash."""
    return "key_" + key_hash.removeprefix("sha256:")[:12]


def api_key_entry(
    key: str,
    organization: str = "default",
    project: str | None = None,
    locked: bool = False,
    routing_rule: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The API_KEYS entry for ``key``; options left at their default are omitted."""
    key_hash = hash_key(key)
    entry: dict[str, Any] = {"id": key_id(key_hash), "hash": key_hash}
    entry["organization"] = organization
    optional = {"project": project, "routing_rule": routing_rule, "name": name}
    entry.update({field: value for field, value in optional.items() if value is not None})
    if locked:
        entry["locked_to_project"] = True
    return entry


@dataclass(frozen=True, slots=True)
class DevKey:
    key: str | None  # the plaintext, only in the process that just created it
    hash: str
    created: bool
    path: Path


def ensure_dev_key(data_dir: str | Path) -> DevKey:
    """The development key's hash from DATA_DIR, minting the key on first use.

    Several workers may start at once: the file is published with a hard link, which fails
    if it exists, so exactly one process mints the key and the others read its hash.
    """
    path = Path(data_dir) / DEV_KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return DevKey(None, _read_dev_key(path), False, path)
    key = mint_key()
    key_hash = hash_key(key)
    if _publish(path, _dev_key_record(key_hash)):
        return DevKey(key, key_hash, True, path)
    return DevKey(None, _read_dev_key(path), False, path)


def _dev_key_record(key_hash: str) -> bytes:
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"id": DEV_KEY_ID, "hash": key_hash, "created_at": created}
    return (json.dumps(record, indent=2) + "\n").encode()


def _publish(path: Path, data: bytes) -> bool:
    """Writes ``data`` to ``path`` unless it exists; True when this call created it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_new(tmp, data)
    try:
        os.link(tmp, path)  # atomic, and the file is complete before anyone can see it
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links
        return _create_exclusive(path, data)
    finally:
        tmp.unlink(missing_ok=True)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_exclusive(path: Path, data: bytes) -> bool:
    try:
        _write_new(path, data)
    except FileExistsError:
        return False
    return True


def _read_dev_key(path: Path) -> str:
    text = path.read_text()
    for _ in range(50):  # without hard links, a peer may still be writing it
        if text:
            break
        time.sleep(0.02)
        text = path.read_text()
    try:
        key_hash = json.loads(text)["hash"]
    except (ValueError, KeyError, TypeError):
        key_hash = None
    if not isinstance(key_hash, str) or not _HASH.fullmatch(key_hash):
        raise SettingsError(
            f"DATA_DIR: {path} is not a valid development key file; "
            "delete it to mint a new development key"
        )
    return key_hash
