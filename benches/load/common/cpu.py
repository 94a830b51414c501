"""How much CPU the rest of the machine used while we measured.

The load average counts the bench's own processes (wrk, nginx, granian) as well, so during a
run it says nothing about interference. The machine's busy time from /proc/stat minus the busy
time of this process's tree does: it is what other work took from the two cores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU-seconds all cores spent busy since boot (idle and iowait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def tree_busy(root: int) -> float:
    """CPU-seconds of `root` and its living descendants, plus the children it already reaped."""
    parents: dict[int, int] = {}
    busy: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        busy[pid] = (utime + stime + (cutime + cstime if pid == root else 0)) / _TICK
    total = 0.0
    for pid, own in busy.items():
        ancestor = pid
        for _ in range(64):  # bounded walk up the tree
            if ancestor == root:
                total += own
                break
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                break
    return total


class ForeignCpu:
    """Cores used by processes outside this tree between `start()` and `cores()`."""

    def __init__(self) -> None:
        self._root = os.getpid()
        self.start()

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = machine_busy()
        self._ours0 = tree_busy(self._root)

    def cores(self) -> float:
        elapsed = time.monotonic() - self._t0
        foreign = (machine_busy() - self._machine0) - (tree_busy(self._root) - self._ours0)
        return max(0.0, foreign / elapsed) if elapsed > 0 else 0.0
