"""The pipeline as declared: the stage order, early answers, a span per stage, and the
one-way imports that keep stages, endpoints and observability apart."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from floopy import errors, pipeline
from floopy.context import RequestContext
from floopy.pipeline.exchange import Exchange, Stage
from floopy.providers.base import Completion

PACKAGE = Path(pipeline.__file__).resolve().parents[1]


def test_the_stages_run_in_the_documented_order() -> None:
    assert [stage.name for stage in pipeline.STAGES] == [
        "auth",
        "parse",
        "rate_limit",
        "cache",
        "firewall",
        "routing",
        "dispatch",
        "cache_tap",
        "respond",
    ]


def exchange() -> Exchange:
    ctx = RequestContext(request_id="req_1", method="POST", path="/", client_ip="127.0.0.1")
    return Exchange(
        worker=SimpleNamespace(),  # type: ignore[arg-type]
        endpoint=SimpleNamespace(api_format="openai"),  # type: ignore[arg-type]
        ctx=ctx,
        scope=SimpleNamespace(),  # type: ignore[arg-type]
        proto=SimpleNamespace(),  # type: ignore[arg-type]
    )


def recording(ran: list[str], name: str, answer: bool = False) -> Stage:
    async def run(x: Exchange) -> None:
        assert x.span is not None and x.span.name == name  # the runner's span is open
        ran.append(name)
        if answer:
            x.reply = Completion(body=b"{}")

    return Stage(name, run)


def test_an_early_answer_skips_the_stages_until_the_answer() -> None:
    ran: list[str] = []
    stages = (
        recording(ran, "first"),
        recording(ran, "answers", answer=True),
        Stage("skipped", recording(ran, "skipped").run, until_answered=True),
        recording(ran, "last"),
    )
    x = exchange()
    asyncio.run(pipeline._run_stages(x, stages))
    assert ran == ["first", "answers", "last"]
    assert [span.name for span in x.ctx.trace.spans] == ["first", "answers", "last"]
    assert set(x.ctx.stages_ms) == {"first", "answers", "last"}


def test_a_failing_stage_stops_the_pipeline_and_marks_its_span() -> None:
    ran: list[str] = []

    async def refuse(x: Exchange) -> None:
        raise errors.InvalidApiKey("no key")

    stages = (recording(ran, "first"), Stage("refuses", refuse), recording(ran, "never"))
    x = exchange()
    with pytest.raises(errors.InvalidApiKey):
        asyncio.run(pipeline._run_stages(x, stages))
    assert ran == ["first"]
    failed = x.ctx.trace.spans[-1]
    assert (failed.name, failed.status, failed.attributes["error"]) == (
        "refuses",
        "error",
        "INVALID_API_KEY",
    )


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("pipeline", ("floopy.endpoints", "floopy.handlers", "floopy.app")),
        ("providers", ("floopy.pipeline", "floopy.endpoints", "floopy.observability")),
        ("observability", ("floopy.pipeline", "floopy.providers", "floopy.endpoints")),
        ("endpoints", ("floopy.handlers", "floopy.app")),
    ],
)
def test_imports_point_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    offending: dict[str, Any] = {}
    for path in modules_under(folder):
        bad = sorted(
            name for name in imports_of(path) if any(name.startswith(f) for f in forbidden)
        )
        if bad:
            offending[str(path.relative_to(PACKAGE))] = bad
    assert offending == {}


def test_an_untraced_stage_runs_without_a_span() -> None:
    ran: list[str] = []

    async def quiet(x: Exchange) -> None:
        assert x.span is None
        ran.append("quiet")

    stages = (recording(ran, "first"), Stage("quiet", quiet, traced=False))
    x = exchange()
    asyncio.run(pipeline._run_stages(x, stages))
    assert ran == ["first", "quiet"]
    assert [span.name for span in x.ctx.trace.spans] == ["first"]
