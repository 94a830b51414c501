"""The cache through a real gateway process: a repeat answered without a provider call, in
the shape the client asked for (streamed or not, OpenAI or Anthropic, valid for the official
SDKs), buckets, seeds, ignore-keys, TTLs, tenants kept apart, and failed, cut or abandoned
answers never stored. The mock provider records every call it gets, so each test counts the
calls a unique prompt caused."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop, write_settings
from .logstore import metrics, readiness, wait_for

pytestmark = pytest.mark.integration

OTHER_KEY = "fpk_test_other_tenant_key_0123456789abcdefghijklmn"


def api_keys() -> str:
    def entry(key: str, key_id: str, organization: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{{'id': {key_id!r}, 'hash': 'sha256:{digest}', 'organization': {organization!r}}}"

    return f"[{entry(TEST_KEY, 'test', 'acme')}, {entry(OTHER_KEY, 'other', 'globex')}]"


@pytest.fixture(scope="module")
def gw(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Caching on by default for the key ``test`` (organization acme) only; ``other``
    (organization globex) asks for it per request."""
    root = tmp_path_factory.mktemp("cache")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        with_keys=False,
        API_KEYS=api_keys(),
        ORGANIZATIONS="{'acme': {'projects': ['web', 'batch']}}",
        CACHE_ENABLED_KEYS="('test',)",
        LOGGING_ENABLED="False",
        PROVIDERS=(
            f"{{'mock': {{'kind': 'openai_compatible', 'base_url': '{mock_upstream}/v1', "
            "'api_key_env': 'FLOOPY_TEST_MOCK_KEY'}, "
            f"'claude': {{'kind': 'anthropic', 'base_url': '{mock_upstream}', "
            "'api_key_env': 'FLOOPY_TEST_ANTHROPIC_KEY'}, 'echo': {'kind': 'echo'}}"
        ),
        MODELS=(
            "{'gpt-4o-mini': {'provider': 'mock', 'input_price': 0.15, 'output_price': 0.6}, "
            "'claude-tools': {'provider': 'claude', 'upstream_model': 'tools'}, "
            "'echo': {'provider': 'echo'}}"
        ),
    )
    env = {"FLOOPY_TEST_ANTHROPIC_KEY": "sk-ant-mock-provider-key"}
    url, proc = start_gateway(settings, root / "gateway.log", env)
    try:
        # The semantic tier's model loads with the worker (the cache is on for ``test``):
        # waited for, so that no test races the load.
        wait_for(lambda: readiness(url, TEST_KEY)["cache"]["embedder_ready"], "the embedder")
        yield Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root, proc=proc)
    finally:
        stop(proc)


def prompt() -> str:
    return f"cache me {uuid.uuid4().hex}"


def calls(mock_url: str, token: str) -> int:
    """How many calls the mock provider received whose body holds ``token``."""
    with urllib.request.urlopen(f"{mock_url}/_requests") as resp:
        return sum(1 for r in json.load(resp) if token in json.dumps(r["body"]))


