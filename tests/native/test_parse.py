"""RequestParser through the binding: facts, limits and error mapping as the gateway sees them."""

import json
import threading

import pytest

from floopy._native import ChatRequest, RequestParser
from floopy.errors import BadRequest, InvalidField, InvalidInput, InvalidJson, PayloadTooLarge


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    base.update(fields)
    return json.dumps(base).encode()


@pytest.fixture(scope="module")
def parser() -> RequestParser:
    return RequestParser()


def test_defaults_and_limits_are_readable() -> None:
    assert RequestParser().max_body_bytes == 10_485_760
    assert RequestParser().max_depth == 64
    custom = RequestParser(max_body_bytes=1000, max_depth=10)
    assert (custom.max_body_bytes, custom.max_depth) == (1000, 10)
    assert repr(custom) == "RequestParser(max_body_bytes=1000, max_depth=10)"


@pytest.mark.parametrize("depth", [0, 101])
def test_unsupported_depth_limits_are_refused(depth: int) -> None:
    with pytest.raises(ValueError, match="max_depth must be between 1 and 100"):
        RequestParser(max_depth=depth)


def test_reads_the_facts(parser: RequestParser) -> None:
    request = parser.parse(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "assistant", "content": None, "tool_calls": []},
            ],
            stream=True,
            stream_options={"include_usage": True},
            user="end-user-7",
            tools=[{"type": "function", "function": {"name": "f"}}],
        )
    )
    assert isinstance(request, ChatRequest)
    assert request.model == "gpt-4o"
    assert request.stream is True
    assert request.include_usage is True
    assert request.message_count == 3
    assert request.last_user_text == "Hello"
    assert request.user == "end-user-7"
    assert request.has_tools is True


def test_optional_facts_default(parser: RequestParser) -> None:
    request = parser.parse(body(messages=[{"role": "system", "content": "x"}]))
    assert request.stream is False
    assert request.include_usage is False
    assert request.user is None
    assert request.has_tools is False
    assert request.last_user_text is None


def test_last_user_text_joins_text_parts_with_newlines(parser: RequestParser) -> None:
    content = [
        {"type": "text", "text": "first line"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"text": "second\tline é", "type": "text"},
    ]
    messages = [
        {"role": "user", "content": "an older question"},
        {"content": content, "role": "user"},
        {"role": "assistant", "content": "an answer"},
    ]
    request = parser.parse(body(messages=messages))
    assert request.last_user_text == "first line\nsecond\tline é"


def test_the_result_is_frozen(parser: RequestParser) -> None:
    request = parser.parse(body())
    with pytest.raises(AttributeError):
        request.model = "other"  # type: ignore[misc]


def test_equal_bodies_give_equal_requests(parser: RequestParser) -> None:
    assert parser.parse(body()) == parser.parse(body())
    assert parser.parse(body()) != parser.parse(body(model="other"))


def test_repr_shows_the_prompt_by_length_only(parser: RequestParser) -> None:
    text = repr(parser.parse(body(messages=[{"role": "user", "content": "secret plan"}])))
    assert "secret" not in text
    assert text == (
        'ChatRequest(model="gpt-4o", stream=False, include_usage=False, message_count=1, '
        "last_user_text=<11 chars>, user=None, has_tools=False)"
    )


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"model": None}, "model", "`model` must be a string, got null"),
        ({"model": ""}, "model", "`model` must not be empty"),
        ({"messages": []}, "messages", "`messages` must not be empty"),
        ({"messages": "hi"}, "messages", "`messages` must be an array, got a string"),
        (
            {"messages": [{"role": "user"}, 3]},
            "messages.1",
            "`messages.1` must be an object, got a number",
        ),
        (
            {"messages": [{"role": "user"}, {"role": "user"}, {"role": ["user"]}]},
            "messages.2.role",
            "`messages.2.role` must be a string, got an array",
        ),
        ({"messages": [{"content": "x"}]}, "messages.0.role", "`messages.0.role` is required"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages.0.content.0.text",
            "`messages.0.content.0.text` must be a string, got a number",
        ),
        ({"stream": "true"}, "stream", "`stream` must be a boolean, got a string"),
        (
            {"stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
            "`stream_options.include_usage` must be a boolean, got a string",
        ),
        ({"user": 42}, "user", "`user` must be a string, got a number"),
        ({"tools": {}}, "tools", "`tools` must be an array, got an object"),
    ],
)
def test_wrong_fields_name_their_path(
    parser: RequestParser, fields: dict[str, object], param: str, message: str
) -> None:
    with pytest.raises(InvalidField) as raised:
        parser.parse(body(**fields))
    assert raised.value.param == param
    assert str(raised.value) == message


