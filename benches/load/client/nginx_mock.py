"""The upstream-client bench's provider: the load bench's nginx mock (``mock_provider``)
serving the recorded fixtures, with the stream at two paths.

nginx answers from memory in a few microseconds, so whatever a proxy in front of it adds is
the proxy's own cost. It runs from a temporary prefix (``common.nginx``).
"""

from __future__ import annotations

from pathlib import Path

from mock_provider import STREAM_PATH, NginxMock, pacing

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The same stream, trickled: nginx paces it so it arrives in many reads, as a real one does.
PACED_PATH = "/stream/paced/v1/chat/completions"


def fixture_mock(prefix: Path) -> NginxMock:
    """``with fixture_mock(prefix) as mock:`` serves the fixtures at ``mock.url``. Streaming
    requests go to paths of their own, so every proxy can pick its relay by path."""
    return NginxMock(
        prefix,
        completion=(FIXTURES / "chat_completion.json").read_bytes().strip(),
        stream=(FIXTURES / "chat_stream.sse").read_bytes(),
        streams={STREAM_PATH: "", PACED_PATH: pacing(320, "256k")},
    )