def post(
    gw: Gateway,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    key: str = TEST_KEY,
    path: str = "/v1/chat/completions",
) -> httpx.Response:
    response = httpx.post(
        f"{gw.url}{path}",
        json=body,
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


# Every SDK client a test opens, closed when the module ends: a client left to the garbage
# collector leaves its idle keep-alive connection unclosed (a ResourceWarning, an error here).
_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def oai(gw: Gateway, key: str = TEST_KEY) -> openai.OpenAI:
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    _clients.append(client)
    return client


# --- a repeat --------------------------------------------------------------------------------


def test_a_repeat_is_answered_from_the_cache_without_a_provider_call(gw: Gateway) -> None:
    text = prompt()
    first = post(gw, chat(text))
    second = post(gw, chat(text))
    assert first.headers["floopy-cache"] == "MISS"
    assert second.headers["floopy-cache"] == "HIT; tier=exact"
    assert second.headers["floopy-provider"] == first.headers["floopy-provider"] == "mock"
    assert second.headers["floopy-model"] == first.headers["floopy-model"] == "gpt-4o-mini"
    assert "floopy-cache-bucket-idx" not in second.headers
    assert "floopy-cache-similarity" not in second.headers
    assert second.headers["floopy-cost"] == "0.0000000000"  # nothing charged for a hit
    assert second.json() == first.json()
    assert calls(gw.mock_url, text) == 1


def test_layout_and_the_fields_that_do_not_change_the_answer_share_an_entry(
    gw: Gateway,
) -> None:
    text = prompt()
    post(gw, chat(text, temperature=0.5))
    reordered = {"temperature": 0.50, "user": "someone", **chat(text)}
    assert post(gw, reordered).headers["floopy-cache"] == "HIT; tier=exact"
    assert post(gw, chat(text, temperature=0.6)).headers["floopy-cache"] == "MISS"
    assert calls(gw.mock_url, text) == 2


# --- shapes: stream and not, both ways; OpenAI and Anthropic ---------------------------------


def test_a_whole_answer_replays_as_a_stream_the_sdk_reads(gw: Gateway) -> None:
    text = prompt()
    client = oai(gw)
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=[user(text)])
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[user(text)],
        stream=True,
        stream_options={"include_usage": True},
    ) as resp:
        assert resp.headers["floopy-cache"] == "HIT; tier=exact"
        chunks = list(resp.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert calls(gw.mock_url, text) == 1


def test_a_stream_replays_without_the_usage_chunk_unless_asked(gw: Gateway) -> None:
    text = prompt()
    client = oai(gw)
    client.chat.completions.create(model="gpt-4o-mini", messages=[user(text)])
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=[user(text)], stream=True)
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_streamed_answer_replays_as_a_whole_completion(gw: Gateway) -> None:
    text = prompt()
    client = oai(gw)
    streamed = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=[user(text)], stream=True)
    )
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[user(text)]
    )
    assert raw.headers["floopy-cache"] == "HIT; tier=exact"
    whole = raw.parse()
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.content == "".join(
        c.choices[0].delta.content or "" for c in streamed if c.choices
    )
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    assert calls(gw.mock_url, text) == 1


def test_streamed_tool_calls_replay_both_ways(gw: Gateway) -> None:
    text = prompt()
    client = oai(gw)
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    ask = {"model": "mock/tools", "messages": [user(text)], "tools": tools}
    list(client.chat.completions.create(**ask, stream=True))
    whole = client.chat.completions.create(**ask)
    call = whole.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert whole.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}  # type: ignore[union-attr]
    again = list(client.chat.completions.create(**ask, stream=True))
    deltas = [c.choices[0].delta.tool_calls for c in again if c.choices]
    arguments = "".join(d[0].function.arguments or "" for d in deltas if d)  # type: ignore[union-attr]
    assert json.loads(arguments) == json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert calls(gw.mock_url, text) == 1


def claude(gw: Gateway) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)
    _clients.append(client)
    return client


def test_messages_hits_answer_in_anthropic_format_both_ways(gw: Gateway) -> None:
    text = prompt()
    client = claude(gw)
    ask: Any = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [user(text)]}
    whole = client.messages.create(**ask)
    with client.messages.stream(**ask) as stream:
        replayed = stream.get_final_message()
    assert replayed.content[0].text == whole.content[0].text  # type: ignore[union-attr]
    assert replayed.stop_reason == whole.stop_reason == "end_turn"
    assert replayed.usage.output_tokens == whole.usage.output_tokens
    assert calls(gw.mock_url, text) == 1

    text = prompt()
    ask["messages"] = [user(text)]
    with client.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    raw = client.messages.with_raw_response.create(**ask)
    assert raw.headers["floopy-cache"] == "HIT; tier=exact"
    assert raw.parse().content[0].text == streamed.content[0].text  # type: ignore[union-attr]
    assert calls(gw.mock_url, text) == 1


def test_native_anthropic_answers_with_tool_use_replay_both_ways(gw: Gateway) -> None:
    text = prompt()
    client = claude(gw)
    tool: Any = {"name": "get_weather", "input_schema": {"type": "object"}}
    ask: Any = {
        "model": "claude-tools",
        "max_tokens": 50,
        "messages": [user(text)],
        "tools": [tool],
    }
    with client.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    raw = client.messages.with_raw_response.create(**ask)
    assert raw.headers["floopy-cache"] == "HIT; tier=exact"
    assert raw.headers["floopy-provider"] == "claude"
    whole = raw.parse()
    assert whole.stop_reason == streamed.stop_reason == "tool_use"
    assert [b.model_dump() for b in whole.content] == [b.model_dump() for b in streamed.content]
    with client.messages.stream(**ask) as stream:
        again = stream.get_final_message()
    assert [b.model_dump() for b in again.content] == [b.model_dump() for b in whole.content]
    assert calls(gw.mock_url, text) == 1


