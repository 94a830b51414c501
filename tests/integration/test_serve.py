"""``floopy serve`` as an operator meets it: start-up output, the development key, and a stop
that lets requests in flight finish, within the grace period."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from .conftest import TEST_KEY, start_gateway, stop, write_settings

pytestmark = pytest.mark.integration

KEY_LINE = re.compile(r"development key: (fpk_[A-Za-z0-9_-]{43})\b")


def ask_echo(url: str, key: str) -> str | None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "are you there"}]
    )
    return reply.choices[0].message.content


def test_development_key_printed_once_and_accepted_by_every_worker(
    tmp_path: Path, mock_upstream: str
) -> None:
    settings = write_settings(
        tmp_path / "settings.py", mock_upstream, tmp_path / "data", with_keys=False
    )
    first_log = tmp_path / "first.log"
    url, proc = start_gateway(settings, first_log, None, "--workers", "2")
    try:
        output = first_log.read_text()
        assert f"listening on {url}" in output
        assert "workers: 2" in output
        assert re.search(r"log store: process \d+ \(floopy store\), supervised", output)
        match = KEY_LINE.search(output)
        assert match, output
        key = match.group(1)
        # Several requests, so both workers answer at least once in all likelihood.
        for _ in range(6):
            assert ask_echo(url, key) == "are you there"
        with pytest.raises(openai.AuthenticationError):
            ask_echo(url, key[:-1] + ("A" if key[-1] != "A" else "B"))
    finally:
        stop(proc)
    stored = (tmp_path / "data" / "dev-key.json").read_text()
    assert key not in stored, "the plaintext key must never be written to disk"

    second_log = tmp_path / "second.log"
    url, proc = start_gateway(settings, second_log)
    try:
        assert not KEY_LINE.search(second_log.read_text()), "the key is printed only once"
        assert ask_echo(url, key) == "are you there"
    finally:
        stop(proc)


def test_a_stop_finishes_requests_in_flight_and_cuts_those_past_the_grace_period(
    tmp_path: Path, mock_upstream: str
) -> None:
    settings = write_settings(
        tmp_path / "settings.py", mock_upstream, tmp_path / "data", SHUTDOWN_GRACE_PERIOD="3"
    )
    url, proc = start_gateway(settings, tmp_path / "gw.log")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TEST_KEY, max_retries=0, timeout=120)

    def ask(model: str) -> str:
        try:
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "wait for it"}]
            )
        except openai.APIConnectionError:
            return "cut"
        return "answered" if reply.choices else "empty"

    with ThreadPoolExecutor(2) as pool:
        quick = pool.submit(ask, "mock/slow-1000")  # done well within the grace period
        hanging = pool.submit(ask, "mock/slow-60000")  # the upstream answers after a minute
        time.sleep(0.5)  # both in flight
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=45)  # far less than the hanging call's minute
        except subprocess.TimeoutExpired:
            stop(proc)
            raise AssertionError("the stop waited for the upstream call") from None
        assert quick.result() == "answered"
        assert hanging.result() == "cut"
    assert proc.returncode == 0
