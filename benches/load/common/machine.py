"""The machine a bench ran on, and waiting until nothing else uses it.

On a 2-core machine shared with builds and test runs, a measurement taken while someone
compiles says nothing about the code; every load bench waits for quiet first and records how
quiet it was.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from common.cpu import ForeignCpu


def load_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def foreign_cores(seconds: float = 3.0) -> float:
    """Cores that processes outside this bench's tree used over the next ``seconds``."""
    sample = ForeignCpu()
    time.sleep(seconds)
    return sample.cores()


class Quiet:
    """Waits for other work on the machine to settle, from one bounded budget of seconds.

    Before the first run the 1-minute load decides. Later it cannot, as it still counts our
    own last run, so then the CPU that processes outside this tree use over a few seconds does.
    """

    def __init__(self, max_load: float, budget: float, poll: float = 15.0) -> None:
        self.max_load = max_load
        self.budget = budget
        self.poll = poll
        self.waited = 0.0
        self._first = True

    def wait(self) -> float:
        measure = load_1m if self._first else foreign_cores
        self._first = False
        while (busy := measure()) >= self.max_load and self.waited < self.budget:
            print(f"{measure.__name__} {busy:.2f} >= {self.max_load}: waiting", flush=True)
            time.sleep(self.poll)
            self.waited += self.poll
        if busy >= self.max_load:
            print(
                f"warning: measuring at {measure.__name__} {busy:.2f} (waited {self.waited:.0f}s)"
            )
        return busy


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1).strip() if model else platform.processor(),
        "ram_gib": round(int(mem_kib.group(1)) / 1024**2, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": _os_name(),
    }


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    name = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', text, re.MULTILINE)
    return name.group(1) if name else platform.system()


def tool_version(args: list[str]) -> str:
    """The first line a tool prints about itself (stdout or stderr), or "unknown"."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
