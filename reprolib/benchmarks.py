"""The recorded benchmarks (bench/results/*.json) as the book's Performance page shows them.

``bench/merge_bench.py`` writes ``merge_vs_mergekit-<date>-<n>cpu.json`` (reprolib's streaming
engine beside mergekit, the I/O floor, peak RSS by kind) and ``bench/sweep_bench.py`` writes
``sweep_bench-<date>-<n>cpu.json`` (a λ sweep: in place against independent merges). Nothing here
measures: it reads what those scripts recorded, with the machine and the date they ran on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

SHORT = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}
METHOD_ORDER = ("task_arithmetic", "ties", "dare_ties", "linear")
# the goals for checkpoints of at least GOAL_MIN_GB: throughput × over mergekit by method,
# anonymous RSS at most half mergekit's, wall time at most 1.5× the I/O floor
GOAL_MIN_GB = 1.5
THROUGHPUT_GOAL = {"task_arithmetic": 2.0, "ties": 4.0}
ANON_GOAL, FLOOR_GOAL = 0.5, 1.5


def latest(results_dir: str | Path, prefix: str) -> dict:
    """The newest ``<prefix>-<YYYYMMDD>-*.json`` in ``results_dir`` (by the date in its name, then mtime),
    with its path under ``_path``."""
    files = sorted(Path(results_dir).glob(f"{prefix}-*.json"), key=lambda p: (p.stem.split("-")[1], p.stat().st_mtime))
    if not files:
        raise FileNotFoundError(f"no {prefix}-*.json in {results_dir}: run `make bench` (bench/README in the Makefile)")
    report = json.loads(files[-1].read_text())
    report["_path"] = str(files[-1])
    return report


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


def machine_line(report: dict) -> str:
    m = report["machine"]
    cpu = m.get("cpu") or m.get("platform", "")
    cores = m.get("cores") or m.get("cpus")
    return f"{cpu}, {cores} CPU cores, {report['date']} (torch {m.get('torch', '?')}, no GPU)"


def merge_frame(report: dict) -> pd.DataFrame:
    """One row per (size, dtype, method, experts): both tools' median wall time and peak RSS by kind,
    the I/O floor and the ratios (throughput × > 1: reprolib faster)."""
    rows = []
    for r in sorted(report["results"], key=lambda r: (r["dtype"] != "bfloat16", r["checkpoint_bytes"],
                                                       METHOD_ORDER.index(r["method"]), r["n_experts"])):
        ours, theirs, floor = r["reprolib"], r["mergekit"], r["floor"]
        rows.append({
            "GB per model": round(r["checkpoint_bytes"] / 1e9, 2), "dtype": SHORT[r["dtype"]], "method": r["method"],
            "experts": r["n_experts"], "reprolib s": ours.get("wall_s"), "mergekit s": theirs.get("wall_s"),
            "throughput ×": _ratio(theirs.get("wall_s"), ours.get("wall_s")), "floor s": floor.get("wall_s"),
            "reprolib / floor": _ratio(ours.get("wall_s"), floor.get("wall_s")),
            "anon MiB reprolib": ours.get("peak_anon_mib"), "anon MiB mergekit": theirs.get("peak_anon_mib"),
            "anon reprolib / mergekit": _ratio(ours.get("peak_anon_mib"), theirs.get("peak_anon_mib")),
            "file MiB reprolib": ours.get("peak_file_mib"), "file MiB mergekit": theirs.get("peak_file_mib"),
        })
    return pd.DataFrame(rows)


def merge_goals(report: dict, min_gb: float = GOAL_MIN_GB) -> pd.DataFrame:
    """Each goal on each configuration of at least ``min_gb`` GB per model: target, measured, met."""
    frame = merge_frame(report)
    big = frame[frame["GB per model"] >= min_gb]
    rows = []
    for _, r in big.iterrows():
        where = f"{r['GB per model']:g} GB {r['dtype']} {r['method']} ×{r['experts']}"
        goal = THROUGHPUT_GOAL.get(r["method"])
        if goal is not None and r["throughput ×"] is not None:
            rows.append({"configuration": where, "goal": f"throughput ≥ {goal:g}× mergekit's",
                         "measured": f"{r['throughput ×']:.2f}×", "met": bool(r["throughput ×"] >= goal)})
        if r["anon reprolib / mergekit"] is not None:
            rows.append({"configuration": where, "goal": f"anonymous RSS ≤ {ANON_GOAL:g} × mergekit's",
                         "measured": f"{r['anon reprolib / mergekit']:.2f} ×", "met": bool(r["anon reprolib / mergekit"] <= ANON_GOAL)})
        if r["reprolib / floor"] is not None:
            rows.append({"configuration": where, "goal": f"wall ≤ {FLOOR_GOAL:g} × the I/O floor",
                         "measured": f"{r['reprolib / floor']:.2f} ×", "met": bool(r["reprolib / floor"] <= FLOOR_GOAL)})
    return pd.DataFrame(rows, columns=["configuration", "goal", "measured", "met"])


def rss_figure(report: dict, path: str | Path | None = None):
    """Peak anonymous RSS and wall time against checkpoint size (bf16, 2 experts), both tools and the
    I/O floor; saved to ``path`` when given. Returns the figure."""
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if r["dtype"] == "bfloat16" and r["n_experts"] == 2]
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    colors = dict(zip(METHOD_ORDER, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    styles = {"reprolib": ("-", "o"), "mergekit": ("--", "s")}
    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in methods:
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["checkpoint_bytes"])
        for tool, (ls, marker) in styles.items():
            have = [r for r in pts if r[tool].get("wall_s") is not None]
            xs = [r["checkpoint_bytes"] / 1e9 for r in have]
            ax_mem.plot(xs, [r[tool]["peak_anon_mib"] for r in have], ls=ls, marker=marker, color=colors[method],
                        label=f"{tool} {method}")
            ax_time.plot(xs, [r[tool]["wall_s"] for r in have], ls=ls, marker=marker, color=colors[method],
                         label=f"{tool} {method}")
    floor = {r["checkpoint_bytes"] / 1e9: r["floor"]["wall_s"] for r in rows if r["floor"].get("wall_s") is not None}
    if floor:
        xs = sorted(floor)
        ax_time.plot(xs, [floor[x] for x in xs], ls=":", marker=".", color="gray", label="I/O floor")
    ax_mem.set(xscale="log", xlabel="checkpoint size (GB)", ylabel="peak anonymous RSS (MiB)",
               title="memory (bf16, 2 experts)")
    ax_time.set(xscale="log", yscale="log", xlabel="checkpoint size (GB)", ylabel="wall time (s)",
                title="time (inputs in the page cache)")
    sizes = sorted({r["checkpoint_bytes"] / 1e9 for r in rows})
    for ax in (ax_mem, ax_time):
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xticks(sizes, [f"{x:.2g}" for x in sizes])
        ax.set_xticks([], minor=True)
    ax_mem.set_ylim(bottom=0)
    ax_time.legend(fontsize=7, ncol=2)
    fig.suptitle(f"reprolib vs mergekit {report['machine'].get('mergekit', '')}: {machine_line(report)}", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def rss_growth(report: dict, tool: str = "reprolib") -> dict:
    """How much ``tool``'s peak anonymous RSS grows from the smallest to the largest bf16 checkpoint
    (2 experts), per method: {method: (smallest GB, largest GB, MiB at smallest, MiB at largest)}."""
    out = {}
    for method in METHOD_ORDER:
        pts = sorted((r for r in report["results"] if r["method"] == method and r["dtype"] == "bfloat16"
                      and r["n_experts"] == 2 and r[tool].get("peak_anon_mib") is not None),
                     key=lambda r: r["checkpoint_bytes"])
        if len(pts) >= 2:
            out[method] = (pts[0]["checkpoint_bytes"] / 1e9, pts[-1]["checkpoint_bytes"] / 1e9,
                           pts[0][tool]["peak_anon_mib"], pts[-1][tool]["peak_anon_mib"])
    return out


def sweep_frame(report: dict) -> pd.DataFrame:
    """The λ sweep's three paths: time split, speed-up over independent merges through files, and
    whether every point's per-item scores equal those of the independent merges."""
    base = report["runs"]["independent (files)"]
    rows = []
    for name, r in report["runs"].items():
        rows.append({"path": name, "setup s": r["setup_s"], "merge + load s": r["merge_s"], "evaluate s": r["eval_s"],
                     "total s": r["total_s"], "speed-up (end to end)": _ratio(base["total_s"], r["total_s"]),
                     "speed-up (merging)": _ratio(base["merge_s"], r["setup_s"] + r["merge_s"]),
                     "identical scores": report["identical_scores"][name]})
    return pd.DataFrame(rows)
