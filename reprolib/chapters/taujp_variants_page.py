"""What the τJp vision page shows of the regulariser's variants (Tables 5–7, Fig. 3), one function per
section; the runs are ``reprolib.chapters.taujp_variants``'s, the claims ``reprolib.chapters.taujp``'s."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from reprolib import plots
from reprolib.chapters import taujp as C
from reprolib.chapters import taujp_page as P
from reprolib.chapters import taujp_runs as R
from reprolib.chapters import taujp_variants as X
from reprolib.kit import pages

LABEL = {**P.LABEL, "incremental": "Incremental reg. (T_orth = the tasks learned before)",
         "strict": "Strict reg. (Eq. 10, every other task each step)", "mtl": "MTL (one model, every task)",
         "strict_loop": "Strict reg., one JVP per task (Eq. 10 term by term)"}
SIZE_METHODS = ("nonlinear", "linear", "ours", "mtl")


@dataclass
class Variants:
    main: X.AdditionRuns                  # the chapter's zoo: incremental, strict, MTL
    sizes: dict                           # profile → AdditionRuns of another model size (Table 7)


def open_variants(ch, runs: R.VisionRuns, sizes=("micro",), progress: bool = True) -> Variants:
    """The variants' runs: the chapter's zoo in the incremental, strict and MTL regimes, and every other
    vision profile in ``sizes`` (Table 7's model sizes) in non-linear FT, linear FT, ours and MTL, each
    built where missing (fine-tuning) and evaluated on the chapter's settings."""
    from reprolib.vision.zoo import PROFILES, VisionZoo

    sizes = list(sizes or [])
    bad = [s for s in sizes if s not in PROFILES or s == runs.zoo.profile.name]
    if bad:
        raise ValueError(f"parameter 'sizes' = {sizes}: {bad} must be vision profiles ({', '.join(PROFILES)}) other "
                         f"than the chapter's ({runs.zoo.profile.name})")
    cache = runs.cache
    main = X.AdditionRuns(runs.zoo, runs.seeds, cache, runs.settings, ("incremental", "strict", "mtl"), progress)
    main.build()
    others = {}
    for size in sizes:
        zoo = VisionZoo(size, root=runs.zoo.root.parent, progress=progress, penalty=runs.zoo.profile.penalty)
        others[size] = X.AdditionRuns(zoo, runs.seeds, cache, runs.settings, SIZE_METHODS, progress)
        others[size].build()
    return Variants(main, others)


def _paper_vs_ours(ch, table_id: str, ours, columns, method_of, ours_only=()):
    """The paper's rows of a one-model table with our means over seeds beside them (grid-searched),
    then a row for each method of ``ours_only`` (no paper row; its columns filled by the caller)."""
    import pandas as pd

    mean = ours.groupby("method")[list(columns)].mean()
    rows = []
    for r in ch.table(table_id)["rows"]:
        m = method_of[r["method"]]
        row = {"setting (paper)": r["method"], "ours": LABEL.get(m, m)}
        for c in columns:
            row[f"{c} paper"] = r.get(c)
            row[f"{c} ours"] = float(mean.loc[m, c]) if m in mean.index else None
        rows.append(row)
    rows += [{"setting (paper)": "—", "ours": LABEL.get(m, m)} for m in ours_only]
    return P._fmt(pd.DataFrame(rows))


def tables5_6(ch, runs: R.VisionRuns, variants: Variants, n_iter: int = 20, repeats: int = 3) -> dict:
    """Tables 5–6: the incremental and strict penalties against linear FT and ours (grid-searched
    coefficients), and seconds per iteration measured here."""
    ev = X.variants(R.table1(runs, ch.profile), variants.main, ch.profile)
    timing = X.time_iterations(runs.zoo, n_iter=n_iter, repeats=repeats)
    evidence, verdicts = P._record(ch, "variants", ev, timing=timing)
    grid = ev.rows[ev.rows["coef"] == "grid"]
    t5, t6 = ch.table("table5"), ch.table("table6")
    pages.show_table(f"{t5['ref']} (paper line {t5['line']})", t5["caption"] + f". Ours: the {ch.profile} vision zoo, "
                     f"grid-searched α, mean over {len(runs.seeds)} seeds. Incremental: task i's T_orth is tasks 1 … i−1 "
                     f"in the order {', '.join(R.TASKS)} (no control task; the first task is plain linear FT).",
                     _paper_vs_ours(ch, "table5", grid, ("abs", "norm"), C.VARIANT_OF), pages.table_notes(t5),
                     pages.claim_line(ch, verdicts, "variants", evidence), anchor="table5")
    sec = X.mean_sec(timing)
    frame = _paper_vs_ours(ch, "table6", grid, ("abs", "norm"), C.VARIANT_OF, ("strict_loop",))
    frame["sec_per_iter paper"] = [r["sec_per_iter"] for r in t6["rows"]] + [None]
    frame["sec_per_iter ours"] = [sec[C.VARIANT_OF[r["method"]]] for r in t6["rows"]] + [sec["strict_loop"]]
    pages.show_table(f"{t6['ref']} (paper line {t6['line']})", t6["caption"] + f". Ours: seconds per iteration measured "
                     f"while this page ran, on {X.machine()}: the mean over {repeats} rounds of the median of {n_iter} "
                     f"iterations of task {R.TASKS[0]} after 3 untimed ones, the methods interleaved (another process "
                     "busy on the machine at the time inflates them). The zoo's strict vectors are "
                     "trained with one JVP over every other task's batch (the same Eq. 10 sum); the last row times Eq. 10 "
                     "term by term, one JVP per task, as a loop over T_orth would. The paper's times are four V100s on "
                     "ViT-B-32.", frame, pages.table_notes(t6), pages.claim_line(ch, verdicts, "timing", evidence),
                     anchor="table6")
    return evidence


def table7(ch, runs: R.VisionRuns, variants: Variants) -> dict:
    """Table 7: grid-searched task addition against multi-task learning at every model size."""
    import pandas as pd

    others = {size: v for size, v in variants.sizes.items()}
    ev = X.table7(R.table1(runs, ch.profile), variants.main, others)
    evidence, verdicts = P._record(ch, "table7", ev)
    mean = ev.rows.groupby(["scale", "method"])["abs"].mean()
    params = {ch.profile: ch.scale()["parameters"],
              **{s: sum(v.numel() for v in o.backbone.parameters()) for s, o in others.items()}}
    scales = sorted(params, key=params.get)
    table = ch.table("table7")
    flags = ("x_self", "y_self", "x_other", "y_other", "flexibility")
    rows = []
    for r in table["rows"]:
        m = C.METHOD_OF[r["method"]]
        row = {"method": LABEL.get(m, m), **{f"{s} paper": r[s] for s in C.SCALES}}
        row.update({f"{s} ({params[s] / 1e3:.0f} k) ours": float(mean.get((s, m), np.nan)) for s in scales})
        row.update({f: "✓" if r[f] else "✗" for f in flags})
        rows.append(row)
    pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] + " Ours: grid-searched Abs. (%), "
                     f"mean over {len(runs.seeds)} seeds, on the vision zoo at {len(scales)} model sizes (parameters in "
                     "the column names); MTL is trained on every task at once with each task's frozen head, as many "
                     "steps as one task's fine-tuning, a batch of every task per step.",
                     P._fmt(pd.DataFrame(rows)), pages.table_notes(table), pages.claim_line(ch, verdicts, "table7", evidence),
                     anchor="table7")
    return evidence


