"""The load bench's results as Markdown tables, a JSON file and two charts.

``results`` is the dict run.py builds: ``meta``, ``targets`` (name -> ``closed``, ``open``
(one row per offered rate), ``stream``, ``peak_rss_mib``, ``version``) and, when they ran,
``soaks`` (RSS over a long run, per gateway).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

BASELINE = "direct"
# A run that completed less than this share of the offered rate could not keep up.
SATURATED_BELOW = 0.95


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")


def markdown(results: dict[str, Any]) -> str:
    parts = [
        _meta(results["meta"]),
        "### Maximum throughput (closed loop)\n\n" + closed_table(results),
        "### Latency at fixed offered rates (open loop)\n\n" + latency_table(results),
        "### Streaming (50 chunks)\n\n" + stream_table(results),
        "### Streaming: /v1/messages, OpenAI chunks translated into Anthropic events\n\n"
        + stream_table(results, "stream_messages", "stream"),
        "### Streaming: Gemini, translated into OpenAI chunks\n\n"
        + stream_table(results, "stream_gemini", "stream_gemini"),
        "### Memory\n\n" + rss_table(results),
    ]
    for soak in results.get("soaks", []):
        parts.append(
            f"### Resident memory over a long run: {soak['target']}\n\n" + soak_table(soak)
        )
    return "\n\n".join(parts) + "\n"


def _meta(meta: dict[str, Any]) -> str:
    machine, versions = meta["machine"], meta["versions"]
    lines = [
        f"- Date: {meta['date']}; commit `{meta['commit']}`"
        + (" plus uncommitted changes" if meta.get("dirty") else ""),
        f"- Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram_gib']} GiB, "
        f"{machine['os']}, kernel {machine['kernel']}",
        f"- Load before measuring: 1-minute load {meta['load_1m_at_start']:.2f} "
        f"(waited {meta['waited_for_load_s']:.0f} s); CPU used by processes outside the "
        f"bench during the runs: at most {meta['max_other_cores']:.2f} of a core",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- Command: `{meta['command']}`",
    ]
    for rerun in meta.get("reruns", []):
        lines.append(
            f"- Rerun of {', '.join(rerun['targets'])} on {rerun['date']} (`{rerun['command']}`, "
            f"1-minute load {rerun['load_1m_at_start']:.2f}, others at most "
            f"{rerun['max_other_cores']:.2f} of a core): the first run was disturbed"
        )
    return "\n".join(lines)


def closed_table(results: dict[str, Any]) -> str:
    targets = results["targets"]
    litellm = targets.get("litellm", {}).get("closed", {}).get("rps")
    head = "| target | req/s | p50 | p99 | vs LiteLLM | server CPU per request | errors |"
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for name, data in targets.items():
        run = data.get("closed")
        if not run:
            continue
        ratio = f"{run['rps'] / litellm:.0f}x" if litellm and name != "litellm" else ""
        rows.append(
            f"| {name} | {run['rps']:,.0f} | {_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | "
            f"{ratio} | {_us(run.get('server_cpu_us_per_req'))} | {_errors(run)} |"
        )
    return "\n".join(rows)


def latency_table(results: dict[str, Any]) -> str:
    targets = results["targets"]
    base = {row["offered_rps"]: row for row in targets.get(BASELINE, {}).get("open", [])}
    head = "| offered | target | achieved | p50 | p90 | p99 | +p50 | +p99 | errors |"
    rows = [head, "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    rates = sorted({row["offered_rps"] for data in targets.values() for row in data["open"]})
    for rate in rates:
        for name, data in targets.items():
            row = next((r for r in data["open"] if r["offered_rps"] == rate), None)
            if row is None:
                continue
            ref = base.get(rate)
            plus50 = _delta(row["p50_ms"], ref["p50_ms"]) if ref and name != BASELINE else ""
            plus99 = _delta(row["p99_ms"], ref["p99_ms"]) if ref and name != BASELINE else ""
            achieved = f"{row['rps']:,.0f}" + (" (saturated)" if saturated(row) else "")
            rows.append(
                f"| {rate:,.0f} | {name} | {achieved} | {_ms(row['p50_ms'])} | "
                f"{_ms(row['p90_ms'])} | {_ms(row['p99_ms'])} | {plus50} | {plus99} | "
                f"{_errors(row)} |"
            )
    return "\n".join(rows)


def stream_table(results: dict[str, Any], key: str = "stream", ref_key: str = "stream") -> str:
    """One row per target that ran the ``key`` streams; ``+`` columns over the reference's
    ``ref_key`` run (the mock called directly)."""
    targets = results["targets"]
    ref = targets.get(BASELINE, {}).get(ref_key)
    head = "| target | streams/s | TTFB p50 | TTFB p99 | total p50 | total p99 | +TTFB p50 | "
    head += "+total p50 | server CPU per stream | errors |"
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, data in targets.items():
        run = data.get(key)
        if not run:
            continue
        other = ref and name != BASELINE
        rows.append(
            f"| {name} | {run['rps']:,.1f} | {_ms(run['ttfb_p50_ms'])} | "
            f"{_ms(run['ttfb_p99_ms'])} | {_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | "
            f"{_delta(run['ttfb_p50_ms'], ref['ttfb_p50_ms']) if other else ''} | "
            f"{_delta(run['p50_ms'], ref['p50_ms']) if other else ''} | "
            f"{_us(run.get('server_cpu_us_per_req'))} | {_errors(run)} |"
        )
    return "\n".join(rows)


def rss_table(results: dict[str, Any]) -> str:
    rows = ["| target | peak RSS (MiB) | processes |", "|---|---:|---:|"]
    for name, data in results["targets"].items():
        if data.get("peak_rss_mib") is not None:
            rows.append(f"| {name} | {data['peak_rss_mib']:,.0f} | {data.get('processes', '')} |")
    return "\n".join(rows)


def soak_table(soak: dict[str, Any]) -> str:
    samples = soak["samples"]
    run = soak["run"]
    waiting = [
        g.get("journal_bytes.traces", 0.0) + g.get("journal_bytes.requests", 0.0)
        for g in soak.get("log_gauges", [])
    ]
    lines = [
        f"{soak['target']} under wrk -c{soak['connections']} for {soak['seconds']} s: "
        f"{run['requests']:,} requests ({run['rps']:,.0f} req/s), {_errors(run)} errors; "
        f"RSS sampled every {soak['interval']} s.",
        "",
        "| process | first minute (mean) | last minute (mean) | max | trend after the first "
        "minute | trend over the last 5 minutes |",
        "|---|---:|---:|---:|---:|---:|",
        _soak_row("whole tree", samples),
    ]
    lines += [_soak_row(part, part_samples) for part, part_samples in soak.get("parts", {}).items()]
    if waiting:
        lines += [
            "",
            f"Bytes waiting in the journals (requests + traces): at most {max(waiting):,.0f}.",
        ]
    lag = soak.get("answer_to_row_s")
    if lag:
        lines += [
            "",
            f"From a request's answer to its row being queryable, over all {lag['rows']:,} rows: "
            f"p50 {lag['p50']:.3f} s, p99 {lag['p99']:.3f} s.",
        ]
    if soak.get("log_counters"):
        counters = ", ".join(f"{k} {v:,.0f}" for k, v in soak["log_counters"].items())
        lines += ["", f"Request-log counters at the end (/metrics): {counters}."]
    return "\n".join(lines)


def _soak_row(label: str, samples: list[tuple[float, float]]) -> str:
    first = [mib for t, mib in samples if t <= 60]
    last = [mib for t, mib in samples if t >= samples[-1][0] - 60]
    tail_from = max(60.0, samples[-1][0] - 300)
    return (
        f"| {label} | {_mean(first):,.0f} MiB | {_mean(last):,.0f} MiB | "
        f"{max(m for _, m in samples):,.0f} MiB | {_slope(samples, after=60):+,.2f} MiB/min | "
        f"{_slope(samples, after=tail_from):+,.2f} MiB/min |"
    )


def saturated(row: dict[str, Any]) -> bool:
    offered = row.get("offered_rps")
    return bool(offered) and row["rps"] < SATURATED_BELOW * offered


def _errors(run: dict[str, Any]) -> str:
    return f"{run.get('non_2xx', 0) + run.get('errors', 0) + run.get('socket_errors', 0):,}"


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f} µs"


def _delta(value: float, ref: float) -> str:
    if math.isnan(value) or math.isnan(ref):
        return ""
    delta = value - ref
    return f"{delta:+,.2f} ms" if abs(delta) < 100 else f"{delta:+,.0f} ms"


def _slope(samples: list[tuple[float, float]], after: float) -> float:
    """Least-squares growth in MiB per minute of the samples taken after ``after`` seconds."""
    points = [(t / 60, mib) for t, mib in samples if t >= after] or [
        (t / 60, mib) for t, mib in samples
    ]
    if len(points) < 2:
        return 0.0
    mean_t = _mean([t for t, _ in points])
    mean_m = _mean([m for _, m in points])
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / spread if spread else 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def latency_chart(path: Path, results: dict[str, Any], title: str) -> None:
    """p50 and p99 against offered load, one line per target, log scale; a hollow marker
    where the target could not keep up with the offered rate."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, (key, label) in zip(axes, (("p50_ms", "p50"), ("p99_ms", "p99")), strict=True):
        for name, data in results["targets"].items():
            rows = sorted(data["open"], key=lambda r: r["offered_rps"])
            if not rows:
                continue
            xs = [r["offered_rps"] for r in rows]
            (line,) = ax.plot(xs, [r[key] for r in rows], marker="o", label=name)
            late = [r for r in rows if saturated(r)]
            ax.scatter(
                [r["offered_rps"] for r in late],
                [r[key] for r in late],
                s=90,
                facecolors="none",
                edgecolors=line.get_color(),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        rates = sorted({r["offered_rps"] for d in results["targets"].values() for r in d["open"]})
        ax.set_xticks(rates, [f"{r:,.0f}" for r in rates])
        ax.minorticks_off()
        ax.set_xlabel("offered load (requests/s, open loop)")
        ax.set_title(f"{label} latency (hollow ring: could not keep up)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("latency (ms, log scale)")
    if any(data["open"] for data in results["targets"].values()):
        axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path, plt)


def soak_chart(path: Path, soaks: list[dict[str, Any]], title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for soak in soaks:
        lines = soak.get("parts") or {"": soak["samples"]}  # per process where recorded
        for part, samples in lines.items():
            label = f"{soak['target']} {part}".strip()
            ax.plot([t / 60 for t, _ in samples], [m for _, m in samples], marker=".", label=label)
    ax.legend(fontsize=8)
    ax.set_xlabel("minutes under load")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    _save(fig, path, plt)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a bench machine
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, plt: Any) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
