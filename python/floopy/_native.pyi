"""Type stubs of ``floopy._native``, the Rust hot path (``rust/py`` over ``rust/core``).

The boundary is narrow: bytes in, small frozen objects out, one call per stage per request.
Configured objects (a parser with its limits, a keyer, a writer) are built once at start-up.
``make lint`` checks this file against the built module (``mypy.stubtest``).
"""

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Self, final

__version__: str
__all__ = [
    "CacheKeyer",
    "ChatRequest",
    "ExportRow",
    "FloopyHeaders",
    "HeaderExtractor",
    "JsonlReader",
    "JsonlWriter",
    "NativeUpstream",
    "Needles",
    "OpenAIStreamRelay",
    "RelayCapture",
    "RequestParser",
    "Span",
    "SseEvent",
    "SseParser",
    "StreamUsage",
    "ToolCall",
    "Trace",
    "__version__",
    "otlp_export_request",
    "stream_translator",
]

# --- errors ---------------------------------------------------------------------------------
# The native core raises the classes of ``floopy.errors`` itself (rust/py/src/errors.rs maps
# every core and upstream error there, once): PayloadTooLarge; InvalidJson, InvalidField and
# InvalidHeader (each an InvalidInput: a BadRequest and a ValueError), with ``param`` the
# offending field's dotted path or header's name; UpstreamError and UpstreamTimeout (with
# ``phase``) from the upstream client. I/O errors are OSError. A constructor given a negative
# size or count raises ValueError naming the argument.

# --- parse ------------------------------------------------------------------------------------

@final
class ChatRequest:
    """The facts of a chat-completions body that the pipeline needs; frozen."""

    model: str
    stream: bool
    include_usage: bool  # stream_options.include_usage
    message_count: int
    # Text parts of the last message whose role is "user", joined by "\n"; None when no
    # message is from the user, "" when that message has no text (null content, images only).
    last_user_text: str | None
    user: str | None
    has_tools: bool  # a non-empty ``tools`` (or legacy ``functions``) array

@final
class RequestParser:
    """Parses chat-completions bodies. Build once with its limits, call per request."""

    max_body_bytes: int
    max_depth: int

    def __new__(cls, max_body_bytes: int = 10_485_760, max_depth: int = 64) -> Self:
        """Raises ValueError unless 1 <= max_depth <= 100 (serde_json's own stack guard
        stops at 128; ours stays under it). The body object itself is depth 1."""

    def parse(self, body: bytes) -> ChatRequest:
        """Raises PayloadTooLarge, InvalidJson (not JSON, with line and column; nested deeper
        than ``max_depth``; not an object) or InvalidField with ``param`` the dotted path:
        ``model`` missing, empty or not a string; ``messages`` missing, empty or not an array;
        ``messages.N`` not an object; ``messages.N.role`` missing or not a string;
        ``messages.N.content`` not a string, array of parts or null; ``messages.N.content.M``
        not an object, or a text part whose ``text`` is missing or not a string; ``stream``,
        ``stream_options.include_usage`` not booleans; ``stream_options`` not an object;
        ``user`` not a string; ``tools``/``functions`` not arrays. Null counts as absent for
        the optional fields. The error does not depend on key order. Releases the GIL for
        bodies over 64 KiB."""

# --- headers ----------------------------------------------------------------------------------

@final
class FloopyHeaders:
    """Every request header of DESIGN section 4 the gateway reads; frozen. Names are
    case-insensitive and both ``floopy-*`` and ``x-floopy-*`` spellings are read. Values are
    trimmed; an empty text value counts as absent. A repeated header: the last wins, except
    the two lists, which add up, and ``x-forwarded-for``, where the first counts."""

    api_key: str | None  # "Authorization: Bearer <key>", else "x-api-key"
    session_id: str | None
    session_name: str | None
    session_path: str | None
    project_id: str | None
    user_id: str | None
    properties: dict[str, str]  # floopy-property-<name>: <name> lower-cased
    model_override: str | None
    routing_rule: str | None
    fallbacks: list[str]  # floopy-fallback, split on commas, trimmed, empties dropped
    # None when the header is absent; then "cache-control: no-store" or "no-cache" give False.
    cache_enabled: bool | None
    cache_advanced: bool
    cache_seed: str | None
    cache_bucket_max_size: int | None  # a positive integer
    cache_ignore_keys: list[str]
    cache_max_age: int | None  # seconds, from "cache-control: max-age=N" among other directives
    llm_security_enabled: bool | None
    user_agent: str | None
    forwarded_for: str | None  # first address of x-forwarded-for

