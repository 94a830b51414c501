"""How far a stream may run ahead of its client (``STREAM_BUFFER_BYTES``), and how long it
waits for a client that receives nothing (``STREAM_STALL_TIMEOUT``).

granian's RSGI ``send_bytes`` queues without limit and says nothing about the socket: awaiting
it returns at once, whether the client reads or not. Left alone, the relay would read the
provider as fast as it answers, and the worker would hold whatever the client has not taken
yet: the whole answer, for a client that reads nothing. So the drain signal comes from the
kernel instead: Linux counts, per TCP connection, the bytes the peer has acknowledged
(``tcpi_bytes_acked`` in ``TCP_INFO``). The relay compares what it sent with that count and
stops reading the provider while the client is too far behind; the native upstream client
then stops reading too, once its own window is full, and the provider's writes wait.

The socket belongs to granian. It is found once, by the connection's two addresses among the
worker's descriptors, and only for a stream that grows past half the buffer: most streams
never do, and pay nothing. The count covers the whole connection (earlier answers on it,
headers, chunk framing), so it is read relative to the moment the socket was found, assuming
that everything sent until then had been received: at most half the buffer is sent before
the socket is found, and the stream then waits whenever it is more than half the buffer
ahead, so what the gateway holds for one client stays within ``STREAM_BUFFER_BYTES`` (and one
piece of the stream).

A stream relayed natively (``STREAM_RELAY = "native"``) writes itself to the server with no
Python step per chunk, but only ``room`` bytes: then it is paced here like any other, the
bytes it wrote counted at once (they may pass ``room`` by the one batch that crossed it).

Where there is no such count (not Linux, a Unix socket, a socket not found) streams are not
held back, as before. Several streams on one connection (HTTP/2) share one count, which only
makes the bound looser.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import sys

log = logging.getLogger("floopy")

# struct tcp_info: tcpi_bytes_acked, a u64 at this offset since Linux 4.1.
_BYTES_ACKED = slice(120, 128)
_TCP_INFO_SIZE = 256

# Polling the count: at once while the client keeps up, backing off while it does not.
_POLL_FIRST, _POLL_MOST = 0.001, 0.05

Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


class ClientStalled(Exception):
    """The client received nothing for the whole stall timeout while the stream waited."""


class StreamPace:
    """One stream's account with its client: bytes handed to the server, and, once there
    are enough of them to matter, the client's progress. ``sent`` waits while the client is
    too far behind; ``close`` releases the socket handle."""

    def __init__(self, buffer_bytes: int, stall_timeout: float, client: str, server: str) -> None:
        self._ahead = max(1, buffer_bytes // 2)
        self._stall_timeout = stall_timeout
        self._client, self._server = client, server
        self._sent = 0
        self._looked = False
        self._socket: socket.socket | None = None
        self._base_sent = self._base_acked = 0

    @property
    def room(self) -> int:
        """Bytes that may still be sent without looking at the client at all."""
        return max(0, self._ahead - self._sent)

    async def sent(self, size: int) -> None:
        """Counts ``size`` more bytes handed to the server; returns once the client is
        within the buffer. Raises ClientStalled after the stall timeout without progress."""
        before, self._sent = self._sent, self._sent + size
        if self._sent <= self._ahead:
            return
        if not self._looked:
            self._find(before)
        if self._socket is not None:
            await self._wait_for_client()

    def drop(self) -> None:
        """Closes the client's connection under the server (a stalled client): its queued
        bytes are freed and the server sees the connection end."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _find(self, received: int) -> None:
        """Looks the connection up, counting the client's progress from here on, as if it
        had already received the first ``received`` bytes of the stream."""
        self._looked = True
        found = find_connection(self._client, self._server)
        acked = None if found is None else bytes_acked(found)
        if found is None or acked is None:
            if found is not None:
                found.close()
            log.debug("no drain signal for %s: the stream is not held back", self._client)
            return
        self._socket, self._base_sent, self._base_acked = found, received, acked

    def _behind(self) -> int | None:
        """Bytes sent that the client has not acknowledged yet (by the conservative count
        described above); None once the count cannot be read."""
        assert self._socket is not None
        acked = bytes_acked(self._socket)
        if acked is None:
            return None
        return (self._sent - self._base_sent) - (acked - self._base_acked)

    async def _wait_for_client(self) -> None:
        behind = self._behind()
        if behind is None or behind <= self._ahead:
            return
        loop = asyncio.get_running_loop()
        progress_at, pause = loop.time(), _POLL_FIRST
        while behind > self._ahead:
            if loop.time() - progress_at >= self._stall_timeout:
                raise ClientStalled
            await asyncio.sleep(pause)
            now = self._behind()
            if now is None:
                return
            if now < behind:
                progress_at, pause = loop.time(), _POLL_FIRST
            else:
                pause = min(pause * 2, _POLL_MOST)
            behind = now


def bytes_acked(sock: socket.socket) -> int | None:
    """What the peer of a TCP socket has acknowledged so far; None where the kernel does not
    say (not Linux, not TCP, a kernel older than 4.1)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError):
        return None
    if len(info) < _BYTES_ACKED.stop:
        return None
    return int.from_bytes(info[_BYTES_ACKED], sys.byteorder)


def find_connection(client: str, server: str) -> socket.socket | None:
    """A handle (a duplicate descriptor) on this process's TCP connection from ``client`` to
    ``server`` (``host:port``, as the RSGI scope gives them); None if there is none."""
    peer, local = parse_address(client), parse_address(server)
    if peer is None or local is None or not sys.platform.startswith("linux"):
        return None
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        sock = _socket_of(int(name))
        if sock is None:
            continue
        if _connects(sock, peer, local[1]):
            return sock
        sock.close()
    return None


def parse_address(text: str) -> Address | None:
    """``host:port`` (IPv6 hosts in brackets) as an address and a port; None otherwise."""
    host, _, port = text.rpartition(":")
    try:
        return _host(host.strip("[]")), int(port)
    except ValueError:
        return None


def _host(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _socket_of(fd: int) -> socket.socket | None:
    try:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
            return None
        copy = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        return None


def _connects(sock: socket.socket, peer: Address, local_port: int) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    try:
        remote, local = sock.getpeername(), sock.getsockname()
        return (_host(remote[0]), remote[1]) == peer and local[1] == local_port
    except (OSError, ValueError):
        return False