def test_a_messages_body_never_hits_a_chat_entry(gw: Gateway) -> None:
    # The same bytes are valid for both APIs; the answers are not.
    text = prompt()
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [user(text)]}
    post(gw, body)
    answer = post(gw, body, path="/v1/messages")
    assert answer.headers["floopy-cache"] == "MISS"
    assert answer.json()["type"] == "message"


def user(text: str) -> Any:
    return {"role": "user", "content": text}


# --- buckets, seeds, ignore-keys, TTL ----------------------------------------------------------


def test_a_bucket_fills_with_misses_then_serves_its_answers_at_random(gw: Gateway) -> None:
    text = prompt()
    body = {**chat(text), "model": "mock/numbered"}
    size = {"floopy-cache-bucket-max-size": "3"}
    fills = [post(gw, body, size) for _ in range(3)]
    assert [r.headers["floopy-cache"] for r in fills] == ["MISS"] * 3
    answers = {r.json()["choices"][0]["message"]["content"] for r in fills}
    assert len(answers) == 3  # the mock numbers its calls: three different answers
    served: dict[str, str] = {}
    for _ in range(30):
        hit = post(gw, body, size)
        assert hit.headers["floopy-cache"] == "HIT; tier=exact"
        served[hit.headers["floopy-cache-bucket-idx"]] = hit.json()["choices"][0]["message"][
            "content"
        ]
    assert set(served) <= {"0", "1", "2"} and len(served) > 1  # 3**-29 to fail by chance
    assert set(served.values()) <= answers
    assert calls(gw.mock_url, text) == 3


def test_a_bucket_size_beyond_20_is_refused(gw: Gateway) -> None:
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json=chat(prompt()),
        headers={"authorization": f"Bearer {TEST_KEY}", "floopy-cache-bucket-max-size": "21"},
    )
    assert response.status_code == 400
    assert "floopy-cache-bucket-max-size" in response.json()["error"]["message"]


def test_a_seed_partitions_the_entries(gw: Gateway) -> None:
    text = prompt()
    seeds = ["a", "a", "b", None]
    got = [
        post(gw, chat(text), {"floopy-cache-seed": s} if s else {}).headers["floopy-cache"]
        for s in seeds
    ]
    assert got == ["MISS", "HIT; tier=exact", "MISS", "MISS"]
    assert calls(gw.mock_url, text) == 3


def test_ignore_keys_leave_fields_out_of_the_key(gw: Gateway) -> None:
    text = prompt()
    ignore = {"floopy-cache-ignore-keys": "temperature, seed"}
    post(gw, chat(text, temperature=0.1, seed=1), ignore)
    hit = post(gw, chat(text, temperature=0.9, seed=2), ignore)
    assert hit.headers["floopy-cache"] == "HIT; tier=exact"
    assert post(gw, chat(text, temperature=0.9, seed=2)).headers["floopy-cache"] == "MISS"


def test_max_age_sets_the_ttl(gw: Gateway) -> None:
    text = prompt()
    post(gw, chat(text), {"cache-control": "max-age=1"})
    assert post(gw, chat(text)).headers["floopy-cache"] == "HIT; tier=exact"
    time.sleep(1.2)  # past the answer's one-second TTL
    assert post(gw, chat(text)).headers["floopy-cache"] == "MISS"
    assert calls(gw.mock_url, text) == 2


# --- off unless asked, and tenants -------------------------------------------------------------


def test_the_cache_is_off_unless_the_settings_or_the_request_turn_it_on(gw: Gateway) -> None:
    text = prompt()
    for _ in range(2):  # key `other` is not in CACHE_ENABLED_KEYS
        assert "floopy-cache" not in post(gw, chat(text), key=OTHER_KEY).headers
    on = {"floopy-cache-enabled": "true"}
    assert post(gw, chat(text), on, key=OTHER_KEY).headers["floopy-cache"] == "MISS"
    assert post(gw, chat(text), on, key=OTHER_KEY).headers["floopy-cache"] == "HIT; tier=exact"
    for off in ({"cache-control": "no-store"}, {"floopy-cache-enabled": "false"}):
        assert "floopy-cache" not in post(gw, chat(text), off, key=OTHER_KEY).headers
    assert calls(gw.mock_url, text) == 5


