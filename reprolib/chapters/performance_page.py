"""The Performance page (notebooks/performance.ipynb): the recorded benchmarks, read from
bench/results by :mod:`reprolib.benchmarks`, with the machine and date they ran on. The page runs
nothing heavy; ``make bench`` re-measures."""

from __future__ import annotations

from pathlib import Path

from reprolib import benchmarks as B
from reprolib.kit import pages
from reprolib.paths import project_path


def open_page(results_dir: str) -> tuple[dict, dict | None]:
    """(the newest merge benchmark, the newest sweep benchmark or None)."""
    folder = project_path(results_dir)
    merge = B.latest(folder, "merge_vs_mergekit")
    try:
        sweep = B.latest(folder, "sweep_bench")
    except FileNotFoundError:
        sweep = None
    return merge, sweep


def banner(merge: dict, sweep: dict | None):
    from IPython.display import Markdown

    sizes = sorted({r["checkpoint_bytes"] / 1e9 for r in merge["results"]})
    text = (f"```{{admonition}} Scale of this page: recorded benchmarks on synthetic checkpoints\n:class: warning\n"
            f"**Merges:** synthetic Llama-shaped checkpoints of {sizes[0]:.2g}–{sizes[-1]:.2g} GB (random weights, "
            f"`bench/synth.py`), measured by `bench/merge_bench.py` on {B.machine_line(merge)}; "
            f"file `{Path(merge['_path']).name}`.\n\n")
    if sweep is not None:
        text += (f"**Sweep:** a {sweep['parameters'] / 1e6:.1f} M-parameter random Llama, {len(sweep['points'])} "
                 f"points, measured by `bench/sweep_bench.py` on {sweep['machine']['cpus']} CPU cores, {sweep['date']}; "
                 f"file `{Path(sweep['_path']).name}`.\n\n")
    text += ("These are not the papers' models nor any paper's numbers; no paper reports merge speed. Timings on "
             "shared 2-core machines vary run to run (medians are shown).\n```")
    return Markdown(text)


def merge_table(merge: dict) -> None:
    pages.show_table("Table P1: reprolib beside mergekit", "Median wall time, peak anonymous and file-backed RSS per merge "
                     "(fresh process each); throughput × = mergekit s / reprolib s; floor = reading every input and "
                     "writing one output with plain sequential I/O in the same run.", pages.fmt(B.merge_frame(merge)))


def figure(merge: dict, out_dir: str) -> Path:
    """The RSS and time curves, shown and saved as ``<out_dir>/performance/merge_rss.png``."""
    import matplotlib.pyplot as plt

    folder = project_path(out_dir) / "performance"
    folder.mkdir(parents=True, exist_ok=True)
    fig = B.rss_figure(merge, folder / "merge_rss.png")
    plt.show()
    return folder / "merge_rss.png"


def goals_table(merge: dict) -> None:
    pages.show_table(f"Table P2: the engine's goals on checkpoints of ≥ {B.GOAL_MIN_GB:g} GB",
                     "Each goal of the performance issue against the measured ratio (met: True/False).",
                     B.merge_goals(merge))


def sweep_table(sweep: dict | None) -> None:
    from IPython.display import Markdown, display

    if sweep is None:
        display(Markdown("No sweep benchmark is recorded: run `python bench/sweep_bench.py`."))
        return
    pages.show_table("Table P3: a λ sweep in place against independent merges",
                     f"Task arithmetic over 3 task vectors at {len(sweep['points'])} values of λ, each point merged, "
                     f"loaded and scored (perplexity on {sweep['eval_items']} items); identical scores: every point's "
                     "per-item values equal the independent merges'.", pages.fmt(B.sweep_frame(sweep)))


def reading(merge: dict, sweep: dict | None) -> dict:
    frame = B.merge_frame(merge)
    big = frame[(frame["GB per model"] >= B.GOAL_MIN_GB) & (frame["dtype"] == "bf16") & (frame["experts"] == 2)]
    goals = B.merge_goals(merge)

    def at(method, col, how):
        vals = big[big["method"] == method][col].dropna()
        return float(getattr(vals, how)()) if len(vals) else float("nan")

    growth = B.rss_growth(merge)
    ta = growth.get("task_arithmetic", (0, 0, float("nan"), float("nan")))
    theirs = B.rss_growth(merge, "mergekit").get("task_arithmetic", (0, 0, float("nan"), float("nan")))
    values = {"machine": B.machine_line(merge), "ta_x_lo": at("task_arithmetic", "throughput ×", "min"),
              "ta_x_hi": at("task_arithmetic", "throughput ×", "max"), "ties_x_lo": at("ties", "throughput ×", "min"),
              "ties_x_hi": at("ties", "throughput ×", "max"),
              "anon_hi": float(big["anon reprolib / mergekit"].max()), "floor_lo": float(big["reprolib / floor"].min()),
              "floor_hi": float(big["reprolib / floor"].max()), "goals_met": int(goals["met"].sum()),
              "goals_n": len(goals), "small_gb": ta[0], "large_gb": ta[1], "rss_small": ta[2], "rss_large": ta[3],
              "mk_small": theirs[2], "mk_large": theirs[3],
              "missed": "; ".join(f"{r.goal} on {r.configuration} ({r.measured})"
                                  for r in goals[~goals["met"]].itertuples()) or "none"}
    if sweep is not None:
        sf = B.sweep_frame(sweep).set_index("path")
        values.update({"sweep_x": float(sf.loc["in-place sweep", "speed-up (end to end)"]),
                       "sweep_merge_x": float(sf.loc["in-place sweep", "speed-up (merging)"]),
                       "sweep_points": len(sweep["points"]),
                       "sweep_identical": "yes" if all(sweep["identical_scores"].values()) else "**no**"})
    return pages.glue(values)
