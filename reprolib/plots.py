"""Shared figure styles and the recurring figures of the book (matplotlib/seaborn, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

PALETTE = {"ours": "#1f77b4", "paper": "#7f7f7f"}


def style() -> None:
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as PNG (150 dpi) to ``path`` atomically; return the path."""
    import os
    import uuid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:6]}.png")
    fig.savefig(tmp, dpi=150, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def layer_rank_plot(layers, title: str = ""):
    """LATA Fig. 5: per-block cosine to the instruction vector (left) and its rank (right; 1 = most
    similar), one line per expert; seeds are averaged (cosine) / shown as the seed-0 rank."""
    style()
    fig, (ax_cos, ax_rank) = plt.subplots(1, 2, figsize=(10, 3.6))
    for expert, g in layers.groupby("expert"):
        mean = g.groupby("layer")["cosine"].agg(["mean", "min", "max"])
        ax_cos.plot(mean.index, mean["mean"], marker="o", label=expert)
        ax_cos.fill_between(mean.index, mean["min"], mean["max"], alpha=0.2)
        seed0 = g[g["seed"] == g["seed"].min()].sort_values("layer")
        ax_rank.plot(seed0["layer"], seed0["rank"], marker="o", label=expert)
    ax_cos.set(xlabel="block", ylabel="cos(τ_comp, τ_instr)", title="cosine (band: min–max over seeds)")
    ax_rank.set(xlabel="block", ylabel="similarity rank (1 = most similar)", title="rank (seed 0)")
    ax_rank.invert_yaxis()
    ax_cos.legend(title="expert")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def forgetting_plot(forget, title: str = ""):
    """LATA Fig. 4: harm (1–5) and in-language perplexity per language target and method, mean
    over seeds with min–max error bars."""
    import seaborn as sns

    style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric, label in ((axes[0], "harm", "harm score (1 = safe … 5)"), (axes[1], "ppl", "in-language perplexity")):
        sns.barplot(forget, x="language", y=metric, hue="method", errorbar=("pi", 100), ax=ax)
        ax.set(ylabel=label, xlabel="language target")
        ax.legend().remove()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.08))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