def test_two_organizations_never_share_an_entry(gw: Gateway) -> None:
    text = prompt()
    on = {"floopy-cache-enabled": "true"}
    assert post(gw, chat(text)).headers["floopy-cache"] == "MISS"
    assert post(gw, chat(text), on, key=OTHER_KEY).headers["floopy-cache"] == "MISS"
    assert post(gw, chat(text), on, key=OTHER_KEY).headers["floopy-cache"] == "HIT; tier=exact"
    assert calls(gw.mock_url, text) == 2


def test_two_projects_never_share_an_entry(gw: Gateway) -> None:
    text = prompt()
    web, batch = {"floopy-project-id": "web"}, {"floopy-project-id": "batch"}
    got = [post(gw, chat(text), p).headers["floopy-cache"] for p in (web, batch, web, batch)]
    assert got == ["MISS", "MISS", "HIT; tier=exact", "HIT; tier=exact"]


def test_a_model_override_is_part_of_the_key(gw: Gateway) -> None:
    text = prompt()
    post(gw, chat(text))
    override = {"floopy-model-override": "mock/numbered"}
    assert post(gw, chat(text), override).headers["floopy-cache"] == "MISS"


# --- only whole successes ------------------------------------------------------------------------


def stream_status(gw: Gateway, model: str, text: str) -> str:
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        json={**chat(text, stream=True), "model": model},
        headers={"authorization": f"Bearer {TEST_KEY}"},
        timeout=30,
    ) as resp:
        status = resp.headers["floopy-cache"]
        for _ in resp.iter_bytes():
            pass
    return str(status)


@pytest.mark.parametrize("model", ["mock/cut-2", "mock/end-2"])
def test_a_stream_cut_short_is_never_stored(gw: Gateway, model: str) -> None:
    text = prompt()
    assert stream_status(gw, model, text) == "MISS"
    assert stream_status(gw, model, text) == "MISS"
    assert calls(gw.mock_url, text) == 2


def test_a_stream_the_client_abandoned_is_never_stored(gw: Gateway) -> None:
    text = prompt()
    body = {**chat(text, stream=True), "model": "mock/drip-20"}
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {TEST_KEY}"},
        timeout=30,
    ) as resp:
        next(resp.iter_bytes())  # then the client hangs up
    deadline = time.monotonic() + 10
    while calls(gw.mock_url, text) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={**body, "stream": False, "model": "mock/drip-20"},
        headers={"authorization": f"Bearer {TEST_KEY}"},
        timeout=30,
    )
    assert response.headers["floopy-cache"] == "MISS"


def test_a_failed_answer_is_never_stored(gw: Gateway) -> None:
    text = prompt()
    body = {**chat(text), "model": "mock/error-500"}
    for _ in range(2):
        response = httpx.post(
            f"{gw.base_url}/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {TEST_KEY}"},
            timeout=30,
        )
        assert response.status_code == 502
        assert response.headers["floopy-cache"] == "MISS"


# --- counted -------------------------------------------------------------------------------------


def test_metrics_count_hits_misses_and_what_is_held(gw: Gateway) -> None:
    before = metrics(gw.url)
    text = prompt()
    post(gw, chat(text))
    post(gw, chat(text))
    after = metrics(gw.url)
    assert after['floopy_cache_hits_total{tier="exact"}'] == (
        before['floopy_cache_hits_total{tier="exact"}'] + 1
    )
    assert after['floopy_cache_misses_total{tier="exact"}'] == (
        before['floopy_cache_misses_total{tier="exact"}'] + 1
    )
    assert after['floopy_cache_stored_total{tier="exact"}'] == (
        before['floopy_cache_stored_total{tier="exact"}'] + 1
    )
    assert (
        after['floopy_cache_entries{store="memory"}']
        > before['floopy_cache_entries{store="memory"}']
    )
    assert (
        after['floopy_cache_bytes{store="memory"}'] > before['floopy_cache_bytes{store="memory"}']
    )
    assert after['floopy_cache_errors_total{tier="exact"}'] == 0


# --- the semantic and advanced tiers ---------------------------------------------------------