def fig3(ch, runs: R.VisionRuns, steps: int | None = None) -> dict:
    """Fig. 3: continued training of the most interfering linear-FT pair with the penalty."""
    ev = X.fig3(runs, steps)
    evidence, verdicts = P._record(ch, "fig3", ev)
    pairs = ev.rows.groupby("seed")[["a", "b"]].first()
    display(Markdown('<a id="fig3"></a>\n\n### Fig. 3 — continued training of an existing pair with the penalty\n\n'
                     f"*{next(f for f in ch.paper['figures'] if f['id'] == 'fig3')['caption']} Ours: per seed, the linear-FT pair with the largest τJp ("
                     + "; ".join(f"seed {s}: {r.a} + {r.b}" for s, r in pairs.iterrows())
                     + f"), each vector trained further with the penalty against the other task's images (λ = "
                     f"{runs.zoo.profile.penalty:g}); normalised accuracy of θ0 + τ_A + τ_B (α = 1) and τJp on the test "
                     "images every "
                     f"{X.FIG3_EVERY} steps; thin lines per seed, thick the mean.*"))
    P._show(_fig3_figure(ev.rows), ch.out / "fig3.png")
    display(Markdown(pages.claim_line(ch, verdicts, "fig3", evidence)))
    return evidence


def _fig3_figure(rows):
    plots.style()
    fig, left = plt.subplots(figsize=(7, 4))
    right = left.twinx()
    for seed, g in rows.groupby("seed"):
        left.plot(g["step"], g["norm"], color="tab:blue", alpha=0.3, lw=1)
        right.plot(g["step"], g["taujp"], color="tab:red", alpha=0.3, lw=1)
    mean = rows.groupby("step")[["norm", "taujp"]].mean()
    left.plot(mean.index, mean["norm"], color="tab:blue", lw=2.5, label="normalised accuracy")
    right.plot(mean.index, mean["taujp"], color="tab:red", lw=2.5, label="τJp")
    right.set_yscale("log")
    left.axvline(C.FIRST_STEPS, color="grey", ls=":", lw=1)
    left.set_xlabel("steps of continued training with the penalty")
    left.set_ylabel("normalised accuracy of the pair (%)", color="tab:blue")
    right.set_ylabel("τJp (log scale)", color="tab:red")
    fig.tight_layout()
    return fig


