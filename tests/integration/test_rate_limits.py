"""Rate limits and projects end to end: exact boundaries, the 429 and RateLimit-* headers,
token budgets, and which project a request counts under."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop, write_settings

pytestmark = pytest.mark.integration

LOCKED_KEY = "fpk_test_locked_key_0123456789abcdefghijklmnopqrst"
GLOBEX_KEY = "fpk_test_globex_key_0123456789abcdefghijklmnopqrst"


def _sha(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("ratelimits")
    settings = write_settings(
        root / "settings.py",
        mock_upstream,
        root / "data",
        API_KEYS=(
            f"[{{'id': 'test', 'hash': '{_sha(TEST_KEY)}', 'organization': 'acme'}},"
            f" {{'id': 'locked', 'hash': '{_sha(LOCKED_KEY)}', 'organization': 'acme',"
            "   'project': 'batch', 'locked_to_project': True},"
            f" {{'id': 'globex', 'hash': '{_sha(GLOBEX_KEY)}', 'organization': 'globex',"
            "   'project': 'secret'}]"
        ),
        ORGANIZATIONS="{'acme': {'projects': ['web', 'batch'], 'default_project': 'web'}}",
        RATE_LIMITS=(
            "[{'scope': 'user', 'requests': 3, 'window': 60},"
            " {'scope': 'project', 'match': 'batch', 'requests': 2, 'window': 60},"
            " {'scope': 'user', 'match': 'thrifty', 'tokens': 20, 'window': 60}]"
        ),
    )
    url, proc = start_gateway(settings, root / "gateway.log")
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


def client_for(gateway: Gateway, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def ask(client: openai.OpenAI, **headers: str) -> openai.APIResponse:  # type: ignore[type-arg]
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=headers,
    )


def test_requests_per_user_are_refused_exactly_past_the_limit(gateway: Gateway) -> None:
    client, user = client_for(gateway), f"user-{uuid.uuid4().hex}"
    remaining = [ask(client, **{"floopy-user-id": user}).headers for _ in range(3)]
    assert [h["ratelimit-remaining"] for h in remaining] == ["2", "1", "0"]
    assert all(h["ratelimit-limit"] == "3" for h in remaining)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, **{"floopy-user-id": user})
    error = caught.value
    assert error.code == "RATE_LIMIT_EXCEEDED"
    headers = error.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["ratelimit-reset"] == headers["retry-after"]
    assert (headers["ratelimit-limit"], headers["ratelimit-remaining"]) == ("3", "0")
    assert (headers["floopy-provider"], headers["floopy-model"]) == ("", "")
    assert headers["floopy-fallback-used"] == "false"
    assert ask(client, **{"floopy-user-id": f"other-{user}"}).headers["ratelimit-remaining"] == "2"


def test_the_body_user_field_names_the_end_user(gateway: Gateway) -> None:
    client, user = client_for(gateway), f"body-{uuid.uuid4().hex}"
    for _ in range(3):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user=user
        )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user=user
        )


def test_project_of_another_organization_is_forbidden(gateway: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(client_for(gateway), **{"floopy-project-id": "secret"})
    assert caught.value.code == "FORBIDDEN"
    with pytest.raises(openai.PermissionDeniedError):
        ask(client_for(gateway, GLOBEX_KEY), **{"floopy-project-id": "web"})


def test_a_locked_key_ignores_the_project_header(gateway: Gateway) -> None:
    # The batch project's budget is 2 requests: one through the header, one through the
    # locked key (whatever project it names), and the third is refused.
    ask(client_for(gateway), **{"floopy-project-id": "batch"})
    ask(client_for(gateway, LOCKED_KEY), **{"floopy-project-id": "web"})
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client_for(gateway), **{"floopy-project-id": "batch"})
    assert caught.value.response.headers["ratelimit-limit"] == "2"
    assert ask(client_for(gateway), **{"floopy-project-id": "web"}).status_code == 200


def test_tokens_are_counted_once_the_answer_is_known(gateway: Gateway) -> None:
    client = client_for(gateway)
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="thrifty"
    )
    # Under the budget alone, over it with a second request like it.
    assert first.usage is not None and first.usage.total_tokens < 20 <= 2 * first.usage.total_tokens
    chunks = list(  # a stream's tokens count too
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            user="thrifty",
            stream=True,
        )
    )
    assert chunks
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="thrifty"
        )
    assert caught.value.response.headers["ratelimit-limit"] == "20"