def tag() -> str:
    """Appended to both prompts of a pair: one test's calls counted apart from another's."""
    return f"(ref {uuid.uuid4().hex[:12]})"


@pytest.fixture(scope="module")
def semantic(gw: Gateway) -> Gateway:
    """The gateway, its local embedder loaded (``gw`` waited for it)."""
    assert readiness(gw.url, TEST_KEY)["cache"]["embedder_ready"]
    return gw


def stored(gw: Gateway, tier: str = "semantic") -> float:
    return metrics(gw.url).get(f'floopy_cache_stored_total{{tier="{tier}"}}', 0.0)


def settle(gw: Gateway, before: float, tier: str = "semantic") -> None:
    """Waits until the answer of a miss is stored: that happens after its response went
    out, and a paraphrase sent at once could be looked up first."""
    wait_for(lambda: stored(gw, tier) > before, f"the {tier} tier to store the answer")


def test_a_paraphrase_hits_the_semantic_tier_and_a_near_miss_does_not(semantic: Gateway) -> None:
    ref = tag()
    client = oai(semantic)
    before = stored(semantic)
    first = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[user(f"How do I undo the last git commit? {ref}")]
    )
    settle(semantic, before)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[user(f"How can I undo my last git commit? {ref}")]
    )
    assert first.headers["floopy-cache"] == "MISS"
    assert raw.headers["floopy-cache"] == "HIT; tier=semantic"
    assert 0.9 <= float(raw.headers["floopy-cache-similarity"]) < 1
    assert raw.headers["floopy-provider"] == "mock"
    assert raw.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert calls(semantic.mock_url, ref) == 1
    # Closer than the paraphrase by cosine, yet another question: never served.
    for near_miss in (
        "How do I undo the first git commit?",
        "How do I not undo the last git commit?",
        "How do I undo the last svn commit?",
    ):
        answer = post(semantic, chat(f"{near_miss} {ref}"))
        assert answer.headers["floopy-cache"] == "MISS", near_miss
    assert calls(semantic.mock_url, ref) == 4


def test_numbers_directions_and_system_prompts_keep_semantic_entries_apart(
    semantic: Gateway,
) -> None:
    ref = tag()
    before = stored(semantic)
    post(semantic, chat(f"Convert 10 miles to kilometers. {ref}"))
    settle(semantic, before)
    for other in ("Convert 10 kilometers to miles.", "Convert 12 miles to kilometers."):
        assert post(semantic, chat(f"{other} {ref}")).headers["floopy-cache"] == "MISS"
    system = {"role": "system", "content": "Answer in French."}
    again = {"model": "gpt-4o-mini", "messages": [system, user(f"Convert 10 miles to km. {ref}")]}
    assert post(semantic, again).headers["floopy-cache"] == "MISS"  # another system prompt
    assert post(semantic, chat(f"Convert 10 miles to kilometers, please. {ref}")).headers[
        "floopy-cache"
    ] == ("HIT; tier=semantic")
    assert calls(semantic.mock_url, ref) == 4


def test_semantic_hits_replay_both_ways_for_the_sdks(semantic: Gateway) -> None:
    ref = tag()
    client = oai(semantic)
    before = stored(semantic)
    whole = client.chat.completions.create(
        model="gpt-4o-mini", messages=[user(f"Why is the sky blue? {ref}")]
    )
    settle(semantic, before)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[user(f"Why does the sky look blue? {ref}")],
        stream=True,
        stream_options={"include_usage": True},
    ) as resp:
        assert resp.headers["floopy-cache"] == "HIT; tier=semantic"
        chunks = list(resp.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        whole.choices[0].message.content
    )
    assert chunks[-1].usage == whole.usage

    ref = tag()
    before = stored(semantic)
    streamed = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[user(f"What is a closure in JavaScript? {ref}")],
            stream=True,
        )
    )
    settle(semantic, before)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[user(f"Explain what a closure is in JavaScript. {ref}")]
    )
    assert raw.headers["floopy-cache"] == "HIT; tier=semantic"
    assert raw.parse().choices[0].message.content == "".join(
        c.choices[0].delta.content or "" for c in streamed if c.choices
    )

    ref = tag()
    anthropic_client = claude(semantic)
    ask: Any = {"model": "gpt-4o-mini", "max_tokens": 50}
    before = stored(semantic)
    first = anthropic_client.messages.create(
        **ask, messages=[user(f"How does a hash table work? {ref}")]
    )
    settle(semantic, before)
    with anthropic_client.messages.with_streaming_response.create(
        **ask, messages=[user(f"How do hash tables work? {ref}")], stream=True
    ) as resp:
        assert resp.headers["floopy-cache"] == "HIT; tier=semantic"
    with anthropic_client.messages.stream(
        **ask, messages=[user(f"How do hash tables work? {ref}")]
    ) as stream:
        replayed = stream.get_final_message()
    assert replayed.content[0].text == first.content[0].text  # type: ignore[union-attr]
    assert replayed.stop_reason == "end_turn"
    assert calls(semantic.mock_url, ref) == 1


