"""Turns pytest-benchmark's JSON into the micro-bench table and chart of RESULTS.md.

Usage: python benches/report_micro.py benches/results/micro.json
Prints a Markdown table (median time per call, and how many times faster native is than the
fastest pure-Python equivalent) and writes benches/results/micro.png beside the JSON.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def load(path: Path) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, str]]:
    """Pairs (benches with an ``impl`` parameter, native against Python) and the rest."""
    data = json.loads(path.read_text())
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    others: dict[str, float] = {}
    for bench in data["benchmarks"]:
        impl = (bench.get("params") or {}).get("impl")
        if impl is None:
            others[bench["name"]] = bench["stats"]["median"]
        else:
            groups[bench["group"]][impl] = bench["stats"]["median"]
    return dict(groups), others, data["machine_info"]


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds / 1e-9:.0f} ns"


def table(groups: dict[str, dict[str, float]]) -> str:
    rows = ["| bench | native | pure Python (fastest) | native is faster by |", "|---|---|---|---|"]
    for group in sorted(groups):
        impls = groups[group]
        native = impls["native"]
        python_name, python = min(
            ((name, t) for name, t in impls.items() if name != "native"), key=lambda p: p[1]
        )
        rows.append(
            f"| {group} | {fmt_time(native)} | {fmt_time(python)} ({python_name}) "
            f"| {python / native:.1f}x |"
        )
    return "\n".join(rows)


def chart(groups: dict[str, dict[str, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(groups)
    speedups = [
        min(t for n, t in groups[g].items() if n != "native") / groups[g]["native"] for g in names
    ]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    bars = ax.barh(names, speedups, color="#3b7dd8")
    ax.bar_label(bars, labels=[f"{s:.1f}x" for s in speedups], padding=3)
    ax.axvline(1, color="#999", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("native speed-up over the fastest pure-Python equivalent (log scale)")
    ax.invert_yaxis()
    ax.set_title("floopy._native micro benches (median per call)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    path = Path(sys.argv[1])
    groups, others, machine = load(path)
    print(
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"python {machine.get('python_version')}"
    )
    print(table(groups))
    if others:
        print("\n| bench | median |\n|---|---|")
        for name in sorted(others):
            print(f"| {name} | {fmt_time(others[name])} |")
    out = path.with_suffix(".png")
    chart(groups, out)
    print(f"\nchart: {out}")


if __name__ == "__main__":
    main()
