"""``/v1/responses`` at an OpenAI-kind provider: the answer relayed as it came, and what the
gateway reads of it for the log (usage, finish reason, content), whole and streamed; a
stream cut short ends with an ``error`` event numbered after the last one relayed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from floopy import errors
from floopy._native import SseParser
from floopy.providers.base import Call
from floopy.providers.http import Timeouts
from floopy.providers.openai import OpenAIProvider
from floopy.providers.operations import Operations
from floopy.providers.responses.native import NativeResponsesStream, whole
from floopy.upstream import Answer
from providers.upstream import PATIENT, upstream_body
from providers.wire_fixtures import fixture_bytes

TEXT_STREAM = fixture_bytes("openai", "responses_text_stream.sse")


def test_whole_function_call_response_is_read_for_the_log() -> None:
    data = fixture_bytes("openai", "responses_function_call_response.json")
    completion = whole("openai", data)
    assert completion.body is data  # relayed untouched
    assert completion.finish_reason == "tool_calls"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (80, 18)
    assert (completion.usage.cached_tokens, completion.usage.total_tokens) == (64, 98)


class Recorder:
    """Stands in for the upstream client: records where the provider posts, answers 200."""

    def __init__(self, answer: bytes) -> None:
        self.urls: list[str] = []
        self._answer = answer

    async def post(self, url: str, headers: Any, body: bytes, timeouts: Any) -> Any:
        self.urls.append(url)
        return Answer(200, {}, self._answer)


CHAT_ANSWER = b'{"choices":[{"message":{"content":"over chat"},"finish_reason":"stop"}]}'


def ask(provider: OpenAIProvider) -> bytes:
    call = Call(
        body=b'{"model":"m","input":"hi"}',
        model="m",
        requested_model="m",
        stream=False,
        include_usage=False,
        api="responses",
    )
    return asyncio.run(Operations(provider).whole(call)).body


@pytest.mark.parametrize(
    ("speaks", "path"), [(True, "/v1/responses"), (False, "/v1/chat/completions")]
)
def test_a_compatible_server_without_responses_gets_it_over_chat(speaks: bool, path: str) -> None:
    upstream = Recorder(b"{}" if speaks else CHAT_ANSWER)
    provider = OpenAIProvider(
        "compat",
        "openai_compatible",
        base_url="http://127.0.0.1:9/v1",
        api_key=None,
        extra_headers={},
        upstream=upstream,  # type: ignore[arg-type]
        timeouts=PATIENT,
    )
    provider.speaks_responses = speaks
    body = json.loads(ask(provider))
    assert upstream.urls == [f"http://127.0.0.1:9{path}"]
    if not speaks:
        assert (
            body["object"] == "response" and body["output"][0]["content"][0]["text"] == "over chat"
        )


def test_incomplete_response_is_a_length_finish() -> None:
    body = b'{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}'
    assert whole("openai", body).finish_reason == "length"


class Body:
    """A fake upstream response body, in the given pieces, each after its pause."""

    def __init__(self, pieces: list[bytes], pauses: list[float] | None = None) -> None:
        self.content = self
        self.closed = False
        self._pieces = pieces
        self._pauses = pauses or [0.0] * len(pieces)

    async def _arrive(self) -> AsyncIterator[bytes]:
        for pause, piece in zip(self._pauses, self._pieces, strict=True):
            await asyncio.sleep(pause)
            yield piece

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._arrive()

    def close(self) -> None:
        self.closed = True


def relay(
    pieces: list[bytes], pauses: list[float] | None = None, timeouts: Timeouts = PATIENT
) -> tuple[bytes, NativeResponsesStream]:
    async def run() -> tuple[bytes, NativeResponsesStream]:
        body = upstream_body("openai", Body(pieces, pauses), timeouts)
        stream = NativeResponsesStream(body)
        await stream.open()
        rest = [piece async for piece in stream]
        return stream.first + b"".join(rest), stream

    return asyncio.run(run())


def test_stream_is_relayed_byte_for_byte_however_it_is_cut() -> None:
    for size in (len(TEXT_STREAM), 50, 7):
        pieces = [TEXT_STREAM[i : i + size] for i in range(0, len(TEXT_STREAM), size)]
        out, stream = relay(pieces)
        assert out == TEXT_STREAM
        summary = stream.summary
        assert summary.completed and summary.error is None
        assert summary.content == "Good morning" and summary.finish_reason == "stop"
        assert summary.usage is not None
        assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (12, 9)
        assert (summary.usage.cached_tokens, summary.usage.reasoning_tokens) == (4, 3)
        assert summary.ttft_ms is not None


def test_stream_cut_short_ends_with_a_numbered_error_event() -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: response.output_text.done")]
    out, stream = relay([cut])
    parser = SseParser()
    events = [*parser.feed(out), *parser.finish()]
    last = json.loads(events[-1].data)
    assert events[-1].event == "error" and last["type"] == "error"
    assert last["sequence_number"] == 6  # after the last delta relayed (5)
    assert "ended the stream early" in last["message"]
    assert stream.summary.error is not None and not stream.summary.completed


def test_provider_failure_event_is_relayed_and_logged() -> None:
    opening = TEXT_STREAM[: TEXT_STREAM.index(b"event: response.output_item.added")]
    failed = (
        b'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,'
        b'"response":{"id":"resp_0a1b2c3d","status":"failed",'
        b'"error":{"code":"server_error","message":"The model failed."}}}\n\n'
    )
    out, stream = relay([opening, failed])
    assert out == opening + failed  # nothing added: the provider said it
    assert stream.summary.error == "The model failed."


def last_event(out: bytes) -> dict[str, Any]:
    events = SseParser().feed(out)
    assert events[-1].event == "error"
    return cast(dict[str, Any], json.loads(events[-1].data))


def test_a_stream_gone_silent_ends_with_a_timeout_error_event() -> None:
    opening = TEXT_STREAM[: TEXT_STREAM.index(b"event: response.output_item.added")]
    out, stream = relay([opening, b"never sent in time"], [0.0, 30.0], Timeouts(5, 0.1, 60))
    last = last_event(out)
    assert last["code"] == "GATEWAY_TIMEOUT" and "first_byte_timeout" in last["message"]
    assert last["sequence_number"] == 2
    assert isinstance(stream.summary.failure, errors.GatewayTimeout)
    assert not stream.summary.completed


def test_an_event_that_never_ends_stops_the_stream_at_16_mib() -> None:
    opening = TEXT_STREAM[: TEXT_STREAM.index(b"event: response.output_item.added")]
    megabyte = b"x" * 1024 * 1024
    out, stream = relay([opening, b"data: ", *[megabyte] * 17])
    assert len(out) < 1024 * 1024, "none of the oversized event reached the client"
    assert "sent an event of more than" in last_event(out)["message"]
    assert isinstance(stream.summary.failure, errors.ProviderError)
