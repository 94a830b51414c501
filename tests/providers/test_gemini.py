"""Gemini translation, both ways, without a network: requests, answers, streams, errors.

The project's Gemini fixtures in ``tests/fixtures/gemini`` are translated
and must give the content, tool calls, finish reason and usage they imply; every chunk and
completion is checked against the fields OpenAI's API reference requires.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import msgspec
import pytest

from floopy import errors
from floopy._native import SseParser
from floopy.providers.chat_request import parse_chat
from floopy.providers.gemini.call_ids import make_call_id, signature_of
from floopy.providers.gemini.failures import gemini_error
from floopy.providers.gemini.request import generate_content_body
from floopy.providers.gemini.response import translate_completion
from floopy.providers.gemini.stream import BareErrorWatch, GeminiStream, StreamTranslator
from floopy.providers.gemini.wire import Error

from .openapi_schema import chunk_valid, completion_valid
from .upstream import upstream_body
from .wire_fixtures import fixture_path

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def gemini(**chat: Any) -> dict[str, Any]:
    chat.setdefault("model", "gemini-2.5-flash")
    return generate_content_body(parse_chat(msgspec.json.encode(chat)))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# --- requests ----------------------------------------------------------------------------------


def test_roles_and_system_instruction() -> None:
    body = gemini(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            user("Hello"),
            {"role": "assistant", "content": "Bonjour"},
            user("And?"),
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "And?"}]},
    ]
    assert "generationConfig" not in body


def test_consecutive_turns_of_one_role_merge() -> None:
    body = gemini(messages=[user("one"), user("two")])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]


def test_a_system_only_request_becomes_the_user_turn() -> None:
    body = gemini(messages=[{"role": "system", "content": "Say hi"}])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hi"}]}]
    assert "systemInstruction" not in body


def test_generation_config() -> None:
    body = gemini(
        messages=[user("x")],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=100,
        max_tokens=5,
        stop="END",
        n=2,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 100,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "stopSequences": ["END"],
    }
    assert gemini(messages=[user("x")], max_tokens=5)["generationConfig"] == {"maxOutputTokens": 5}


def test_json_modes() -> None:
    body = gemini(messages=[user("x")], response_format={"type": "json_object"})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = gemini(
        messages=[user("x")],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert "generationConfig" not in gemini(messages=[user("x")], response_format={"type": "text"})


def test_tools_and_tool_choice() -> None:
    body = gemini(messages=[user("x")], tools=[WEATHER], tool_choice="required")
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration == {
        "name": "get_weather",
        "description": "Current weather",
        "parametersJsonSchema": WEATHER["function"]["parameters"],  # type: ignore[index]
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = gemini(messages=[user("x")], tools=[WEATHER], tool_choice=named)
    assert body["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_weather"],
    }
    for choice, mode in (("auto", "AUTO"), ("none", "NONE")):
        body = gemini(messages=[user("x")], tools=[WEATHER], tool_choice=choice)
        assert body["toolConfig"]["functionCallingConfig"] == {"mode": mode}
    assert "toolConfig" not in gemini(messages=[user("x")], tools=[WEATHER])


def test_tool_calls_and_results_round_trip_with_names_and_signatures() -> None:
    signed = make_call_id(0, "get_weather", {"location": "Paris"}, "c2ln")
    plain = make_call_id(1, "get_time", {})
    body = gemini(
        messages=[
            user("weather and time?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": signed,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    },
                    {"id": plain, "type": "function", "function": {"name": "get_time"}},
                ],
            },
            {"role": "tool", "tool_call_id": signed, "content": "18C"},
            {"role": "tool", "tool_call_id": plain, "content": [{"type": "text", "text": "9am"}]},
        ]
    )
    model_turn, results = body["contents"][1], body["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                "thoughtSignature": "c2ln",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "9am"}}},
        ],
    }


def test_images_inline_and_by_url() -> None:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    parts = gemini(messages=[{"role": "user", "content": content}])["contents"][0]["parts"]
    assert parts == [
        {"text": "What is it?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


@pytest.mark.parametrize(
    ("messages", "extra", "param"),
    [
        ([{"role": "robot", "content": "x"}], {}, "messages[0].role"),
        (
            [{"role": "tool", "tool_call_id": "nope", "content": "x"}],
            {},
            "messages[0].tool_call_id",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}],
                }
            ],
            {},
            "messages[0].tool_calls[0].function.arguments",
        ),
        ([user("x")], {"tool_choice": "sometimes"}, "tool_choice"),
        ([user("x")], {"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        (
            [{"role": "user", "content": [{"type": "video", "text": "x"}]}],
            {},
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            {},
            "messages[0].content[0].text",
        ),
        ([user("x")], {"temperature": "hot"}, "temperature"),
        ([], {}, "messages"),
    ],
)
def test_malformed_requests_name_the_field(
    messages: list[Any], extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        gemini(messages=messages, **extra)
    assert caught.value.param == param


def test_call_ids_are_stable_and_carry_signatures() -> None:
    first = make_call_id(0, "f", {"b": 1, "a": 2})
    assert first == make_call_id(0, "f", {"a": 2, "b": 1})
    assert first != make_call_id(1, "f", {"a": 2, "b": 1})
    assert first.startswith("call_") and signature_of(first) is None
    assert signature_of(make_call_id(0, "f", {}, "sig==")) == "sig=="


# --- answers -----------------------------------------------------------------------------------


def completion(data: dict[str, Any] | bytes) -> tuple[dict[str, Any], Any]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    translated = translate_completion(raw, "gemini-2.5-flash")
    body = json.loads(translated.body)
    completion_valid(body)
    return body, translated


def test_recorded_text_answer() -> None:
    body, translated = completion(
        fixture_path("gemini", "generate_content_text_response.json").read_bytes()
    )
    message = body["choices"][0]["message"]
    assert message["content"].startswith("Lisbon's tram 28 runs from Martim Moniz")
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["model"] == "gemini-2.0-flash"
    assert body["usage"]["prompt_tokens"] == 12
    assert body["usage"]["completion_tokens"] == 27
    assert body["usage"]["total_tokens"] == 39
    assert translated.finish_reason == "stop" and translated.usage.total_tokens == 39


def test_recorded_function_call_answer() -> None:
    for name in (
        "generate_content_function_call_response.json",
        "generate_content_multiturn_function_call_response.json",
    ):
        body, _ = completion(fixture_path("gemini", name).read_bytes())
        choice = body["choices"][0]
        assert choice["finish_reason"] == "tool_calls"  # Gemini said STOP
        call = choice["message"]["tool_calls"][0]
        assert call["id"].startswith("call_") and call["type"] == "function"
        assert json.loads(call["function"]["arguments"])["destination"] == "Porto"
        assert choice["message"]["content"] is None
        assert "usage" not in body  # these recordings carry none


def test_recorded_cached_answer_counts_cached_tokens() -> None:
    body, translated = completion(
        fixture_path("gemini", "generate_content_cached_response.json").read_bytes()
    )
    assert body["usage"]["prompt_tokens"] == 48213
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 48102
    assert translated.usage.cached_tokens == 48102


def test_thinking_and_tool_use_tokens_in_usage() -> None:
    _, translated = completion(
        {
            "candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 10,
                "toolUsePromptTokenCount": 5,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 7,
                "totalTokenCount": 25,
            },
        }
    )
    usage = translated.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (15, 10, 25)
    assert usage.reasoning_tokens == 7


def test_thought_parts_are_not_the_answer() -> None:
    body, _ = completion(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "pondering", "thought": True}, {"text": "42"}]},
                    "finishReason": "STOP",
                }
            ]
        }
    )
    assert body["choices"][0]["message"]["content"] == "42"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    body, _ = completion({"candidates": [{"finishReason": reason, "index": 0}]})
    assert body["choices"][0]["finish_reason"] == expected


def test_blocked_prompt_is_content_filter() -> None:
    body, translated = completion(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    )
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] is None
    assert translated.usage.prompt_tokens == 4


def test_several_candidates_are_several_choices() -> None:
    body, _ = completion(
        {
            "candidates": [
                {"index": 1, "content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"},
                {"index": 0, "content": {"parts": [{"text": "a"}]}, "finishReason": "MAX_TOKENS"},
            ]
        }
    )
    assert [c["message"]["content"] for c in body["choices"]] == ["a", "b"]
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "stop"]


def test_unreadable_or_empty_answers_are_provider_errors() -> None:
    with pytest.raises(errors.ProviderError):
        translate_completion(b"<html>", "m")
    with pytest.raises(errors.ProviderError):
        translate_completion(b"{}", "m")


# --- streams -----------------------------------------------------------------------------------


def translate_stream(raw: bytes, include_usage: bool = True) -> tuple[list[Any], StreamTranslator]:
    translator = StreamTranslator("gemini-2.5-flash", include_usage)
    parser = SseParser()
    events = parser.feed(raw) + parser.finish()
    out = b"".join(translator.event(e.data) for e in events) + translator.end()
    datas = [line[6:] for line in out.decode().split("\n\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]", "a complete stream ends with [DONE]"
    chunks = [json.loads(data) for data in datas[:-1]]
    for chunk in chunks:
        chunk_valid(chunk)
    return chunks, translator


def content_of(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def finish_of(chunks: list[Any]) -> str | None:
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert all(r is None for r in reasons[:-1]), "one finish reason, at the end"
    return reasons[-1]


def test_assembled_text_stream() -> None:
    raw = fixture_path("gemini", "stream_text.sse").read_bytes()
    chunks, translator = translate_stream(raw)
    assert content_of(chunks) == "Here are three trains to Porto leaving after noon."
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert finish_of(chunks) == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 40
    assert translator.usage is not None and translator.usage.prompt_tokens == 31
    assert len({c["id"] for c in chunks}) == 1
    assert translator.finish_reason == "stop" and translator.ttft_ms is not None


def test_recorded_text_stream_with_a_finish_reason_on_every_event() -> None:
    raw = fixture_path("gemini", "stream_text_finish_on_every_event.sse").read_bytes()
    chunks, translator = translate_stream(raw)
    text = content_of(chunks)
    assert text.startswith("On the night train to Porto, a conductor named Inês")
    assert text.endswith("she read them aloud on her last shift.")
    assert finish_of(chunks) == "stop"
    assert translator.usage is None  # the older format: no usageMetadata
    assert all(c["choices"] for c in chunks), "no usage chunk without usage"


def test_assembled_function_call_stream() -> None:
    raw = fixture_path("gemini", "stream_function_call.sse").read_bytes()
    chunks, translator = translate_stream(raw, include_usage=False)
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "find_trains"
    assert json.loads(calls[0]["function"]["arguments"]) == {
        "destination": "Porto",
        "date": "2025-06-14",
    }
    assert finish_of(chunks) == "tool_calls"
    assert all(c["choices"] for c in chunks), "usage was not asked for"
    assert translator.usage is not None and translator.usage.total_tokens == 138


def test_stream_ids_match_the_whole_answer() -> None:
    """A stream and a whole answer with the same call give the same id (caches, replays)."""
    event = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                "finishReason": "STOP",
            }
        ]
    }
    chunks, _ = translate_stream(b"data: " + json.dumps(event).encode() + b"\n\n")
    whole, _ = completion(event)
    streamed = chunks[1]["choices"][0]["delta"]["tool_calls"][0]["id"]
    assert streamed == whole["choices"][0]["message"]["tool_calls"][0]["id"]


def test_stream_cut_short_ends_with_an_error_event() -> None:
    translator = StreamTranslator("m", False)
    first = translator.event('{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}')
    assert b'"Hel"' in first
    tail = translator.end()
    assert b'"error"' in tail and b"[DONE]" not in tail
    assert translator.error is not None and translator.finish_reason is None


def test_error_event_in_the_stream() -> None:
    translator = StreamTranslator("m", False)
    translator.event('{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}')
    out = translator.event('{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}')
    assert json.loads(out[6:])["error"]["message"] == "gemini: overloaded"
    assert translator.event('{"candidates":[]}') == b"" and translator.end() == b""


def test_safety_stop_in_a_stream() -> None:
    chunks, translator = translate_stream(
        b'data: {"candidates":[{"content":{"parts":[{"text":"Once"}]}}]}\n\n'
        b'data: {"candidates":[{"finishReason":"SAFETY"}]}\n\n'
    )
    assert content_of(chunks) == "Once" and finish_of(chunks) == "content_filter"
    assert translator.finish_reason == "content_filter"


def test_bare_error_line_is_noticed_across_chunks() -> None:
    watch = BareErrorWatch()
    watch.feed(b'data: {"x": {"error": 1}}\n\n{"err')
    watch.feed(b'or": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}\n')
    assert watch.error == Error(code=500, message="Internal error", status="INTERNAL")
    at_start = BareErrorWatch()
    at_start.feed(b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}')
    at_start.finish()
    assert at_start.error is not None and at_start.error.code == 429
    untouched = BareErrorWatch()
    untouched.feed(b'data: {"error": {"code": 1}}\n\n')
    untouched.finish()
    assert untouched.error is None  # an SSE event, which the translator handles


# --- errors ------------------------------------------------------------------------------------


def test_invalid_key_is_the_gateways_credential_failing() -> None:
    raw = fixture_path("gemini", "error_400_api_key_invalid.json").read_bytes()
    error = gemini_error("gemini", 400, raw, {})
    assert isinstance(error, errors.ProviderError) and error.status == 502
    assert "API key not valid" in error.message


def test_resource_exhausted_is_429_with_the_retry_delay() -> None:
    raw = fixture_path("gemini", "error_429_resource_exhausted.json").read_bytes()
    error = gemini_error("gemini", 429, raw, {})
    assert isinstance(error, errors.RateLimitExceeded)
    assert error.headers["Retry-After"] == "1"  # no RetryInfo in this body
    body = {
        "error": {
            "code": 429,
            "message": "quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    error = gemini_error("gemini", 429, json.dumps(body).encode(), {})
    assert error.headers["Retry-After"] == "7"


@pytest.mark.parametrize(("status", "expected"), [(400, 400), (404, 404), (500, 502), (503, 502)])
def test_other_errors(status: int, expected: int) -> None:
    body = {"error": {"code": status, "message": "nope", "status": "X"}}
    error = gemini_error("gemini", status, json.dumps(body).encode(), {})
    assert error.status == expected and "nope" in error.message
    assert gemini_error("gemini", status, b"<html>oops</html>", {}).status == expected


# --- the stream object over an upstream response -------------------------------------------------


class _Body:
    def __init__(self, raw: bytes, piece: int, broken: bool) -> None:
        self._pieces = [raw[i : i + piece] for i in range(0, len(raw), piece)]
        self._broken = broken

    async def _iterate(self) -> Any:
        for piece in self._pieces:
            yield piece
        if self._broken:
            raise aiohttp.ClientPayloadError("Response payload is not completed")

    def iter_any(self) -> Any:
        return self._iterate()


class _Response:
    def __init__(self, raw: bytes, piece: int, broken: bool) -> None:
        self.content = _Body(raw, piece, broken)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def stream_through(
    raw: bytes, piece: int = 7, broken: bool = False
) -> tuple[bytes, GeminiStream, _Response]:
    async def run() -> tuple[bytes, GeminiStream, _Response]:
        response = _Response(raw, piece, broken)
        stream = GeminiStream(upstream_body("gemini", response), StreamTranslator("m", True))
        await stream.open()
        rest = [chunk async for chunk in stream]
        return stream.first + b"".join(rest), stream, response

    return asyncio.run(run())


def test_stream_object_over_a_recorded_stream_in_small_pieces() -> None:
    raw = fixture_path("gemini", "stream_text.sse").read_bytes()
    out, stream, _ = stream_through(raw, piece=5)
    assert out.count(b"data: [DONE]") == 1
    summary = stream.summary
    assert summary.content == "Here are three trains to Porto leaving after noon."
    assert summary.finish_reason == "stop" and summary.completed and summary.error is None
    assert summary.usage is not None and summary.usage.total_tokens == 40


def test_stream_that_ends_during_open_ends_once() -> None:
    out, stream, _ = stream_through(b'data: {"promptFeedback": {"blockReason": "SAFETY"}}\n\n')
    assert out.count(b"data: [DONE]") == 1
    assert out.count(b'"finish_reason":"content_filter"') == 1
    assert stream.summary.finish_reason == "content_filter"


def test_stream_broken_by_the_network_ends_with_an_error_event() -> None:
    raw = b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}\n\n'
    out, stream, _ = stream_through(raw, broken=True)
    assert b"[DONE]" not in out and b'"error"' in out
    assert stream.summary.error is not None and not stream.summary.completed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}\n', 429),
        (b'data: {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}\n\n', 502),
        (b"", 502),
    ],
)
def test_stream_failing_before_any_chunk_raises(raw: bytes, expected: int) -> None:
    with pytest.raises(errors.FloopyError) as caught:
        stream_through(raw)
    assert caught.value.status == expected
