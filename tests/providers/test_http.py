"""The time limits every provider call shares (``providers/http.py``): each provider's own
``Timeouts`` resolved from its config and the global settings, its connect limit given to
the upstream client with every request (both clients), and an open stream read within the
first-byte, silence and total limits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from floopy import errors
from floopy.providers import build_providers, timeouts_of
from floopy.providers.anthropic import AnthropicProvider
from floopy.providers.base import Call, EmbeddingCall
from floopy.providers.gemini import GeminiProvider
from floopy.providers.http import Timeouts, UpstreamBody
from floopy.providers.openai import OpenAIProvider
from floopy.settings import Settings, load_settings
from floopy.upstream import Answer, Upstream
from floopy.upstream.aiohttp_client import AiohttpResponse, AiohttpUpstream, per_request
from floopy.upstream.native import NativeUpstream

KEYS = {"FLOOPY_TEST_KEY": "sk-test"}


def load(tmp_path: Path, providers: str, **globals_: float) -> Settings:
    lines = [f"UPSTREAM_{name.upper()} = {value}" for name, value in globals_.items()]
    lines.append(f"PROVIDERS = {providers}")
    path = tmp_path / "limits_settings.py"
    path.write_text("\n".join(lines) + "\n")
    return load_settings({"FLOOPY_SETTINGS": str(path)})


# --- resolving each provider's limits ---------------------------------------------------------


def test_a_provider_own_limits_win_and_the_global_ones_fill_the_rest(tmp_path: Path) -> None:
    url = "'base_url': 'http://127.0.0.1:9/v1'"
    settings = load(
        tmp_path,
        f"""{{
            'own': {{'kind': 'openai_compatible', {url}, 'connect_timeout': 0.5,
                     'first_byte_timeout': 1.5, 'total_timeout': 2.5}},
            'global': {{'kind': 'openai_compatible', {url}}},
            'mixed': {{'kind': 'openai_compatible', {url}, 'connect_timeout': 0.25}},
        }}""",
        connect_timeout=7.0,
        first_byte_timeout=8.0,
        total_timeout=9.0,
    )
    providers = settings.providers
    assert timeouts_of(providers["own"], settings) == Timeouts(0.5, 1.5, 2.5)
    assert timeouts_of(providers["global"], settings) == Timeouts(7.0, 8.0, 9.0)
    assert timeouts_of(providers["mixed"], settings) == Timeouts(0.25, 8.0, 9.0)


def test_the_connect_limit_is_aiohttp_s_per_request_timeout() -> None:
    aiohttp_limits = per_request(Timeouts(connect=0.75, first_byte=3, total=4))
    assert aiohttp_limits.sock_connect == 0.75
    # The other limits are the gateway's own timers, which say which one ran out.
    assert aiohttp_limits.total is None and aiohttp_limits.sock_read is None


# --- every provider's requests carry its connect limit ----------------------------------------


DOWN = b'{"error": {"message": "down"}}'


class _FailingResponse:
    status = 500
    headers: dict[str, str] = {}

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError  # a 500 is read whole

    async def read(self) -> bytes:
        return DOWN

    def close(self) -> None:
        pass


class RecordingUpstream:
    """Stands in for the worker's upstream client: records the limits of each request and
    answers every one with a 500, which is all these tests need."""

    def __init__(self) -> None:
        self.timeouts: list[Timeouts] = []

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> Answer:
        self.timeouts.append(timeouts)
        return Answer(500, {}, DOWN)

    async def open(
        self, url: str, headers: dict[str, str], body: bytes, timeouts: Timeouts
    ) -> _FailingResponse:
        self.timeouts.append(timeouts)
        return _FailingResponse()

    async def close(self) -> None:
        pass


CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}'
EMBED = b'{"model": "m", "input": "hi"}'


def chat(stream: bool) -> Call:
    return Call(body=CHAT, model="m", requested_model="m", stream=stream, include_usage=False)


def embedding() -> EmbeddingCall:
    return EmbeddingCall(body=EMBED, model="m", requested_model="m", texts=("hi",))


def calls_of(provider: Any) -> Iterator[Callable[[], Awaitable[object]]]:
    """Every way the provider calls upstream."""
    yield lambda: provider.complete(chat(stream=False))
    yield lambda: provider.stream(chat(stream=True))
    if isinstance(provider, AnthropicProvider):
        yield lambda: provider.messages_complete(chat(stream=False))
        yield lambda: provider.messages_stream(chat(stream=True))
    if isinstance(provider, OpenAIProvider | GeminiProvider):
        yield lambda: provider.embed(embedding())


def test_every_provider_request_carries_that_provider_s_connect_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    key = "'api_key_env': 'FLOOPY_TEST_KEY'"
    settings = load(
        tmp_path,
        f"""{{
            'compatible': {{'kind': 'openai_compatible', 'base_url': 'http://h/v1',
                            'connect_timeout': 0.11}},
            'openai': {{'kind': 'openai', 'base_url': 'http://h/v1', {key},
                        'connect_timeout': 0.22}},
            'azure': {{'kind': 'azure', 'base_url': 'http://h', {key}, 'api_version': 'v',
                       'connect_timeout': 0.33}},
            'claude': {{'kind': 'anthropic', 'base_url': 'http://h', {key},
                        'connect_timeout': 0.44}},
            'gemini': {{'kind': 'gemini', 'base_url': 'http://h/v1beta', {key},
                        'connect_timeout': 0.55}},
            'plain': {{'kind': 'openai_compatible', 'base_url': 'http://h/v1'}},
        }}""",
        connect_timeout=9.5,
    )
    expected = {"compatible": 0.11, "openai": 0.22, "azure": 0.33, "claude": 0.44}
    expected |= {"gemini": 0.55, "plain": 9.5}
    upstream = RecordingUpstream()
    providers = build_providers(settings, upstream)

    async def call_all() -> dict[str, list[float | None]]:
        seen: dict[str, list[float | None]] = {}
        for name in expected:
            for call in calls_of(providers[name]):
                with pytest.raises(errors.FloopyError):
                    await call()
                seen.setdefault(name, []).append(upstream.timeouts[-1].connect)
        return seen

    seen = asyncio.run(call_all())
    for name, connect in expected.items():
        assert seen[name] and set(seen[name]) == {connect}, name


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listener never completes another handshake: its accept queue is full,
    so the kernel drops further SYNs, as a black-holed address would."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(16):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def open_client(kind: str, settings: Settings) -> Upstream:
    if kind == "native":
        return NativeUpstream(asyncio.get_running_loop(), 4)
    return AiohttpUpstream(4, settings.upstream_connect_timeout)


@pytest.mark.parametrize("client", ["native", "aiohttp"])
def test_a_provider_s_connect_limit_beats_the_global_default(
    tmp_path: Path, unanswered_port: int, client: str
) -> None:
    settings = load(
        tmp_path,
        f"""{{'stuck': {{'kind': 'openai_compatible',
                        'base_url': 'http://127.0.0.1:{unanswered_port}/v1',
                        'connect_timeout': 0.2}}}}""",
        connect_timeout=60.0,
        first_byte_timeout=60.0,
        total_timeout=60.0,
    )

    async def attempt(stream: bool) -> errors.FloopyError:
        upstream = open_client(client, settings)
        try:
            provider = build_providers(settings, upstream)["stuck"]
            with pytest.raises(errors.GatewayTimeout) as caught:
                if stream:
                    await provider.stream(chat(stream=True))
                else:
                    await provider.complete(chat(stream=False))
            return caught.value
        finally:
            await upstream.close()

    for stream in (False, True):
        message = asyncio.run(attempt(stream)).message
        assert message == "stuck could not be connected to within 0.2s (connect_timeout)"


# --- reading an open stream within its limits -------------------------------------------------


class Trickle:
    """A response body arriving as (pause before it, bytes) pieces."""

    def __init__(self, pieces: list[tuple[float, bytes]], broken: bool = False) -> None:
        self.content = self
        self.closed = False
        self._pieces = pieces
        self._broken = broken

    async def _arrive(self) -> AsyncIterator[bytes]:
        for pause, piece in self._pieces:
            await asyncio.sleep(pause)
            yield piece
        if self._broken:
            raise aiohttp.ClientPayloadError("Response payload is not completed")

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._arrive()

    def close(self) -> None:
        self.closed = True


def read_all(
    pieces: list[tuple[float, bytes]],
    timeouts: Timeouts,
    *,
    started_ago: float = 0.0,
    broken: bool = False,
) -> tuple[list[bytes], errors.FloopyError | None, Trickle]:
    """Reads the first chunk, then the rest; what arrived and the error that ended it."""
    response = Trickle(pieces, broken)

    async def run() -> tuple[list[bytes], errors.FloopyError | None]:
        started = asyncio.get_running_loop().time() - started_ago
        body = UpstreamBody("up", AiohttpResponse(response), timeouts, started)  # type: ignore[arg-type]
        got: list[bytes] = []
        try:
            got.append(await body.first_chunk())
            while chunk := await body.next_chunk():
                got.append(chunk)
        except errors.FloopyError as exc:
            return got, exc
        return got, None

    got, failure = asyncio.run(run())
    return got, failure, response


# The limits below are far from the pauses (seconds against 0 or 0.01 s, or against 30 s), so
# a loaded machine cannot tip a test; the cases where the limit is already spent use
# ``started_ago`` instead of waiting.


def test_a_stream_within_its_limits_is_read_to_its_end() -> None:
    got, failure, response = read_all([(0, b"a"), (0.01, b"b")], Timeouts(5, 5, 10))
    assert got == [b"a", b"b"] and failure is None and not response.closed


def test_a_stream_gone_silent_mid_way_is_cut_at_the_first_byte_limit() -> None:
    got, failure, response = read_all([(0, b"a"), (30, b"never")], Timeouts(5, 1, 60))
    assert got == [b"a"]
    assert isinstance(failure, errors.GatewayTimeout)
    assert failure.message == "up sent nothing for 1s (first_byte_timeout)"
    assert response.closed, "the upstream connection is dropped"


def test_a_stream_that_trickles_on_is_cut_at_the_total_limit() -> None:
    pieces = [(0.01, b"x")] * 3000  # 30 s of steady bytes, never silent for long
    got, failure, response = read_all(pieces, Timeouts(5, 5, 1))
    assert 0 < len(got) < len(pieces)
    assert isinstance(failure, errors.GatewayTimeout)
    assert failure.message == "up did not finish within 1s (total_timeout)"
    assert response.closed


def test_the_first_byte_limit_counts_from_the_start_of_the_call() -> None:
    # The headers took most of the limit: the first event has what is left, not all of it.
    got, failure, _ = read_all([(0, b"a")], Timeouts(5, 2, 60), started_ago=2.5)
    assert got == [] and isinstance(failure, errors.GatewayTimeout)
    assert "first_byte_timeout" in failure.message


def test_bytes_waiting_past_the_total_limit_are_not_read() -> None:
    got, failure, _ = read_all([(0, b"a"), (0, b"b")], Timeouts(5, 5, 2), started_ago=2.5)
    assert got == [] and isinstance(failure, errors.GatewayTimeout)
    assert "total_timeout" in failure.message


def test_a_broken_connection_is_a_provider_error() -> None:
    got, failure, response = read_all([(0, b"a")], Timeouts(5, 5, 5), broken=True)
    assert got == [b"a"] and isinstance(failure, errors.ProviderError)
    assert failure.message.startswith("up broke the stream")
    assert response.closed
