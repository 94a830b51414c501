"""The worker's own process settings, applied as granian starts it."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest

from floopy import app


@pytest.fixture
def collector() -> Iterator[None]:
    """Restores the collector's thresholds and unfreezes what a test froze."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_settling_freezes_start_up_objects_and_spaces_young_collections() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    app.settle_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (app.GC_YOUNGEST, 10, 10)  # the older generations as they were
    assert gc.get_count()[0] < app.GC_YOUNGEST


@pytest.mark.usefixtures("collector")
def test_a_worker_started_by_granian_settles_the_collector_after_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []

    async def start() -> object:
        order.append("started")
        return object()

    monkeypatch.setattr(app.Worker, "start", staticmethod(start))
    monkeypatch.setattr(app, "settle_collector", lambda: order.append("settled"))
    loop = asyncio.new_event_loop()
    try:
        app.Gateway().__rsgi_init__(loop)
    finally:
        loop.close()
    assert order == ["started", "settled"]


def test_request_ids_differ_between_forked_workers() -> None:
    # granian forks its workers from one process: each must draw its own ids.
    read, write = os.pipe()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os.write(write, app.new_request_id().encode())
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        ids = pipe.read().decode()
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    assert first.startswith("req_") and second.startswith("req_")
    assert len(first) == len("req_") + 32 and first != second
    assert first != app.new_request_id() != second
