"""The request log: what it adds to a request, and how fast rows go into the embedded store.

``log-per-request``: building a finished request's row (the record with its spans),
scrubbing, JSON encoding and enqueueing it, which is all the request path does
(``RequestLog.finished``) besides the write, without scrubbing, with the default (keys,
bearer tokens) and with every kind.
``log-hand-over``: how a request's row leaves the worker, side by side: appended to an
in-memory queue (what earlier versions did, with the database in the worker), appended to the
worker's journal (one native write that reaches the OS: what a worker does now), and sent
over a Unix socket to another process's reader (the alternative the journal was chosen over).
``log-insert``: one batch of 1,000 request rows inserted into the embedded store (chDB)
through clickhouse-connect, as the log store process does; rows per second is 1,000 over the
time per call. Each bench checks its result first.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from floopy._native import HeaderExtractor, RequestParser
from floopy.context import RequestContext
from floopy.observability.journal import JournalFile
from floopy.observability.migrations import migrate
from floopy.observability.record import REQUESTS, RecordBuilder, encode, table_of
from floopy.observability.store import LogStore
from floopy.providers.base import Usage
from floopy.settings import ApiKeyEntry, Settings, load_settings

from conftest import chat_body

Bench = Any
KEY = ApiKeyEntry(id="k1", hash="sha256:" + "0" * 64, organization="acme", project="web")
HEADERS = [
    ("authorization", "Bearer fpk_x"),
    ("floopy-session-id", "s-1"),
    ("floopy-user-id", "u-1"),
    ("floopy-property-env", "prod"),
    ("user-agent", "OpenAI/Python 1.50"),
]
RESPONSE = b'{"id":"chatcmpl-1","choices":[{"message":{"content":"' + b"word " * 60 + b'"}}]}'


def settings(**overrides: object) -> Settings:
    return msgspec.structs.replace(load_settings({}), **overrides)


def finished_request(body: bytes) -> RequestContext:
    ctx = RequestContext(
        request_id=f"req_{uuid.uuid4().hex}",
        method="POST",
        path="/v1/chat/completions",
        client_ip="127.0.0.1:5000",
    )
    ctx.headers = HeaderExtractor().extract(HEADERS)
    ctx.key, ctx.body, ctx.chat = KEY, body, RequestParser().parse(body)
    for stage in ("auth", "parse", "rate_limit", "routing"):
        with ctx.span(stage):
            pass
    with ctx.span("dispatch"), ctx.span("provider_attempt", provider="openai", model="gpt-4o"):
        pass
    with ctx.span("respond"):
        pass
    ctx.provider, ctx.model, ctx.requested_model = "openai", "gpt-4o", "gpt-4o"
    ctx.usage = Usage(prompt_tokens=40, completion_tokens=60, total_tokens=100)
    ctx.response_body, ctx.finish_reason = RESPONSE, "stop"
    return ctx


def log_request(
    builder: RecordBuilder, ctx: RequestContext, queue: collections.deque[bytes]
) -> None:
    queue.append(encode(builder.request(ctx)))


SCRUB = {
    "no-scrub": (),
    "default-scrub": ("api_keys", "bearer_tokens"),
    "scrub-all": ("emails", "card_numbers", "phone_numbers", "api_keys", "bearer_tokens"),
}


@pytest.mark.parametrize("scrub", list(SCRUB))
@pytest.mark.parametrize("size", ["small", "20msg"])
def test_log_per_request(benchmark: Bench, size: str, scrub: str) -> None:
    builder = RecordBuilder(settings(log_scrub=SCRUB[scrub]))
    ctx = finished_request(chat_body(size))
    queue: collections.deque[bytes] = collections.deque(maxlen=10_000)
    log_request(builder, ctx, queue)
    row = msgspec.json.decode(queue[0])
    assert len(queue) == 1 and row["total_tokens"] == 100 and row["spans"]
    benchmark.group = f"log-per-request-{size}"
    benchmark(log_request, builder, ctx, queue)


def one_row() -> bytes:
    return encode(RecordBuilder(settings()).request(finished_request(chat_body("small"))))


def test_hand_over_to_a_queue(benchmark: Bench) -> None:
    request = one_row()
    queue: collections.deque[bytes] = collections.deque(maxlen=10_000)

    def hand_over() -> None:
        queue.append(request)

    hand_over()
    assert list(queue) == [request]
    benchmark.group = "log-hand-over"
    benchmark(hand_over)


def test_hand_over_to_the_journal(benchmark: Bench, tmp_path: Any) -> None:
    request = one_row()
    journal = JournalFile(tmp_path, "requests", "1-bench", 1 << 40)

    def hand_over() -> None:
        journal.append((request,))

    hand_over()
    assert journal.live.read_bytes() == request + b"\n"
    benchmark.group = "log-hand-over"
    benchmark(hand_over)
    journal.close()


def test_hand_over_over_a_socket(benchmark: Bench) -> None:
    request = one_row()
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    received = [0]

    def drain() -> None:
        while chunk := receiver.recv(1 << 20):
            received[0] += len(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def hand_over() -> None:
        sender.sendall(request + b"\n")

    hand_over()
    benchmark.group = "log-hand-over"
    benchmark(hand_over)
    sender.close()
    reader.join(10)
    assert received[0] > 0
    receiver.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    store = LogStore(None, str(tmp_path_factory.mktemp("bench-store")))
    migrate(store, settings(), lambda line: None)
    yield store
    store.close()


def request_rows(count: int) -> list[bytes]:
    builder = RecordBuilder(settings())
    ctx = finished_request(chat_body("small"))
    template = msgspec.structs.to_builtins(builder.request(ctx))
    rows = []
    for i in range(count):
        template["request_id"], template["time"] = f"req_{uuid.uuid4().hex}", time.time() + i
        rows.append(msgspec.json.encode(template))
    return rows


def test_log_insert_batch(benchmark: Bench, store: LogStore) -> None:
    batch = request_rows(1000)
    before = store.rows("SELECT count() FROM floopy.requests")[0][0]
    store.insert_lines(table_of(REQUESTS), batch)
    assert store.rows("SELECT count() FROM floopy.requests")[0][0] == before + 1000
    benchmark.group = "log-insert"
    benchmark.pedantic(
        store.insert_lines, args=(table_of(REQUESTS), batch), rounds=10, iterations=1
    )
