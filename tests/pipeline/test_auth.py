"""Auth: keys by hash, never echoed; the development key made once, atomically."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from floopy.errors import InvalidApiKey
from floopy.keys import DEV_KEY_FILE, ensure_dev_key, hash_key, mint_key
from floopy.pipeline.auth import KeyStore
from floopy.settings import ApiKeyEntry, Settings, SettingsError


def store_with(key: str) -> KeyStore:
    entry = ApiKeyEntry(id="k1", hash=hash_key(key), organization="acme", project="web")
    return KeyStore.from_settings(Settings(api_keys=(entry,)))


def test_valid_key_returns_its_entry() -> None:
    key = mint_key()
    entry = store_with(key).authenticate(key)
    assert (entry.id, entry.organization, entry.project) == ("k1", "acme", "web")


def test_bearer_prefix_is_accepted() -> None:
    key = mint_key()
    assert store_with(key).authenticate(f"Bearer {key}").id == "k1"


def test_invalid_key_is_rejected_without_echoing_it() -> None:
    store = store_with(mint_key())
    wrong = mint_key()
    with pytest.raises(InvalidApiKey, match=r"^Invalid API key") as caught:
        store.authenticate(wrong)
    assert wrong not in caught.value.message
    assert caught.value.status == 401
    assert caught.value.code == "INVALID_API_KEY"


@pytest.mark.parametrize("presented", [None, "", "   ", "Bearer "])
def test_missing_key(presented: str | None) -> None:
    with pytest.raises(InvalidApiKey, match=r"^Missing API key"):
        store_with(mint_key()).authenticate(presented)


def test_minted_keys_have_the_documented_shape() -> None:
    key = mint_key()
    assert key.startswith("fpk_") and len(key) == 4 + 43
    assert mint_key() != key
    assert hash_key(key).startswith("sha256:") and len(hash_key(key)) == 7 + 64


def test_dev_key_is_created_once_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    first = ensure_dev_key(tmp_path / "data")
    assert first.created and first.key is not None
    path = tmp_path / "data" / DEV_KEY_FILE
    text = path.read_text()
    assert first.key not in text
    assert json.loads(text)["hash"] == hash_key(first.key) == first.hash
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    second = ensure_dev_key(tmp_path / "data")
    assert (second.key, second.created, second.hash) == (None, False, first.hash)


def test_empty_api_keys_accept_the_dev_key(tmp_path: Path) -> None:
    dev = ensure_dev_key(tmp_path)
    assert dev.key is not None
    store = KeyStore.from_settings(Settings(data_dir=str(tmp_path)))
    entry = store.authenticate(dev.key)
    assert (entry.id, entry.organization) == ("dev", "default")
    assert store.dev_key is not None and store.dev_key.key is None  # already existed
    with pytest.raises(InvalidApiKey):
        store.authenticate(mint_key())


def test_configured_keys_disable_the_dev_key(tmp_path: Path) -> None:
    dev = ensure_dev_key(tmp_path)
    assert dev.key is not None
    entry = ApiKeyEntry(id="k1", hash=hash_key(mint_key()))
    store = KeyStore.from_settings(Settings(data_dir=str(tmp_path), api_keys=(entry,)))
    with pytest.raises(InvalidApiKey):
        store.authenticate(dev.key)


def test_corrupt_dev_key_file_says_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / DEV_KEY_FILE).write_text("{}")
    with pytest.raises(SettingsError, match="delete it to mint a new development key"):
        ensure_dev_key(tmp_path)


ROUNDS = 20
RACERS = 4


def _race(root: str, barrier: Any, out: Any) -> None:
    # Every round all racers start together on a fresh DATA_DIR, so a check-then-create
    # implementation loses the race in at least one of the rounds.
    for round_ in range(ROUNDS):
        barrier.wait()
        dev = ensure_dev_key(Path(root) / str(round_))
        out.put((round_, dev.key, dev.hash, dev.created))


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(RACERS), ctx.Queue()
    racers = [ctx.Process(target=_race, args=(str(tmp_path), barrier, out)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    results = [out.get(timeout=60) for _ in range(ROUNDS * RACERS)]
    for racer in racers:
        racer.join(timeout=30)
    for round_ in range(ROUNDS):
        outcome = [r[1:] for r in results if r[0] == round_]
        created = [key for key, _, was_created in outcome if was_created]
        assert len(created) == 1 and created[0] is not None, f"round {round_}: {len(created)} keys"
        assert {key_hash for _, key_hash, _ in outcome} == {hash_key(created[0])}
        files = [p.name for p in (tmp_path / str(round_)).iterdir()]
        assert files == [DEV_KEY_FILE]  # no temporary files left behind


def test_dev_key_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("hard links are not supported here")

    monkeypatch.setattr("floopy.keys.os.link", no_links)
    first = ensure_dev_key(tmp_path)
    second = ensure_dev_key(tmp_path)
    assert first.created and not second.created and second.hash == first.hash
    assert [p.name for p in tmp_path.iterdir()] == [DEV_KEY_FILE]
    assert stat.S_IMODE((tmp_path / DEV_KEY_FILE).stat().st_mode) == 0o600
