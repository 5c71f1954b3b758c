"""What the "τJp beyond the paper" page shows, one function per section (the evidence and the
statistic are ``reprolib.chapters.taujp_beyond``'s)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from reprolib import plots
from reprolib.chapters import taujp_beyond as B
from reprolib.kit import pages

PAPER_SCALE = ("the paper measures τJp only between its own task vectors: CLIP ViT-B-32 / B-16 / L-14 on eight image "
               "tasks and T5-small on four GLUE tasks; it never applies it to LLM experts, so this page has no paper "
               "number to set beside ours, only the paper's sentence")
CHAPTER_COLOR = {"lata": "tab:blue", "m3": "tab:orange", "ptm": "tab:green"}
TARGET_WORDS = {"interference": "1 − mean over members of (score in the merge / score with its own vector alone at the "
                                "same coefficient)",
                "interference_expert": "1 − mean over members of (score in the merge / the expert checkpoint's score): "
                                       "the paper's normalised accuracy",
                "change": "mean over members of |score in the merge / score alone − 1|: any change, as Eq. 2 counts it"}


def open_page(profile: str = "mini", zoo_root: str = "zoo", n_seeds: int = 3, eval_size: int = 100, n_items: int = B.N_ITEMS,
              unit: str = "token", cache_dir: str = "results/cache", out_dir: str = "results", progress: bool = True):
    """The chapter (models, scorer, seeds), the groups of the other chapters' merges (read from their
    tables under ``out_dir``) and the Evidence of τJp, cosine and interference per group."""
    from reprolib.cache import ResultCache
    from reprolib.kit import open_chapter
    from reprolib.paths import project_path

    if n_items < 1:
        raise ValueError(f"parameter 'n_items' = {n_items} must be >= 1")
    ch = open_chapter(None, "taujp_beyond", profile=profile, zoo_root=zoo_root, out_dir=out_dir, cache_dir=cache_dir,
                      eval_size=eval_size, n_seeds=n_seeds, seeded_roles=B.SEEDED_ROLES, paper_scale=PAPER_SCALE)
    groups = B.chapter_groups(ch, out_dir, progress=progress)
    measures = B.PairMeasures(ch.models, ch.scorer.sets, ResultCache(project_path(cache_dir), "taujp_beyond"), n_items,
                              unit=unit)
    ev = B.evidence(groups, measures, progress)
    ev.rows.to_csv(ch.out / "groups.csv", index=False)
    return ch, ev


def groups_table(ch, ev) -> None:
    display(Markdown("**The merged groups**, one row per group and training seed: the merge's coefficients, τJp (Eq. 9 "
                     "on the answer logits, mean per answer token; a triple: the mean of its three pairs), the cosine of "
                     "the task vectors, and the three interference measures (members' own-task scores under the merge "
                     "against each alone)."))
    cols = ["group", "seed", "theta0", "coefficients", "taujp", "cosine", "interference", "interference_expert", "change"]
    display(pages.fmt(ev.rows[cols]))


def scatter(ch, ev) -> None:
    plots.style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = ev.rows
    for ax, x, label in ((axes[0], "taujp", "τJp (log scale)"), (axes[1], "cosine", "cosine of the task vectors")):
        for chapter, g in rows.groupby("chapter"):
            marker = np.where(g["size"] == 2, "o", "^")
            for m in ("o", "^"):
                sel = g[marker == m]
                ax.scatter(sel[x], sel["interference"], color=CHAPTER_COLOR.get(chapter, "grey"), marker=m, s=28,
                           label=f"{chapter} {'pairs' if m == 'o' else 'triples'}" if len(sel) else None)
        if x == "taujp":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("interference (1 − normalised score)")
        ax.axhline(0, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    display(Markdown('<a id="scatter"></a>\n\n### τJp and cosine against the measured interference\n\n*Every group and '
                     "training seed; colour: the chapter whose merge it is (LATA's vectors are measured from the "
                     "instruction model, M³'s and PTM's from the base); circles pairs, triangles triples.*"))
    display(Image(filename=str(plots.save(fig, ch.out / "scatter.png"))))


def correlations(ch, ev, n_boot: int = 2000) -> "object":
    """Spearman ρ of τJp and of cosine with each interference measure, with group-bootstrap intervals."""
    rho = B.correlations(ev, n_boot, strata="theta0")
    rho.to_csv(ch.out / "correlations.csv", index=False)
    display(Markdown('<a id="correlations"></a>\n\n### Rank correlations\n\n*Spearman ρ over the (group, seed) rows; '
                     f"95 % interval from {n_boot} bootstrap draws that resample whole groups (a group's seeds are not "
                     "independent); n_groups = distinct groups, n_rows = groups × seeds. Targets: "
                     + "; ".join(f"**{k}** = {v}" for k, v in TARGET_WORDS.items()) + ".*"))
    display(pages.fmt(rho[["target", "groups", "predictor", "rho", "lo", "hi", "n_groups", "n_rows"]]))
    return rho


def _side(row) -> str:
    """The interval in words: which side of 0 it lies on, if any."""
    if row["lo"] > 0:
        return "positive (the interval excludes 0)"
    if row["hi"] < 0:
        return "negative (the interval excludes 0)"
    return "not distinguishable from 0 (the interval spans it)"


def reading(ch, ev, rho) -> dict:
    def pick(target, groups, predictor):
        return rho[(rho.target == target) & (rho.groups == groups) & (rho.predictor == predictor)].iloc[0]

    values = {"profile": f"`{ch.profile}`", "n_rows": len(ev.rows), "n_groups": int(ev.rows["group"].nunique()),
              "taujp_min": float(ev.rows["taujp"].min()), "taujp_max": float(ev.rows["taujp"].max())}
    for key, (target, groups, predictor) in {
            "t_all": ("interference", "all groups", "taujp"), "c_all": ("interference", "all groups", "cosine"),
            "t_pairs": ("interference", "pairs only", "taujp"), "c_pairs": ("interference", "pairs only", "cosine"),
            "t_expert": ("interference_expert", "all groups", "taujp"), "t_change": ("change", "all groups", "taujp")}.items():
        r = pick(target, groups, predictor)
        values.update({key: float(r["rho"]), f"{key}_lo": float(r["lo"]), f"{key}_hi": float(r["hi"]),
                       f"{key}_n": int(r["n_groups"]), f"{key}_side": _side(r)})
    return pages.glue(values)
