"""Type stubs of ``floopy._native``, the Rust hot path (``rust/py`` over ``rust/core``).

The boundary is narrow: bytes in, small frozen objects out, one call per stage per request.
Configured objects (a parser with its limits, a keyer, a writer) are built once at start-up.
"""

from collections.abc import Iterable, Iterator, Sequence

__version__: str

# --- errors (rust/py/src/errors.rs maps every core error here, once) -------------------------

class NativeError(ValueError):
    """Base of every error the native core raises. ``param`` names the offending field or
    header (``None`` when the input as a whole is wrong); ``str(e)`` is a sentence for users."""

    param: str | None

class PayloadTooLarge(NativeError):
    """The body exceeds the parser's ``max_body_bytes``."""

class InvalidJson(NativeError):
    """The body is not valid JSON, or nests deeper than ``max_depth``."""

class InvalidField(NativeError):
    """A field of the body has a wrong type or value (``param`` is its dotted path,
    e.g. ``messages.2.role``)."""

class InvalidHeader(NativeError):
    """A header value is too long, holds control characters or is not UTF-8, or a typed
    header (a boolean, a number) does not parse. ``param`` is the header name, lower-case."""

# --- parse ------------------------------------------------------------------------------------

class ChatRequest:
    """The facts of a chat-completions body that the pipeline needs; frozen."""

    model: str
    stream: bool
    include_usage: bool  # stream_options.include_usage
    message_count: int
    last_user_text: str | None  # text parts of the last user message joined by "\n"
    user: str | None
    has_tools: bool  # a non-empty ``tools`` (or legacy ``functions``) array

class RequestParser:
    """Parses chat-completions bodies. Build once with its limits, call per request."""

    max_body_bytes: int
    max_depth: int

    def __init__(self, max_body_bytes: int = 10_485_760, max_depth: int = 64) -> None: ...
    def parse(self, body: bytes) -> ChatRequest:
        """Raises PayloadTooLarge, InvalidJson or InvalidField (``model`` missing or not a
        string, ``messages`` missing, empty or not an array of objects with a string
        ``role``, ``stream`` not a boolean, ...). Releases the GIL for large bodies."""

# --- headers ----------------------------------------------------------------------------------

class FloopyHeaders:
    """Every request header of DESIGN section 4 the gateway reads; frozen. Names are
    case-insensitive and both ``floopy-*`` and ``x-floopy-*`` spellings are read."""

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
    cache_enabled: bool | None  # None when the header is absent
    cache_advanced: bool
    cache_seed: str | None
    cache_bucket_max_size: int | None
    cache_ignore_keys: list[str]
    cache_max_age: int | None  # from "cache-control: max-age=N"
    llm_security_enabled: bool | None
    user_agent: str | None
    forwarded_for: str | None  # first address of x-forwarded-for

class HeaderExtractor:
    max_value_len: int
    max_properties: int

    def __init__(self, max_value_len: int = 4096, max_properties: int = 64) -> None: ...
    def extract(self, headers: Iterable[tuple[str | bytes, str | bytes]]) -> FloopyHeaders:
        """Raises InvalidHeader. Headers the gateway does not read are ignored unchecked."""

# --- cache key --------------------------------------------------------------------------------

class CacheKeyer:
    """Exact-cache keys: xxh3-128 over the canonical form of a chat request (DESIGN section 6):
    keys sorted at every depth, no whitespace, integral floats written as integers, the
    ``excluded`` top-level fields and the per-request ``ignore_keys`` left out, prefixed by the
    tenant scope and the seed."""

    excluded: list[str]

    def __init__(self, excluded: Sequence[str] | None = None) -> None:
        """``None`` means the default: stream, stream_options, user, metadata, store."""

    def key(
        self,
        body: bytes,
        scope: str = "",
        seed: str | None = None,
        ignore_keys: Sequence[str] = (),
    ) -> str:
        """32 lower-case hex digits. Raises InvalidJson on a body that is not a JSON object."""

    def canonical(self, body: bytes, ignore_keys: Sequence[str] = ()) -> bytes:
        """The canonical bytes that ``key`` hashes (without scope and seed); for tests and
        debugging."""

# --- sse --------------------------------------------------------------------------------------

class SseEvent:
    event: str | None  # the "event:" name, None when absent
    data: str  # data lines joined by "\n"
    id: str | None
    raw: bytes  # the event's bytes exactly as received, blank-line terminator included

class SseParser:
    """Incremental text/event-stream parser: feed bytes in any pieces, get whole events.
    LF, CRLF and CR line ends, comments, multi-line data, event names, a UTF-8 BOM."""

    def __init__(self) -> None: ...
    def feed(self, chunk: bytes) -> list[SseEvent]: ...
    def finish(self) -> list[SseEvent]:
        """Flush an event left without its terminating blank line at end of stream."""

class StreamUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int

class ToolCall:
    index: int
    id: str | None
    name: str | None
    arguments: str

class OpenAIStreamRelay:
    """Relays an OpenAI chat-completions SSE stream chunk by chunk, unchanged, while capturing
    what the log needs. ``feed`` returns the bytes to send on (whole events only, as received);
    with ``strip_usage`` the final usage-only chunk is captured but not relayed (for clients
    that did not ask for usage). The clock for ``ttft_ms`` starts when the relay is built."""

    def __init__(self, strip_usage: bool = False) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    @property
    def content(self) -> str: ...  # choice 0's assembled content
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def usage(self) -> StreamUsage | None: ...
    @property
    def tool_calls(self) -> list[ToolCall]: ...  # choice 0's, arguments assembled
    @property
    def model(self) -> str | None: ...
    @property
    def response_id(self) -> str | None: ...
    @property
    def ttft_ms(self) -> float | None: ...  # to the first chunk carrying content or a tool call
    @property
    def chunk_count(self) -> int: ...
    @property
    def done(self) -> bool: ...  # "data: [DONE]" was seen
    @property
    def error(self) -> str | None: ...  # the message of an in-stream {"error": ...} event

# --- jsonl ------------------------------------------------------------------------------------

class JsonlWriter:
    """Appends one JSON document per line to ``path`` (``<name>.jsonl``). When a write would
    take the file past ``max_bytes`` it rotates: ``.jsonl.1`` becomes ``.jsonl.2`` (the old
    ``.jsonl.2`` is dropped), ``.jsonl`` becomes ``.jsonl.1``, writing goes on in a fresh
    ``.jsonl``. Writers of the same path in one process share one file handle and lock.
    Writes release the GIL."""

    path: str
    max_bytes: int
    generations: int

    def __init__(self, path: str, max_bytes: int = 104_857_600, generations: int = 3) -> None: ...
    def write(self, record: bytes) -> None:
        """One record; a trailing newline is added. Raises ValueError if it holds a newline."""

    def write_many(self, records: Sequence[bytes]) -> None:
        """Several records in one locked, buffered append."""

    def flush(self) -> None: ...
    def close(self) -> None: ...
    def files(self) -> list[str]:
        """Existing generations, oldest first (replay order)."""

class JsonlReader:
    """Reads records back for replay: yields each complete line as bytes; a torn last line
    (a crash mid-write) is skipped and counted in ``skipped``."""

    skipped: int

    def __init__(self, path: str, batch_size: int = 1000) -> None: ...
    def __iter__(self) -> Iterator[list[bytes]]: ...  # batches of up to batch_size records