def conversation(history: str, question: str, ref: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"I'm planning a trip to {history}. {ref}"},
        {"role": "assistant", "content": "Lovely! How can I help?"},
        {"role": "user", "content": question},
    ]


def test_the_advanced_tier_needs_the_same_earlier_turns(semantic: Gateway) -> None:
    ref = tag()
    advanced = {"floopy-cache-advanced": "true"}
    japan = {
        "model": "gpt-4o-mini",
        "messages": conversation("Japan", "What clothes should I pack?", ref),
    }
    before = stored(semantic, "advanced")
    assert post(semantic, japan, advanced).headers["floopy-cache"] == "MISS"
    settle(semantic, before, "advanced")
    paraphrase = conversation("Japan", "What clothes do I need to pack?", ref)
    asked = post(semantic, {**japan, "messages": paraphrase}, advanced)
    assert asked.headers["floopy-cache"] == "HIT; tier=advanced"
    assert float(asked.headers["floopy-cache-similarity"]) >= 0.9
    # Not asked for: only the exact tier.
    not_asked = post(
        semantic,
        {**japan, "messages": conversation("Japan", "Which clothes should I pack?", ref)},
    )
    assert not_asked.headers["floopy-cache"] == "MISS"
    # The same last question after other earlier turns never shares the answer.
    iceland = {**japan, "messages": conversation("Iceland", "What clothes should I pack?", ref)}
    assert post(semantic, iceland, advanced).headers["floopy-cache"] == "MISS"
    assert calls(semantic.mock_url, ref) == 3


def test_semantic_entries_are_never_shared_across_tenants(semantic: Gateway) -> None:
    ref = tag()
    on = {"floopy-cache-enabled": "true"}
    before = stored(semantic)
    post(semantic, chat(f"How do I reverse a list in Python? {ref}"))
    settle(semantic, before)
    paraphrase = chat(f"How can I reverse a list in Python? {ref}")
    assert post(semantic, paraphrase, on, key=OTHER_KEY).headers["floopy-cache"] == "MISS"
    web, batch = {"floopy-project-id": "web"}, {"floopy-project-id": "batch"}
    before = stored(semantic)
    post(semantic, chat(f"Why is the sky blue? {ref}"), web)
    settle(semantic, before)
    got = post(semantic, chat(f"Why does the sky look blue? {ref}"), batch)
    assert got.headers["floopy-cache"] == "MISS"
    got = post(semantic, chat(f"Why does the sky look blue? {ref}"), web)
    assert got.headers["floopy-cache"] == "HIT; tier=semantic"
    assert calls(semantic.mock_url, ref) == 4
    counted = metrics(semantic.url)
    assert counted['floopy_cache_hits_total{tier="semantic"}'] >= 1
    assert 'floopy_cache_errors_total{tier="advanced"}' in counted


def test_a_semantic_entry_expires_with_its_answer(semantic: Gateway) -> None:
    ref = tag()
    before = stored(semantic)
    post(semantic, chat(f"What causes rainbows? {ref}"), {"cache-control": "max-age=1"})
    settle(semantic, before)
    paraphrase = chat(f"What causes a rainbow to appear? {ref}")
    assert post(semantic, paraphrase).headers["floopy-cache"] == "HIT; tier=semantic"
    time.sleep(1.2)  # past the answer's one-second TTL
    assert (
        post(semantic, chat(f"What causes rainbows, please? {ref}")).headers["floopy-cache"]
        == "MISS"
    )
    assert calls(semantic.mock_url, ref) == 2