@final
class HeaderExtractor:
    max_value_len: int
    max_properties: int

    def __new__(cls, max_value_len: int = 4096, max_properties: int = 64) -> Self: ...
    def extract(
        self,
        headers: Iterable[tuple[str | bytes, str | bytes]],
        names: Iterable[str | bytes] | None = None,
    ) -> FloopyHeaders:
        """Raises InvalidHeader (``param`` the header name, lower-case) for a value longer than
        ``max_value_len`` bytes, holding control characters other than tab, or not UTF-8; a
        boolean other than true/false/1/0 (any case); a bucket size that is not a positive
        integer; a max-age that is not a number; a property header without a name, or more
        than ``max_properties`` distinct properties. Headers the gateway does not read are
        ignored unchecked. ``names``, when given, is every header name the request carried
        (granian's ``scope.headers.keys()``): a header the gateway reads that is named there
        but has no value in ``headers`` had its value dropped by the server as unreadable
        (not printable ASCII), and raises InvalidHeader too. Raises TypeError for items that
        are not tuples of str or bytes, ValueError for tuples that are not pairs."""

# --- cache key --------------------------------------------------------------------------------

@final
class CacheKeyer:
    """Exact-cache keys: xxh3-128 over the canonical form of a chat request (DESIGN section 6):
    keys sorted at every depth, no whitespace, integral floats written as integers, the
    ``excluded`` top-level fields and the per-request ``ignore_keys`` left out, prefixed by the
    tenant scope and the seed. Of repeated keys the last counts. Exclusions and ignore_keys
    apply to top-level keys only.

    Framing hashed by ``key`` (pinned by tests): ``b"floopy-exact-v1\\0"``, the scope's UTF-8
    length as u64 little-endian and its bytes, then ``b"\\x00"`` without a seed or ``b"\\x01"``
    with the seed's length (u64 little-endian) and bytes, then the canonical bytes."""

    excluded: list[str]

    def __new__(cls, excluded: Sequence[str] | None = None) -> Self:
        """``None`` means the default: stream, stream_options, user, metadata, store."""

    def key(
        self,
        body: bytes,
        scope: str = "",
        seed: str | None = None,
        ignore_keys: Sequence[str] = ...,
    ) -> str:
        """32 lower-case hex digits. Raises InvalidJson on a body that is not a JSON object.
        Releases the GIL for bodies over 64 KiB."""

    def canonical(self, body: bytes, ignore_keys: Sequence[str] = ...) -> bytes:
        """The canonical bytes that ``key`` hashes (without scope and seed); for tests and
        debugging."""

# --- sse --------------------------------------------------------------------------------------

@final
class SseEvent:
    """One event; frozen, compared by value."""

    event: str | None  # the "event:" name, None when absent or empty
    data: str  # data lines joined by "\n"
    id: str | None  # the last "id:" seen in the stream (it carries over events, as in WHATWG)
    raw: bytes  # the event's bytes exactly as received, blank-line terminator included

