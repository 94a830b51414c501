"""Resident memory of a server's process tree, from /proc: now, at its peak, and over time.

A gateway may be several processes (granian's main process and its worker); the figures are
sums over the tree, so servers with different process models compare as wholes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

_KIB = re.compile(r"^(VmRSS|VmHWM):\s+(\d+) kB$", re.MULTILINE)


def tree_pids(root: int) -> list[int]:
    """``root`` and its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo and len(found) < 1024:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _status_kib(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {name: int(kib) for name, kib in _KIB.findall(text)}


def rss_mib(pid: int) -> float:
    """Resident memory of one process now (0 if it is gone)."""
    return _status_kib(pid).get("VmRSS", 0) / 1024


def tree_rss_mib(root: int) -> float:
    """Resident memory of the tree now."""
    return sum(_status_kib(pid).get("VmRSS", 0) for pid in tree_pids(root)) / 1024


def tree_peak_rss_mib(root: int) -> float:
    """The sum of each living process's own peak resident memory (the kernel's VmHWM)."""
    return sum(_status_kib(pid).get("VmHWM", 0) for pid in tree_pids(root)) / 1024


class RssSampler:
    """Samples a tree's resident memory every ``interval`` seconds on a thread of its own,
    each of its ``parts`` (label -> pid, asked again at every sample, so a restarted process
    is followed) on its own, and whatever ``also`` returns at the same moments (a server's own
    gauges, say)."""

    def __init__(
        self,
        root: int,
        interval: float,
        also: Callable[[], dict[str, float]] | None = None,
        parts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.root = root
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self.parts: dict[str, list[tuple[float, float]]] = {}
        self.also: list[dict[str, float]] = []
        self._also = also
        self._parts = parts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            now = time.monotonic() - self._t0
            self.samples.append((now, tree_rss_mib(self.root)))
            for label, pid in (self._parts() if self._parts is not None else {}).items():
                self.parts.setdefault(label, []).append((now, rss_mib(pid)))
            if self._also is not None:
                try:
                    self.also.append(self._also())
                except OSError:  # a busy server may not answer in time: a gap, not a failure
                    self.also.append({})
            if self._stop.wait(self.interval):
                return
