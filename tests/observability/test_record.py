"""Building the rows of a finished request: fields, project resolution, redaction, spans."""

from __future__ import annotations

import asyncio

import msgspec

from floopy._native import HeaderExtractor, RequestParser
from floopy.context import RequestContext
from floopy.observability.record import RecordBuilder, encode, project_of, spans_of
from floopy.providers.base import Usage
from floopy.settings import ApiKeyEntry, Settings, load_settings

KEY = ApiKeyEntry(id="k1", hash="sha256:" + "0" * 64, organization="acme", project="web")
BODY = (
    b'{"model":"gpt-4o-mini","user":"body-user","messages":[{"role":"user",'
    b'"content":"mail jane@example.com, key sk-proj-abcdefghijklmnop1234"}]}'
)


def settings(**overrides: object) -> Settings:
    return msgspec.structs.replace(load_settings({}), **overrides)


def finished(headers: dict[str, str] | None = None, **fields: object) -> RequestContext:
    ctx = RequestContext(
        request_id="req_1", method="POST", path="/v1/chat/completions", client_ip="10.0.0.9:5123"
    )
    ctx.headers = HeaderExtractor().extract(list((headers or {}).items()))
    ctx.key = KEY
    ctx.body = BODY
    ctx.chat = RequestParser().parse(BODY)
    with ctx.span("auth"):
        pass
    with ctx.span("dispatch"), ctx.span("provider_attempt", provider="mock"):
        pass
    with ctx.span("respond"):
        pass
    for name, value in fields.items():
        setattr(ctx, name, value)
    return ctx


def test_a_success_fills_every_field() -> None:
    ctx = finished(
        {
            "floopy-session-id": "s1",
            "floopy-session-name": "checkout",
            "floopy-session-path": "/a/b",
            "floopy-property-env": "prod",
            "user-agent": "test/1",
        },
        provider="mock",
        model="gpt-4o-mini",
        requested_model="gpt-4o-mini",
        usage=Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=2),
        finish_reason="stop",
        response_body=b'{"ok":true}',
    )
    record = RecordBuilder(settings()).request(ctx)
    assert record.organization == "acme" and record.project == "web"
    assert record.api_key_id == "k1"
    assert record.user_id == "body-user"  # the body's `user` when no header names one
    assert (record.session_id, record.session_name, record.session_path) == (
        "s1",
        "checkout",
        "/a/b",
    )
    assert record.properties == {"env": "prod"}
    assert record.client_ip == "10.0.0.9" and record.user_agent == "test/1"
    assert record.total_tokens == 15 and record.cached_tokens == 2
    assert set(record.stage_latency_ms) == {"auth", "dispatch", "respond"}
    assert record.ttft_ms is not None and 0 < record.ttft_ms <= record.latency_ms
    decoded = msgspec.json.decode(encode(record))
    assert decoded["request_id"] == "req_1" and decoded["status"] == 200
    assert decoded["span_rows"][0][2] == "request"  # one line, the spans in it, as arrays


def test_spans_hang_under_the_request_root() -> None:
    ctx = finished()
    builder = RecordBuilder(settings())
    spans = spans_of(builder.request(ctx))
    root = spans[0]
    assert root.name == "request" and root.parent_id == ""
    by_name = {span.name: span for span in spans}
    assert by_name["auth"].parent_id == root.span_id
    assert by_name["provider_attempt"].parent_id == by_name["dispatch"].span_id
    assert by_name["provider_attempt"].attributes == {"provider": "mock"}
    assert all(span.start_time >= root.start_time for span in spans)


def test_redaction_and_body_settings() -> None:
    ctx = finished({"floopy-property-contact": "jane@example.com"})
    scrubbed = RecordBuilder(settings(log_scrub=("emails", "api_keys"))).request(ctx)
    assert "jane@example.com" not in scrubbed.request_body
    assert "[EMAIL]" in scrubbed.request_body and "[API_KEY]" in scrubbed.request_body
    assert scrubbed.properties == {"contact": "[EMAIL]"}
    assert RecordBuilder(settings(log_bodies=False)).request(ctx).request_body == ""
    cut = RecordBuilder(settings(log_body_max_bytes=10, log_scrub=())).request(ctx)
    assert cut.request_body == BODY[:10].decode()


def test_project_resolution_follows_the_design() -> None:
    ctx = finished({"floopy-project-id": "other"})
    assert project_of(ctx) == "other"  # an unlocked key lets the header choose
    ctx.key = ApiKeyEntry(
        id="k2", hash="sha256:" + "1" * 64, project="locked", locked_to_project=True
    )
    assert project_of(ctx) == "locked"
    ctx.key, ctx.headers = None, None
    assert project_of(ctx) == "default"


def test_a_request_cancelled_inside_a_stage_is_a_client_disconnect() -> None:
    ctx = finished()
    span = ctx.start_span("dispatch")
    span.fail(asyncio.CancelledError())
    record = RecordBuilder(settings()).request(ctx)
    assert (record.status, record.error_code) == (499, "CLIENT_DISCONNECTED")


def test_an_error_has_no_time_to_first_token() -> None:
    ctx = finished(status=502, error_code="PROVIDER_ERROR")
    assert RecordBuilder(settings()).request(ctx).ttft_ms is None


def test_span_attributes_are_logged_as_text_and_an_error_message_is_scrubbed() -> None:
    ctx = finished()
    with ctx.span("cache", hit=True, tier=None, similarity=0.5, attempts=3, path='a"\n\\b'):
        pass
    try:
        with ctx.span("firewall"):
            raise ValueError("boom")
    except ValueError:
        pass
    ctx.trace.spans[-1].set(**{"error.message": "upstream said sk-proj-abcdefghijklmnop1234"})
    spans = {span.name: span for span in spans_of(RecordBuilder(settings()).request(ctx))}
    assert spans["cache"].attributes == {
        "hit": "true",
        "similarity": "0.5",
        "attempts": "3",
        "path": 'a"\n\\b',
    }
    failed = spans["firewall"]
    assert failed.status == "error" and failed.attributes["error"] == "ValueError"
    assert "sk-proj-abcdefghijklmnop1234" not in failed.attributes["error.message"]
    assert failed.attributes["error.message"].startswith("upstream said ")
    assert failed.duration_ms >= 0 and failed.parent_id == spans["request"].span_id


def test_the_root_span_and_an_open_span_as_the_row_holds_them() -> None:
    ctx = finished(status=502, parent_span_id="00f067aa0ba902b7")
    ctx.trace.start("dispatch", None, {})  # never ended
    record = RecordBuilder(settings()).request(ctx, latency_ms=7.5)
    root, *rest = spans_of(record)
    assert (root.name, root.parent_id, root.duration_ms) == ("request", "00f067aa0ba902b7", 7.5)
    assert root.status == "error" and root.attributes["status"] == "502"
    assert root.start_time == ctx.started_at
    assert rest[-1].name == "dispatch" and rest[-1].duration_ms == 0.0
    assert [span.span_id for span in rest] == [span.span_id for span in ctx.trace.spans]