@final
class SseParser:
    """Incremental text/event-stream parser: feed bytes in any pieces, get whole events.
    LF, CRLF and CR line ends, comments, multi-line data, event names, a UTF-8 BOM. A CR
    ending the bytes fed so far waits for the next byte (it may start a CRLF). Comment-only
    blocks dispatch no event.

    A block (an event, its blank line included) may be at most ``max_event_bytes`` long
    (default 16 MiB), so an upstream that never ends a line cannot make it buffer without
    bound: a longer one is dropped, ``oversized`` turns true, and every later ``feed`` is
    ignored until ``finish``."""

    def __new__(cls, max_event_bytes: int = ...) -> Self:  # 16 MiB
        """Raises ValueError for a ``max_event_bytes`` below 1."""

    def feed(self, chunk: bytes) -> list[SseEvent]: ...
    def finish(self) -> list[SseEvent]:
        """Flush an event left without its terminating blank line at end of stream; the
        parser is then ready for a new stream (``oversized`` false, the same cap)."""

    @property
    def max_event_bytes(self) -> int: ...
    @property
    def oversized(self) -> bool: ...  # a block outgrew max_event_bytes: the stream is dropped
    @property
    def pending(self) -> int: ...  # bytes received of the block still open (not yet whole)

@final
class StreamUsage:
    """Frozen, compared by value; absent counts are 0."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int  # prompt_tokens_details.cached_tokens
    reasoning_tokens: int  # completion_tokens_details.reasoning_tokens
    cache_write_tokens: int  # Anthropic's cache_creation_input_tokens; 0 for the others

@final
class ToolCall:
    """Frozen, compared by value."""

    index: int
    id: str | None
    name: str | None
    arguments: str  # the function.arguments fragments, concatenated

@final
class OpenAIStreamRelay:
    """Relays an OpenAI chat-completions SSE stream chunk by chunk, unchanged, while capturing
    what the log needs. ``feed`` returns the bytes to send on (whole blocks only, as received,
    keep-alive comments included); with ``strip_usage`` the final usage-only chunk (empty
    ``choices``, with ``usage``) is captured but not relayed (for clients that did not ask for
    usage). Data that is not a JSON chunk is relayed and ignored, never an error. The clock
    for ``ttft_ms`` starts when the relay is built.

    An event longer than ``max_event_bytes`` (default 16 MiB) is not relayed: it and the rest
    of the stream are dropped (``feed`` and ``finish`` return what came before it, then
    nothing) and ``oversized`` turns true, for the caller to end the stream with an error.

    The capture keeps at most ``max_capture_bytes`` (default 256 KiB) of content and tool-call
    arguments together, cut at a character boundary; the rest is relayed but not kept, and
    ``truncated`` turns true. Finish reason, usage and the other fields are always captured."""

    def __new__(
        cls,
        strip_usage: bool = False,
        max_event_bytes: int = ...,  # 16 MiB
        max_capture_bytes: int = ...,  # 256 KiB
    ) -> Self:
        """Raises ValueError for a ``max_event_bytes`` below 1 or a negative
        ``max_capture_bytes``."""

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes:
        """The bytes still pending at end of stream (a last event without its blank line)."""

    @property
    def content(self) -> str: ...  # choice 0's assembled content
    @property
    def finish_reason(self) -> str | None: ...  # choice 0's last non-null one
    @property
    def usage(self) -> StreamUsage | None: ...  # the last usage object seen
    @property
    def tool_calls(self) -> list[ToolCall]: ...  # choice 0's, by index, arguments assembled
    @property
    def model(self) -> str | None: ...  # the first non-empty one
    @property
    def response_id(self) -> str | None: ...  # the first non-empty chunk id
    @property
    def ttft_ms(self) -> float | None: ...  # to the first chunk carrying content or a tool call
    @property
    def chunk_count(self) -> int: ...  # JSON chunks seen ([DONE] and non-JSON data excluded)
    @property
    def done(self) -> bool: ...  # "data: [DONE]" was seen
    @property
    def error(self) -> str | None: ...  # the message of an in-stream {"error": ...} event
    @property
    def completed(self) -> bool: ...  # [DONE] or a finish reason was seen
    @property
    def max_event_bytes(self) -> int: ...
    @property
    def max_capture_bytes(self) -> int: ...
    @property
    def truncated(self) -> bool: ...  # text past max_capture_bytes was left out of the capture
    @property
    def oversized(self) -> bool: ...  # an event outgrew max_event_bytes; the client was not told

@final
class RelayCapture:
    """A stream translator: what a stream relayed on the upstream client's thread
    (``NativeUpstream.relay``) captured so far, read at any time, final once the call is
    over; or, made by ``stream_translator``, one that Python feeds itself.

    The source "openai" relays an OpenAI chat stream as ``OpenAIStreamRelay`` does;
    "anthropic" translates Anthropic Messages events and "gemini" ``streamGenerateContent``
    events into OpenAI ``chat.completion.chunk`` events, as the Python translators write them
    (``providers/anthropic/stream.py``, ``providers/gemini/stream.py``). With a
    ``messages_model`` the OpenAI chunks are written on as Anthropic Messages events
    (``providers/bridge/stream.py``), ``message_start`` going out with the first bytes; a
    stream that ends unfinished is left for the caller to end with its error."""

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes:
        """The clean end of the provider's stream: what it adds (finish chunks, [DONE], or
        the error event of a stream cut short)."""

    @property
    def content(self) -> str: ...  # choice 0's text, capped at max_capture_bytes
    @property
    def finish_reason(self) -> str | None: ...  # choice 0's, in OpenAI's terms
    @property
    def usage(self) -> StreamUsage | None: ...
    @property
    def ttft_ms(self) -> float | None: ...
    @property
    def chunk_count(self) -> int: ...  # chunks (Gemini: written; Anthropic: events read)
    @property
    def done(self) -> bool: ...
    @property
    def completed(self) -> bool: ...  # the stream ended as its provider ends one
    @property
    def error(self) -> str | None: ...  # the provider's own error, relayed as an event
    @property
    def error_type(self) -> str | None: ...  # its kind (Anthropic type, Gemini status)
    @property
    def error_code(self) -> int: ...  # its code (Gemini), else 0
    @property
    def error_before_output(self) -> bool: ...  # it came first: raise it, send nothing
    @property
    def max_event_bytes(self) -> int: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def oversized(self) -> bool: ...

def stream_translator(
    source: str,
    *,
    strip_usage: bool = False,
    model: str = "",
    include_usage: bool = False,
    json_tool: str | None = None,
    fallback_id: str = "",
    messages_model: str | None = None,
    max_event_bytes: int = ...,  # 16 MiB
    max_capture_bytes: int = ...,  # 256 KiB
) -> RelayCapture:
    """A translator as ``NativeUpstream.relay`` builds one (see ``RelayCapture``), for Python
    to feed. Raises ValueError for an unknown ``source`` or a bad limit."""

# --- jsonl ------------------------------------------------------------------------------------

@final
class JsonlWriter:
    """Appends one JSON document per line to ``path`` (``<name>.jsonl``), creating its parent
    directories. When a write would take a non-empty file past ``max_bytes`` it rotates:
    ``.jsonl.1`` becomes ``.jsonl.2`` (the old ``.jsonl.2`` is dropped), ``.jsonl`` becomes
    ``.jsonl.1``, writing goes on in a fresh ``.jsonl`` (``generations`` counts the files
    kept, the live one included; a batch larger than ``max_bytes`` goes whole into a fresh
    file). Writers of the same path in one process share one file handle and lock. Each write
    reaches the OS before returning; a torn last line found at open is sealed with a newline.
    A reader takes rotated generations only, never the live file: ``hand_over`` rotates early
    once it took ``.jsonl.1``. Writes release the GIL above 64 KiB; the other methods that
    touch the disk always do. Raises OSError on I/O errors."""

    path: str  # absolute
    max_bytes: int
    generations: int

    def __new__(
        cls,
        path: str | os.PathLike[str],
        max_bytes: int = ...,  # 100 MiB
        generations: int = ...,  # 3
    ) -> Self:
        """Raises ValueError (InvalidField) for ``max_bytes`` or ``generations`` below 1."""

    def write(self, record: bytes) -> int:
        """One record; a trailing newline is added. Returns how many older records rotation
        dropped to make room. Raises ValueError (InvalidField, ``param`` ``"record"``) if it
        holds a newline or is empty."""

    def write_many(self, records: Sequence[bytes]) -> int:
        """Several records in one locked append; returns the records rotation dropped. If
        any is refused (``param`` ``"records.<i>"``), none is written."""

    def hand_over(self) -> bool:
        """When ``.jsonl.1`` does not exist and the live file holds records, rotates now
        (``.jsonl`` becomes ``.jsonl.1``) and returns True. First notices a live file deleted
        or renamed by hand (a fresh one is started at the next write)."""

    def flush(self) -> None: ...
    def sync(self) -> None:
        """Force what was written to disk (fsync)."""

    def close(self) -> None:
        """Release the file handle (shared by all writers of the path); a later write
        reopens it."""

    def files(self) -> list[str]:
        """Existing generations, oldest first (replay order)."""

@final
class JsonlReader:
    """Reads records back for replay: yields each complete line (without its newline) as
    bytes, in batches of up to ``batch_size``; blank lines are passed over; a torn last line
    (a crash mid-write, or a write in progress) is skipped and counted in ``skipped``.
    Reading starts at byte ``offset`` (a ``position`` stored earlier); ``position`` is the
    offset just past the last complete line read. Raises OSError if the file cannot be read,
    ValueError for a ``batch_size`` below 1 or a negative ``offset``."""

    skipped: int
    position: int

    def __new__(
        cls,
        path: str | os.PathLike[str],
        batch_size: int = ...,
        offset: int = 0,  # 1000
    ) -> Self: ...
    def __iter__(self) -> Iterator[list[bytes]]: ...
    def __next__(self) -> list[bytes]: ...

# --- upstream ---------------------------------------------------------------------------------

@final
class NativeUpstream:
    """One worker's HTTP client to its providers (rust/upstream): hyper's keep-alive pools on
    one tokio thread, HTTPS through rustls (system roots), HTTP/2 where offered through ALPN,
    ``accept-encoding: identity`` on every request (an encoded answer fails as broken).

    Each call returns its number at once; its outcome comes back through ``drain``, which
    the event loop calls when ``fileno()`` turns readable (one wake-up byte per drain; the
    tokio thread never takes the GIL). Build it inside the worker process (a thread does not
    survive a fork) and ``close`` it when the worker stops.

    Drained events are ``(call, kind, value)``: ``ANSWER`` ``(status, headers, body)`` ends a
    fetch; a stream sends ``HEAD`` ``(status, headers)``, ``CHUNK`` bytes as they arrive, then
    ``END`` (None); ``ERROR`` (an ``UpstreamError`` or ``UpstreamTimeout`` instance) ends
    either. Headers are ``[(name, value)]`` with lower-case names. A stream stops reading from
    its provider while more than ``window_bytes`` of its chunks are drained but not reported
    ``consumed``.

    A relayed stream (``relay``) is read and relayed on the tokio thread: ``HEAD`` (or
    ``ANSWER`` for a status other than 200), then ``READY`` (None) whenever its outbox fills
    from empty (``take`` empties it; the window counts what waits there), then ``END`` or
    ``ERROR``. Once ``attach``ed, ``drain`` writes the outbox to the transport itself and
    lists no READY for it, until its budget is spent (``READY`` with the bytes it sent) or the
    transport refuses bytes (``GONE``, None)."""

    ANSWER: int
    HEAD: int
    CHUNK: int
    END: int
    ERROR: int
    READY: int
    GONE: int

    def __new__(
        cls,
        max_connections: int = 256,
        window_bytes: int = 262_144,
        idle_timeout: float = 30.0,
        extra_roots_pem: bytes | None = None,
        max_answer_bytes: int | None = None,
    ) -> Self:
        """``max_connections`` caps the calls in flight (others wait inside their time
        limits) and the idle connections kept per host; ``extra_roots_pem`` adds trusted
        certificates to the system's. A whole answer longer than ``max_answer_bytes`` fails
        with an ``UpstreamError`` whose ``too_large`` is True (its connection closed).
        Raises InvalidField for a ``max_connections`` of 0 or
        a PEM without certificates, ValueError for a negative ``idle_timeout``, OSError if
        the thread cannot start."""

    def fileno(self) -> int: ...
    def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        connect_timeout: float,
        first_byte_timeout: float | None = None,
        total_timeout: float | None = None,
        *,
        stream: bool = False,
    ) -> int:
        """Starts a POST whose whole answer comes as one ANSWER event or, with ``stream``, is
        relayed as HEAD, CHUNK..., END. ``first_byte_timeout`` bounds the wait for status and
        headers, ``total_timeout`` the whole call, both from now. Raises InvalidField
        (``param`` "url" or the header name; a value is never quoted) for a URL that is not
        absolute http(s) or a header that cannot be sent, ValueError for a negative or NaN
        time limit."""

    def relay(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        connect_timeout: float,
        first_byte_timeout: float | None,
        total_timeout: float | None,
        *,
        first_event_timeout: float | None,
        idle_timeout: float | None,
        strip_usage: bool = False,
        max_event_bytes: int = ...,  # 16 MiB
        max_capture_bytes: int = ...,  # 256 KiB
        source: str = "openai",
        model: str = "",
        include_usage: bool = False,
        json_tool: str | None = None,
        fallback_id: str = "",
        messages_model: str | None = None,
    ) -> tuple[int, RelayCapture]:
        """Starts a chat stream relayed on the tokio thread, translated as
        ``stream_translator`` with the same arguments would. Its first bytes for the client
        must come within ``first_event_timeout`` of now, and no later read may wait longer
        than ``idle_timeout`` (both fail as ``UpstreamTimeout`` with phase "first_byte").
        Raises as ``post`` does."""

    def take(self, call: int) -> bytes:
        """The bytes waiting in a relayed stream's outbox, taken off it (b"" if none)."""

    def attach(self, call: int, transport: Any, budget: int) -> tuple[int, int]:
        """``drain`` writes the relayed stream's bytes to ``transport.send_bytes`` from now
        on (what waits is written at once) until ``budget`` bytes went. ``(0, 0)`` when
        attached, ``(READY, sent)`` when the budget went at once, ``(GONE, 0)`` when the
        transport refused the bytes."""

    def detach(self, call: int) -> bool: ...
    def release(self, call: int) -> None:
        """Forgets a relayed stream's outbox and transport (after its end, or to drop it)."""

    def consumed(self, call: int, size: int) -> None: ...
    def cancel(self, call: int) -> bool:
        """Aborts the call, closing its connection; no more events come for it. False if it
        was already over."""

    def drain(self) -> list[tuple[int, int, Any]]: ...
    @property
    def in_flight(self) -> int: ...  # calls started and not yet over nor cancelled
    def close(self) -> None:
        """Stops the thread: calls in flight are dropped with their connections; later calls
        fail at once with UpstreamError. Releases the GIL while it waits."""

