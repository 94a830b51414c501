"""Turns the best run of each configuration into a table, a JSON file and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def table(best: list[dict[str, Any]]) -> str:
    head = f"{'client':<12} {'body':<7} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
    head += f"{'p99 ms':>8} {'cpu/req us':>10} {'other':>5} {'errors':>6}"
    lines = [head, "-" * len(head)]
    for row in best:
        lines.append(
            f"{row['client']:<12} {row['mode']:<7} {row['connections']:>5} {row['rps']:>9.0f} "
            f"{row['p50_ms']:>8.2f} {row['p90_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['server_cpu_us_per_req']:>10.1f} "
            f"{row['other_cpu']:>5.2f} {row['non_2xx'] + row['socket_errors']:>6}"
        )
    return "\n".join(lines)


def write_json(
    path: Path, meta: dict[str, Any], runs: list[dict[str, Any]], best: list[dict[str, Any]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "best": best, "runs": runs}, indent=2) + "\n")


CEILING = "nginx"  # measured without a proxy; a bar for it would dwarf the others
PANELS = (
    ("rps", "requests/s (higher is better)", "{:.0f}"),
    ("server_cpu_us_per_req", "server CPU us per request (lower is better)", "{:.0f}"),
)


def write_chart(path: Path, best: list[dict[str, Any]], title: str) -> None:
    """Per body kind, req/s and server CPU per request of each client, grouped by -c."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a bench machine
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(row["mode"] for row in best))
    clients = [c for c in dict.fromkeys(row["client"] for row in best) if c != CEILING]
    fig, axes = plt.subplots(len(PANELS), len(modes), figsize=(5.2 * len(modes), 8), squeeze=False)
    for col, mode in enumerate(modes):
        rows = [row for row in best if row["mode"] == mode]
        conns = sorted({row["connections"] for row in rows})
        ceiling = {r["connections"]: r["rps"] for r in rows if r["client"] == CEILING}
        ticks = [
            f"-c{c}" + (f"\nnginx alone {ceiling[c]:,.0f}/s" if c in ceiling else "") for c in conns
        ]
        for (metric, label, fmt), ax in zip(PANELS, axes[:, col], strict=True):
            _bars(ax, rows, clients, conns, metric, fmt)
            ax.set_xticks(range(len(conns)), ticks, fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.grid(axis="y", alpha=0.3)
        axes[0, col].set_title(f"{mode} (bar label: p50 ms)", fontsize=10)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(
    ax: Any, rows: list[dict[str, Any]], clients: list[str], conns: list[int], metric: str, fmt: str
) -> None:
    width = 0.8 / len(clients)
    for i, client in enumerate(clients):
        by_conns = {row["connections"]: row for row in rows if row["client"] == client}
        xs = [x + (i - (len(clients) - 1) / 2) * width for x in range(len(conns))]
        ys = [by_conns[c][metric] if c in by_conns else 0 for c in conns]
        bars = ax.bar(xs, ys, width, label=client)
        if metric == "rps":
            labels = [f"{by_conns[c]['p50_ms']:.1f}" if c in by_conns else "" for c in conns]
        else:
            labels = [fmt.format(y) if y else "" for y in ys]
        ax.bar_label(bars, labels=labels, fontsize=6, padding=1)
