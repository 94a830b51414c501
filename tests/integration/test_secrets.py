"""No provider key in any answer, log row or span: a provider that quotes the key it was
sent in its error text (as OpenAI's "Incorrect API key provided" does), on chat, streams and
/v1/messages, through a real gateway process. The key is short on purpose (``sk-`` and 9
characters), below what a shape-only scrubber would catch: it is masked by its value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import TEST_KEY, Gateway, start_gateway, stop, write_settings
from .logstore import embedded_client

pytestmark = pytest.mark.integration

PROVIDER_KEY = "sk-9Zq4Wx7"  # short and key-shaped only by its prefix


@pytest.fixture(scope="module")
def gateway(mock_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("secrets")
    settings = write_settings(
        root / "settings.py", mock_upstream, root / "data", LOG_FLUSH_INTERVAL="0.1"
    )
    url, proc = start_gateway(
        settings, root / "gateway.log", {"FLOOPY_TEST_MOCK_KEY": PROVIDER_KEY}
    )
    gw = Gateway(url=url, key=TEST_KEY, mock_url=mock_upstream, data_dir=root / "data", proc=proc)
    try:
        yield gw
    finally:
        stop(proc)


def messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": f"token {uuid.uuid4().hex}"}]


def test_an_upstream_error_quoting_the_key_reaches_the_client_without_it(
    gateway: Gateway,
) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as whole:
        client.chat.completions.create(model="mock/fail-9-401-leakkey", messages=messages())
    with pytest.raises(openai.APIStatusError) as streamed:
        client.chat.completions.create(
            model="mock/fail-9-401-leakkey", messages=messages(), stream=True
        )
    with pytest.raises(openai.BadRequestError) as rejected:
        client.chat.completions.create(model="mock/fail-9-400-leakkey", messages=messages())
    for caught in (whole, streamed, rejected):
        text = caught.value.response.text
        assert "Incorrect API key provided" in text
        assert PROVIDER_KEY not in text and PROVIDER_KEY[3:] not in text


def test_messages_errors_leave_the_key_out(gateway: Gateway) -> None:
    for stream in (False, True):
        response = httpx.post(
            f"{gateway.base_url}/messages",
            headers={"x-api-key": gateway.key},
            json={
                "model": "mock/fail-9-400-leakkey",
                "max_tokens": 5,
                "messages": messages(),
                "stream": stream,
            },
        )
        assert response.status_code == 400
        assert response.json()["type"] == "error"
        assert "Incorrect API key provided" in response.text
        assert PROVIDER_KEY not in response.text


def test_no_key_in_any_log_row_or_span(gateway: Gateway, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    leaked = f"session-{PROVIDER_KEY}"
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="mock/fail-9-401-leakkey",
            messages=messages(),
            user=f"user {PROVIDER_KEY}",
            extra_headers={
                "floopy-session-id": leaked,
                "floopy-session-name": leaked,
                "floopy-property-note": leaked,
            },
        )
    stop(gateway.proc)  # drains the log; the embedded store opens in one process at a time
    with embedded_client(gateway.data_dir) as store:
        rows = store.query("SELECT * FROM floopy.requests").named_results()
        spans = store.query("SELECT * FROM floopy.spans").named_results()
    dumped = json.dumps([*rows, *spans], default=str)
    assert rows and spans
    assert "Incorrect API key provided" in dumped  # the span kept the scrubbed message
    assert PROVIDER_KEY not in dumped and TEST_KEY not in dumped
    output = (gateway.data_dir.parent / "gateway.log").read_text()
    assert PROVIDER_KEY not in output and TEST_KEY not in output
