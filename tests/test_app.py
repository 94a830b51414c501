"""The worker's own process settings, applied as granian starts it."""

from __future__ import annotations

import asyncio
import gc
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
