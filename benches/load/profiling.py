"""Sampling profiles of the gateway worker under load, with py-spy.

py-spy reads the worker's memory from outside (ptrace; root can), so the profiled process
runs unchanged. Two recordings under the same load: a flame graph (SVG) for people, and the
raw folded stacks, summarised here as the functions that hold the most samples, on their own
("self") and with what they call ("total").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_DIR = HERE / ".tools" / "py-spy"
BINARY = TARGET_DIR / "bin" / "py-spy"
VERSION = "0.4.3"


def ensure_installed() -> str:
    if not BINARY.exists():
        print(f"installing py-spy {VERSION} into {TARGET_DIR.relative_to(HERE.parents[1])}")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(TARGET_DIR)]
        subprocess.run([*pip, f"py-spy=={VERSION}"], check=True)
    done = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True)
    return done.stdout.split()[-1] if done.returncode == 0 else "unknown"


def record(pid: int, seconds: int, output: Path, fmt: str) -> subprocess.Popen[bytes]:
    """Starts a recording of ``pid``'s Python threads, idle ones left out; wait on it.

    Without pausing the process (``--nonblocking``), so it serves at its real speed, and
    without native frames: with them py-spy must pause it, and it counts threads waiting
    on a lock inside native code as busy. Run from the checkout's root with relative paths:
    the flame graph's title repeats the command line, which must not name this machine's
    directories."""
    root = HERE.parents[1]
    binary, out = os.path.relpath(BINARY, root), os.path.relpath(output, root)
    args = [binary, "record", "-p", str(pid), "-d", str(seconds), "-r", "100"]
    args += ["--nonblocking", "-f", fmt, "-o", out]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root)


def summarise(raw: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Share of samples per function: as the innermost frame (self) and anywhere on the
    stack (total). Lines of the folded format are ``frame;frame;... count``."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if samples == 0:
        return {"self": [], "total": []}
    return {
        "self": [(f, round(100 * n / samples, 1)) for f, n in own.most_common(top)],
        "total": [(f, round(100 * n / samples, 1)) for f, n in anywhere.most_common(top)],
    }


def _short(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``function (module.py)``: lines differ per
    call site, which would split one function's samples."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(Path(path).parts[-2:])})" if path else name
