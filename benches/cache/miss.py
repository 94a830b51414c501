"""What a cache miss adds to a request, the semantic tier on: client-side latency of new
prompts through a gateway with the cache on, beside the same requests with it off.

One nginx mock provider (``benches/load/mock_provider.py``) answers at once; each gateway is
one worker, request log off, with the default cache settings (exact, semantic and advanced
tiers, the local embedder) and ``CACHE_ENABLED`` on or off, one gateway per case. The
cases, sent one request at a time over a kept-alive connection, interleaved request by
request (so that the machine's other work weighs on every case alike):

- ``off``: the cache off, a new prompt;
- ``miss, new scope``: the cache on, a new prompt whose scope (system prompt, model,
  parameters, numbers...) no cached entry has: here, a reference number of its own;
- ``miss, scope with entries``: the cache on, a new prompt without numbers under a system
  prompt whose scope holds ``--seed`` answers (stored first): the tier embeds and searches,
  and misses (the prompts differ in their content words).

``--baseline DIR`` adds the same two miss cases through a gateway running another commit's
``python/`` tree (``git archive COMMIT python | tar -x -C DIR``, with the native module
copied into ``DIR/python/floopy``).

    nice .venv/bin/python benches/cache/miss.py [--requests 300] [--seed 200] \
        [--baseline /tmp/before]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "load"))
import mock_provider as mock  # noqa: E402
import targets  # noqa: E402

RESULTS = HERE.parent / "results" / "cache_miss.json"
SYSTEM = "You answer questions about animals and colours."
ANIMALS = ["cats", "dogs", "owls", "foxes", "bees", "whales", "crows", "goats", "ducks", "seals"]
COLOURS = ["red", "green", "blue", "amber", "violet", "teal", "ochre", "white", "black", "grey"]
PLACES = ["forests", "deserts", "cities", "islands", "mountains", "rivers", "farms", "caves"]
VERBS = ["hide", "sleep", "hunt", "play", "travel", "sing", "build", "rest", "feed", "swim"]


def wordy(n: int) -> str:
    """A prompt without numbers, each ``n`` with other content words."""
    return (
        f"Why do {COLOURS[n % 10]} {ANIMALS[n // 10 % 10]} {VERBS[n // 100 % 10]} "
        f"near {PLACES[n // 1000 % 8]}?"
    )


def body(text: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return {"model": mock.MODEL, "messages": messages}


def gateway(scratch: Path, name: str, mock_url: str, *, cache: bool, source: Path | None) -> Any:
    return targets.Floopy(
        name,
        scratch,
        mock_url,
        logging=False,
        source=source,
        extra={"CACHE_ENABLED": str(cache)},
    )


def wait_for_the_embedder(client: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = client.get("/readyz").json()
        if report.get("cache", {}).get("embedder_ready"):
            return
        time.sleep(0.2)
    raise RuntimeError("the embedder never loaded")


def stored(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('floopy_cache_stored_total{tier="semantic"}')
    )


def quantiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[round(0.99 * (len(ordered) - 1))] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per case")
    parser.add_argument("--seed", type=int, default=200, help="answers stored in the scope")
    parser.add_argument("--baseline", type=Path, help="another commit's tree (its python/)")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "requests": args.requests,
        "seed": args.seed,
        "load average at start": os.getloadavg(),
    }
    run = os.urandom(4).hex()
    with tempfile.TemporaryDirectory(prefix="floopy-bench-miss-") as tmp:
        scratch = Path(tmp)
        with mock.MockProvider(scratch / "mock", 10) as provider, contextlib.ExitStack() as stack:
            sides = {"": None}
            if args.baseline is not None:
                sides[" (baseline)"] = args.baseline / "python"
            clients: dict[str, httpx.Client] = {}
            off = stack.enter_context(
                gateway(scratch, "off", provider.url, cache=False, source=None)
            )
            clients["off"] = httpx.Client(base_url=off.target.url, headers=off.target.headers)
            for label, source in sides.items():
                # A gateway per case: a miss's own cost, not the previous request's work
                # after its response (the vector of an answer stored), which is measured as
                # CPU by benches/cache/lookup.py.
                for case in ("miss, new scope", "miss, scope with entries"):
                    name = f"{case.split()[1]}-{'baseline' if source else 'now'}"
                    on = stack.enter_context(
                        gateway(scratch, name, provider.url, cache=True, source=source)
                    )
                    client = httpx.Client(
                        base_url=on.target.url, headers=on.target.headers, timeout=30
                    )
                    wait_for_the_embedder(client)
                    if case == "miss, scope with entries":
                        for n in range(args.seed):  # answers in the populated scope
                            client.post("/v1/chat/completions", json=body(wordy(n), SYSTEM))
                        deadline = time.monotonic() + 60
                        while stored(client) < args.seed and time.monotonic() < deadline:
                            time.sleep(0.2)
                    clients[f"{case}{label}"] = client
            for client in clients.values():
                stack.callback(client.close)
            times: dict[str, list[float]] = {case: [] for case in clients}
            outcomes: dict[str, dict[str, int]] = {case: {} for case in clients}
            for n in range(args.requests):
                for case, client in clients.items():
                    if case == "off":
                        request = body(f"A new question, {run} {n}: why is the sky blue?")
                    elif case.startswith("miss, new scope"):
                        request = body(f"Why is the sky blue? (ref {run} {n})")
                    else:
                        request = body(wordy(args.seed + n), SYSTEM)
                    started = time.perf_counter()
                    response = client.post("/v1/chat/completions", json=request)
                    times[case].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    said = response.headers.get("floopy-cache", "none")
                    outcomes[case][said] = outcomes[case].get(said, 0) + 1
    report["load average at end"] = os.getloadavg()
    off_q = quantiles(times["off"])
    report["cases"] = {}
    for case, seconds in times.items():
        q = quantiles(seconds)
        added = {f"added {k}": round(v - off_q[k], 3) for k, v in q.items()}
        report["cases"][case] = {
            **q,
            **({} if case == "off" else added),
            "outcomes": outcomes[case],
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