# --- otlp -------------------------------------------------------------------------------------

@final
class ExportRow:
    """A request's row for the trace export, written by its ``Trace`` (``export_row``): the
    strings and numbers the spans carry, read by the encoder without parsing."""

    @property
    def spans(self) -> int:
        """How many spans the row holds (the root among them)."""

def otlp_export_request(
    rows: Sequence[ExportRow | bytes], resource: bytes, scope: bytes
) -> tuple[bytes, int, int]:
    """``(body, spans, skipped)``: one OTLP ``ExportTraceServiceRequest`` (protobuf) holding
    the spans of ``rows`` (each an ``ExportRow``, or a request row as the log writes it, a
    JSON line, spans inside) under ``resource`` and ``scope`` (their messages' encoded
    bytes); the spans it holds, and the rows skipped as malformed (not that JSON, or an id
    that is not W3C hex). Ids are the log's; the root span is the SERVER span named
    ``{gen_ai.operation.name} {gen_ai.request.model}`` with the GenAI, HTTP and ``floopy.*``
    attributes, each ``provider_attempt`` a CLIENT span. Runs with the GIL released; a row
    of another type raises TypeError."""

# --- trace ------------------------------------------------------------------------------------

_Attribute = str | int | float | bool | None

@final
class Span:
    """One span of a request's trace: a stage, a provider attempt or a cache tier."""

    name: str
    span_id: str
    parent_id: str | None  # None: a child of the request's root span (a stage)
    start: float  # time.perf_counter() when it opened
    attributes: dict[str, _Attribute]

    @property
    def duration_ms(self) -> float | None:
        """None while open."""

    @property
    def status(self) -> str:
        """One of "ok", "error" and "cancelled"."""

    def __new__(
        cls,
        name: str,
        span_id: str,
        parent_id: str | None,
        start: float,
        duration_ms: float | None = None,
        status: str | None = None,
        attributes: dict[str, _Attribute] | None = None,
    ) -> Self: ...
    def set(self, **attributes: _Attribute) -> None:
        """Adds (or replaces) attributes."""

    def fail(self, exc: BaseException) -> None:
        """Marks the span failed with the error's code (a FloopyError) or its class name and
        its message's first 500 characters; an asyncio.CancelledError marks it cancelled."""

@final
class Trace:
    """The spans of one request, in the order they opened. Span ids are one random 48-bit
    prefix (Python's ``random``) and a counter; the root span is number 1."""

    root_id: str
    spans: list[Span]

    def __new__(cls) -> Self: ...
    def start(self, name: str, parent: Span | None, attributes: dict[str, _Attribute]) -> Span:
        """Opens a span: a child of ``parent``, else of the innermost open span, else of the
        root."""

    def end(self, span: Span, stages: dict[str, float] | None = None) -> float | None:
        """Closes ``span`` and returns its duration; None if it was closed already. The
        duration of a child of the root (a stage) is added to ``stages`` under its name."""

    def close_open(self, status: str) -> None:
        """Ends the spans a request left open (it was cancelled or failed inside them)."""

    def span_rows(
        self,
        parent_id: str,
        started_at: float,
        duration_ms: float,
        status: str,
        attributes: dict[str, str],
        offset: float,
        clean: Callable[[str], str],
        export: bool = False,
    ) -> bytes:
        """The log's ``span_rows`` as JSON: the root span (the request, these fields) then
        every span in the order they opened, each an array (span_id, parent_id, name,
        start_time, duration_ms, status, attributes). A span's start (``perf_counter`` time)
        plus ``offset`` is its Unix time; an open span's duration is 0; a span without a
        parent named is the root's child. Attribute values are written as text (bools as
        true/false, None left out, else ``str()``), an ``error.message`` through ``clean``.
        With ``export``, the same spans are also written for the trace export."""

    def export_row(self, record: Any) -> ExportRow:
        """The request's row for the trace export: the spans ``span_rows(..., export=True)``
        wrote (ValueError if it did not) and the fields of ``record`` (a ``RequestRecord``)
        the export reads."""

    def stage_start(self, name: str) -> float | None:
        """When the first child of the root named ``name`` (a stage) opened; None if none."""

    def total_ms(self, first: str, second: str | None = None) -> float:
        """The summed duration of the spans named ``first`` or ``second`` (open ones: 0)."""

    def any_status(self, status: str) -> bool:
        """Whether any span has ``status``."""

# --- scrub scan -------------------------------------------------------------------------------

@final
class Needles:
    """The literals of a set of scrubbers, searched for in one pass (Aho-Corasick).
    ``quiet(text)`` is True when no pattern occurs in ``text`` and it holds fewer ASCII digits
    than ``digit_limit`` (0: digits are not counted): no scrubber built on those literals
    can change it. An empty pattern raises InvalidField naming it."""

    def __new__(cls, patterns: Sequence[str], digit_limit: int = 0) -> Self: ...
    def quiet(self, text: str) -> bool: ...