def test_a_missing_model_is_reported(parser: RequestParser) -> None:
    with pytest.raises(InvalidField) as raised:
        parser.parse(b'{"messages": [{"role": "user"}]}')
    assert (raised.value.param, str(raised.value)) == ("model", "`model` is required")


def test_errors_are_the_trees_bad_requests_and_value_errors(parser: RequestParser) -> None:
    with pytest.raises(ValueError) as raised:
        parser.parse(b"{")
    assert isinstance(raised.value, InvalidJson)
    assert isinstance(raised.value, InvalidInput) and isinstance(raised.value, BadRequest)
    assert raised.value.param is None
    assert (raised.value.status, raised.value.code) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("argument", ["max_body_bytes", "max_depth"])
def test_negative_limits_are_value_errors_naming_the_argument(argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must not be negative, got -1$"):
        RequestParser(**{argument: -1})


def test_invalid_json_names_line_and_column(parser: RequestParser) -> None:
    with pytest.raises(InvalidJson) as raised:
        parser.parse(b'{"model": "m",\n "stream": tru}')
    assert str(raised.value) == "request body is not valid JSON: expected ident at line 2 column 15"


def test_a_body_that_is_not_an_object(parser: RequestParser) -> None:
    with pytest.raises(InvalidJson, match=r"^request body must be a JSON object, got an array$"):
        parser.parse(b"[]")


def test_invalid_utf8_is_invalid_json(parser: RequestParser) -> None:
    with pytest.raises(InvalidJson):
        parser.parse(body()[:-1] + b', "x": "\xff"}')


def test_size_limit() -> None:
    small = RequestParser(max_body_bytes=64)
    data = body(messages=[{"role": "user", "content": "x" * 100}])
    with pytest.raises(PayloadTooLarge) as raised:
        small.parse(data)
    assert str(raised.value) == f"request body is {len(data)} bytes, over the limit of 64 bytes"
    assert RequestParser(max_body_bytes=len(data)).parse(data).model == "gpt-4o"


def nested_body(depth: int) -> bytes:
    """A body whose deepest array or object is at `depth` (the body object is 1)."""
    inner = depth - 3  # the body, the messages array and the message come first
    value = "[" * inner + "1" + "]" * inner
    return f'{{"model":"m","messages":[{{"role":"user","extra":{value}}}]}}'.encode()


def test_depth_limit_is_the_configured_one() -> None:
    parser = RequestParser(max_depth=10)
    assert parser.parse(nested_body(10)).message_count == 1
    with pytest.raises(InvalidJson, match=r"^request body nests deeper than 10 levels at line 1"):
        parser.parse(nested_body(11))


def test_the_default_depth_limit_stops_hostile_nesting(parser: RequestParser) -> None:
    with pytest.raises(InvalidJson, match="nests deeper than 64 levels"):
        parser.parse(nested_body(100_000))


def test_large_bodies_parse_and_other_threads_run(parser: RequestParser) -> None:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}: " + "é\n" * 400}
        for i in range(200)
    ]
    messages.append({"role": "user", "content": "the last question"})
    data = body(messages=messages)
    assert len(data) > 200_000
    results: list[ChatRequest] = []
    threads = [
        threading.Thread(target=lambda: results.append(parser.parse(data))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.message_count for r in results] == [201] * 4
    assert {r.last_user_text for r in results} == {"the last question"}


def test_only_bytes_are_accepted(parser: RequestParser) -> None:
    with pytest.raises(TypeError):
        parser.parse(body().decode())  # type: ignore[arg-type]
