"""Runs wrk against one URL and reads its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

_LUA = """\
wrk.method = "POST"
wrk.path = "{path}"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("{body_file}", "rb")
wrk.body = file:read("*a")
file:close()
"""

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def write_script(
    directory: Path, name: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> Path:
    """A Lua script that POSTs `body` to `path` with `headers`; the body is read from a file,
    never quoted."""
    body_file = directory / f"{name}.json"
    body_file.write_bytes(body)
    script = directory / f"{name}.lua"
    lua = _LUA.format(path=path, body_file=body_file)
    for header, value in (headers or {}).items():
        lua += f"wrk.headers[{_lua_string(header)}] = {_lua_string(value)}\n"
    script.write_text(lua)
    return script


def _lua_string(text: str) -> str:
    if any(c in text for c in '"\\\n\r'):
        raise ValueError(f"header text must not need escaping: {text!r}")
    return f'"{text}"'


def run(url: str, script: Path, connections: int, seconds: int) -> WrkResult:
    threads = min(2, connections)  # wrk refuses more threads than connections
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse(done.stdout)


def parse(report: str) -> WrkResult:
    rps, total = _RPS.search(report), _TOTAL.search(report)
    if rps is None or total is None:
        raise ValueError(f"unreadable wrk report:\n{report}")
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(report)}
    non_2xx = _NON_2XX.search(report)
    errors = _SOCKET_ERRORS.search(report)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        p50_ms=latency["50"],
        p75_ms=latency["75"],
        p90_ms=latency["90"],
        p99_ms=latency["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )
