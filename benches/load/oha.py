"""oha, the open-loop load generator: requests at a fixed rate whatever the server does, with
latency measured from when each request was due (``--latency-correction``), so a server that
stalls is charged for the requests that waited behind the stall (no coordinated omission).

Built from crates.io by ``cargo install`` into ``benches/load/.tools`` (gitignored), pinned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
BINARY = TOOLS / "bin" / "oha"
VERSION = "1.16.0"
DEADLINE_ABORT = "aborted due to deadline"  # in flight when the run ended: not a failure


def ensure_installed() -> str:
    if not BINARY.exists() or version() != VERSION:
        if shutil.which("cargo") is None:
            raise SystemExit(f"building oha {VERSION} needs cargo (https://rustup.rs)")
        print(f"building oha {VERSION} into {TOOLS.relative_to(HERE.parents[1])} (minutes)")
        cargo = ["cargo", "install", "--quiet", "--locked", "--root", str(TOOLS)]
        subprocess.run([*cargo, "oha", "--version", VERSION, "--force"], check=True)
    return version()


def version() -> str:
    done = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True)
    return done.stdout.split()[-1] if done.returncode == 0 and done.stdout else "unknown"


@dataclass(frozen=True)
class OhaResult:
    offered_rps: float | None  # None: closed loop
    rps: float  # completed per second
    requests: int  # answered (any status)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ttfb_p50_ms: float  # first body byte, from when the request was sent
    ttfb_p90_ms: float
    ttfb_p99_ms: float
    non_2xx: int
    errors: int  # connection errors, timeouts
    aborted_at_end: int  # in flight when the run's time was up
    bytes_per_response: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    url: str,
    body: Path,
    headers: list[str],
    *,
    seconds: float,
    connections: int,
    rate: float | None,
    threads: int = 1,
    timeout: float = 30.0,
) -> OhaResult:
    """One run: at ``rate`` requests per second (open loop), or as fast as ``connections``
    allow (closed loop) when ``rate`` is None."""
    args = [str(BINARY), "--no-tui", "--output-format", "json", "-z", f"{seconds}s"]
    args += ["-c", str(connections), "--worker-threads", str(threads), "-t", f"{timeout}s"]
    args += ["-m", "POST", "-T", "application/json", "-D", str(body)]
    for header in headers:
        args += ["-H", header]
    if rate is not None:
        args += ["-q", str(rate), "--latency-correction"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + timeout + 60, check=True
    )
    return parse(done.stdout, rate)


def parse(report: str, rate: float | None) -> OhaResult:
    data = json.loads(report)
    latency = data.get("latencyPercentiles") or {}
    first_byte = data.get("firstBytePercentiles") or {}
    statuses = {int(code): n for code, n in (data.get("statusCodeDistribution") or {}).items()}
    failures = data.get("errorDistribution") or {}
    aborted = sum(n for reason, n in failures.items() if DEADLINE_ABORT in reason)
    summary = data["summary"]
    return OhaResult(
        offered_rps=rate,
        rps=float(summary.get("requestsPerSec") or 0.0),
        requests=sum(statuses.values()),
        p50_ms=_ms(latency.get("p50")),
        p90_ms=_ms(latency.get("p90")),
        p99_ms=_ms(latency.get("p99")),
        max_ms=_ms(summary.get("slowest")),
        ttfb_p50_ms=_ms(first_byte.get("p50")),
        ttfb_p90_ms=_ms(first_byte.get("p90")),
        ttfb_p99_ms=_ms(first_byte.get("p99")),
        non_2xx=sum(n for code, n in statuses.items() if not 200 <= code < 300),
        errors=sum(failures.values()) - aborted,
        aborted_at_end=aborted,
        bytes_per_response=float(summary.get("sizePerRequest") or 0.0),
    )


def _ms(seconds: float | None) -> float:
    return float("nan") if seconds is None else float(seconds) * 1000.0