def reading(ch, evidence: dict) -> dict:
    """The numbers the page's reading glues for Tables 5–7 and Fig. 3, ours and the paper's (glued; returned)."""
    grid = evidence["variants"].rows.query("coef == 'grid'").groupby("method")[["abs", "norm"]].mean()
    sec = X.mean_sec(evidence["timing"])
    t7 = evidence["table7"].rows.groupby(["scale", "method"])["abs"].mean()
    gaps = {s: t7[(s, "mtl")] - t7[(s, "ours")] for s in {k[0] for k in t7.index}}
    f3 = evidence["fig3"].rows.groupby("step")["norm"].mean()
    values = {**{f"t5_{m}_norm": grid.loc[m, "norm"] for m in ("linear", "incremental", "ours", "strict")},
            "saving": 100.0 * (1 - sec["ours"] / sec["strict"]), "saving_loop": 100.0 * (1 - sec["ours"] / sec["strict_loop"]),
            "sec_linear": sec["linear"], "sec_ours": sec["ours"], "sec_strict": sec["strict"],
            "mtl_gap_max": max(gaps.values()), "mtl_gap_min": min(gaps.values()),
            "fig3_start": f3.iloc[0], "fig3_100": f3.get(C.FIRST_STEPS, np.nan), "fig3_end": f3.iloc[-1],
            "fig3_steps": int(f3.index[-1])}
    paper_sec = {C.VARIANT_OF[r["method"]]: r["sec_per_iter"] for r in ch.table("table6")["rows"]}
    paper_gaps = [r[s] for r in ch.table("table7")["rows"] if r["method"] == "MTL" for s in C.SCALES]
    ours_paper = [r[s] for r in ch.table("table7")["rows"] if r["method"] == "Ours" for s in C.SCALES]
    values.update({"paper_saving": 100.0 * (1 - paper_sec["ours"] / paper_sec["strict"]),
                   "paper_gap_min": min(m - o for m, o in zip(paper_gaps, ours_paper)),
                   "paper_gap_max": max(m - o for m, o in zip(paper_gaps, ours_paper)),
                   "n_sizes": len(gaps)})
    return pages.glue(values)
