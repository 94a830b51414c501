"""The stream pace against real loopback TCP connections of this process: the connection is
found by its addresses, the kernel's acknowledged count is the client's progress, a stream
waits while its client is behind and gives up on one that receives nothing."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator

import pytest

from floopy.pipeline.backpressure import (
    ClientStalled,
    StreamPace,
    bytes_acked,
    find_connection,
    parse_address,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux")

Pair = tuple[socket.socket, socket.socket, str, str]


@pytest.fixture
def pair() -> Iterator[Pair]:
    """(client side, server side, client address, server address) of one connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server_host, server_port = listener.getsockname()
        client = socket.create_connection((server_host, server_port))
        served, _ = listener.accept()
    host, port = client.getsockname()
    try:
        yield client, served, f"{host}:{port}", f"{server_host}:{server_port}"
    finally:
        client.close()
        served.close()


def test_addresses_parse_as_the_scope_writes_them() -> None:
    assert parse_address("127.0.0.1:8080") is not None
    parsed = parse_address("[::1]:443")
    assert parsed is not None and parsed[1] == 443 and str(parsed[0]) == "::1"
    mapped = parse_address("[::ffff:10.0.0.1]:5")
    assert mapped is not None and str(mapped[0]) == "10.0.0.1"
    for text in ("", "unix:/tmp/sock", "127.0.0.1", "host:port"):
        assert parse_address(text) is None


def test_the_connection_is_found_by_its_addresses(pair: Pair) -> None:
    client, served, client_address, server_address = pair
    found = find_connection(client_address, server_address)
    assert found is not None
    with found:
        assert found.getpeername() == client.getsockname()
        assert found.getsockname() == served.getsockname()
    assert find_connection("127.0.0.1:1", server_address) is None
    assert find_connection("unix", server_address) is None


def test_the_acknowledged_count_follows_what_the_client_received(pair: Pair) -> None:
    client, served, _, _ = pair
    before = bytes_acked(served)
    assert before is not None
    served.sendall(b"x" * 10_000)
    received = 0
    while received < 10_000:
        received += len(client.recv(65536))
    after = bytes_acked(served)
    assert after is not None and after - before == 10_000


def test_a_unix_socket_gives_no_count() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert bytes_acked(left) is None


def test_a_stream_waits_for_its_client_and_goes_on_once_it_received(pair: Pair) -> None:
    client, served, client_address, server_address = pair
    pace = StreamPace(1000, 30.0, client_address, server_address)

    async def deliver() -> None:
        await asyncio.sleep(0.05)
        served.sendall(b"y" * 5000)
        received = 0
        while received < 5000:
            received += len(client.recv(65536))

    async def scenario() -> None:
        await pace.sent(400)  # within half the buffer: no waiting, no look-up
        waiting = asyncio.ensure_future(pace.sent(5000))
        await asyncio.sleep(0.02)
        assert not waiting.done(), "5000 bytes ahead of the client: the stream waits"
        await deliver()
        await asyncio.wait_for(waiting, 10)

    try:
        asyncio.run(scenario())
    finally:
        pace.close()


def test_a_client_that_receives_nothing_stalls_the_stream(pair: Pair) -> None:
    client, _, client_address, server_address = pair
    pace = StreamPace(1000, 0.2, client_address, server_address)

    async def scenario() -> None:
        await pace.sent(400)  # within half the buffer: no waiting, no look-up
        with pytest.raises(ClientStalled):
            await pace.sent(5000)

    try:
        asyncio.run(scenario())
        pace.drop()
        client.settimeout(5)
        assert client.recv(10) == b"", "the connection was closed under the server"
    finally:
        pace.close()


def test_without_a_connection_to_watch_the_stream_is_not_held(pair: Pair) -> None:
    _, _, _, server_address = pair
    pace = StreamPace(1000, 0.01, "127.0.0.1:1", server_address)
    asyncio.run(pace.sent(1_000_000))
    pace.close()
