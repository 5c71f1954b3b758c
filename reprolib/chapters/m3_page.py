"""What the M³ page shows, one function per section, so the notebook stays a few lines each.

Each function runs through ``reprolib.chapters.m3_runs`` (merges, scored on the kit), displays the
paper's numbers beside ours, writes its results under the chapter's output folder and returns the
Evidence the claims (``reprolib.chapters.m3``) read. Our scores are fractions; beside the paper's
percentages they are shown ×100.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display

from reprolib import plots
from reprolib.chapters import m3 as C
from reprolib.chapters import m3_runs as R
from reprolib.claims import Evidence
from reprolib.kit import pages

SHOWN = ("alpacaeval", "gsm8k", "humaneval")           # the benchmarks our suite stands in for
LABELS = ("method", "dare", "m3", "models")


def open_m3(**params):
    from reprolib.kit.chapter import open_chapter

    return open_chapter("m3", "m3", seeded_roles=R.SEEDED_ROLES, claims=C.CLAIMS,
                        paper_scale="Llama-2-13B experts (WizardLM-13B, WizardMath-13B, llama-2-13b-code-alpaca)",
                        **params)


_fmt = pages.fmt


def _beside(paper_rows: list[dict], ours, labels=LABELS, columns=SHOWN, scale: float = 100.0, unscaled=()):
    """The kit's ``pages.beside`` with this page's defaults (our fractions ×100 beside the paper's %)."""
    return pages.beside(paper_rows, ours, labels, columns, scale, unscaled)


def two_models(ch, alphas, n_draws: int, scaling_terms, ties_ks, val_size: int):
    """Table 1 and Table 7: the search, our best merges beside the paper's, the λ found, and the
    distribution of the draws. Returns (evidence by id, chosen merges, the pair evidence)."""
    ev, draws, chosen = R.pair_runs(ch, alphas=alphas, n_draws=n_draws, scaling_terms=scaling_terms, ties_ks=ties_ks,
                                    val_size=val_size)
    experts = R.expert_rows(ch)
    in_table1 = [i for i, r in enumerate(ev.records())                 # Table 1: no Average Merging, no TIES + DARE
                 if r["method"] != "average" and not (r["method"] == "ties" and r["dare"])]
    table1 = Evidence.concat([experts, Evidence(ev.rows.iloc[in_table1].reset_index(drop=True), [ev.items[i] for i in in_table1])])
    table7 = Evidence(ev.rows.assign(table="table7"), ev.items)
    table1.rows.to_csv(ch.out / "table1.csv", index=False)
    draws.to_csv(ch.out / "draws.csv", index=False)
    evidence = {"table1": table1, "table7": table7}
    verdicts = ch.verdicts(evidence)
    for tid in ("table1", "table7"):
        table = ch.table(tid)
        frame = _beside(C._merge_rows(ch.paper, tid), evidence[tid].rows, unscaled=("lam",))
        notes = pages.table_notes(table)
        pages.show_table(f"{table['ref']} (paper line {table['line']})",
                         table["caption"] + f" Ours: mean over {len(ch.seeds)} training seed(s), ×100 (λ as is); DARE is "
                         f"dropped with p = {R.DARE_P} (line 261).", _fmt(frame), notes,
                         pages.claim_line(ch, verdicts, tid, evidence), anchor=tid)
    lam = ev.rows[ev.rows.m3].groupby(["method", "dare", "models"])[["lam", "alpha", "s", "k"]].agg(["mean", "min", "max"])
    display(Markdown("**The λ M³ found** (weight of the first-named model; mean / min / max over seeds) and the "
                     "Beta(α, α) it came from; `s` is the scale and `k` TIES's retain ratio that both columns share "
                     "(chosen for the centroid on validation; TIES trims over the whole task vector, `topk_scope: model`, "
                     "as M³'s code does):"))
    display(_fmt(lam))
    display(Image(filename=str(plots.save(_draws_figure(draws), ch.out / "draws.png"))))
    return evidence, chosen, ev


def _draws_figure(draws):
    """Validation score against λ for every M³ draw (one panel per pair, colour = α), with the
    centroid at its chosen scale as a line."""
    plots.style()
    pairs = list(dict.fromkeys(draws.models))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4 * len(pairs), 3.2), sharey=True, squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        d = draws[(draws.models == pair) & (draws.method == "task_arithmetic")]
        m3, centroid = d[d.search == "m3"], d[d.search == "scale"]
        scatter = ax.scatter(m3.lam, m3.validation, c=m3.alpha, cmap="viridis", s=18)
        ax.axhline(centroid.groupby("seed").validation.max().mean(), color="grey", ls="--", label="λ = 0.5 (best s)")
        ax.axvline(0.5, color="grey", lw=0.5)
        ax.set(title=f"{pair} (Task Arithmetic)", xlabel="λ", xlim=(0, 1))
    axes[0][0].set_ylabel("validation score")
    axes[0][0].legend(fontsize=8)
    fig.colorbar(scatter, ax=axes[0].tolist(), label="α")
    return fig


def three_models(ch, order, p_grid, s_grid, val_size: int, order_p: float, order_s: float):
    """Figs. 2–4: the (p, s) surface with the paper's optimum and ours, the centroid against the
    chosen point, and the dominance orders. Returns evidence by id (fig2, fig3, fig4)."""
    fig4, fig2 = R.pseries_runs(ch, order, p_grid, s_grid, val_size)
    fig3 = R.order_runs(ch, order_p, order_s)
    for name, ev in (("fig2", fig2), ("fig3", fig3), ("fig4", fig4)):
        ev.rows.to_csv(ch.out / f"{name}.csv", index=False)
    optimum = ch.paper["hyperparameters"]["three_model_merging"]["optimum"]
    display(Image(filename=str(plots.save(_surface_figure(fig4.rows, optimum), ch.out / "fig4_surface.png"))))
    mean = fig2.rows.assign(point=fig2.rows.selected.map({True: "M³ (selected)", False: "centroid p=0, s=1"}))
    display(_fmt(mean.groupby("point")[["p", "s", *SHOWN]].mean()))
    f2 = {r["p"]: r for r in C._fig2_rows(ch.paper)}
    display(Markdown(f"**Paper (Fig. 2, lines 230–232):** centroid AlpacaEval {f2[0]['alpacaeval']} %, GSM8K "
                     f"{f2[0]['gsm8k']} %; M³ at p = {optimum['p']}, s = {optimum['s']}: AlpacaEval "
                     f"{f2[optimum['p']]['alpacaeval']} %, GSM8K {f2[optimum['p']]['gsm8k']} %. "
                     f"**Ours** (fractions) in the table above, order of dominance {' > '.join(order)}."))
    display(Markdown(f"**Fig. 3, dominance orders** at p = {order_p:g}, s = {order_s:g} (paper, line 241: GSM8K "
                     + ", ".join(f"{r['order']} {r['gsm8k']} %" for r in C._fig3_rows(ch.paper)) + "):"))
    display(_fmt(fig3.rows.groupby("order")[list(SHOWN)].mean().sort_values("gsm8k", ascending=False)))
    evidence = {"fig2": fig2, "fig3": fig3, "fig4": fig4}
    display(Markdown(pages.claim_line(ch, ch.verdicts(evidence), "fig4", evidence) or ""))
    return evidence


def _surface_figure(rows, optimum):
    """Fig. 4: mean test score over the pair metrics on the (p, s) grid, ours selected ★, the paper's ○."""
    plots.style()
    frame = rows.assign(score=rows[list(c for c in SHOWN if c in rows)].mean(axis=1))
    grid = frame.groupby(["p", "s"]).score.mean().unstack("s")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    mesh = ax.imshow(grid.values, origin="lower", aspect="auto", cmap="magma",
                     extent=(grid.columns.min() - 0.25, grid.columns.max() + 0.25, grid.index.min() - 0.5, grid.index.max() + 0.5))
    chosen = frame[frame.selected].groupby("seed")[["p", "s"]].first()
    ax.scatter(chosen.s, chosen.p, marker="*", s=160, c="cyan", edgecolors="k", label="ours (selected, per seed)")
    ax.scatter([optimum["s"]], [optimum["p"]], marker="o", s=120, facecolors="none", edgecolors="w", lw=2,
               label=f"paper optimum (p={optimum['p']}, s={optimum['s']})")
    ax.set(xlabel="s (magnitude)", ylabel="p (p-series exponent)", title="M³ Fig. 4: mean test score")
    ax.legend(fontsize=7, loc="upper right")
    fig.colorbar(mesh, ax=ax, label="mean of the three metrics")
    return fig


def ood(ch, chosen, pair_evidence, n: int):
    """Fig. 5: each expert on the test and the OOD split (what there is to keep), then the pair
    merges on the OOD split, with and without M³."""
    from reprolib.chapters.zoo import generalisation

    experts = generalisation(ch.models, ch.scorer, ("core", "m3"))
    experts.to_csv(ch.out / "experts_ood.csv", index=False)
    display(Markdown("**The experts, test split against out of distribution** (mean over training seeds, 95 % intervals "
                     "over seeds and items; a skill that does not transfer to new template families leaves a merge nothing to "
                     "keep there):"))
    display(_fmt(experts))
    fig5 = R.ood_runs(ch, chosen, pair_evidence, n)
    fig5.rows.to_csv(ch.out / "fig5.csv", index=False)
    display(_fmt(fig5.rows.groupby(["method", "models", "m3"])[["ood"]].mean().unstack("m3")))
    gains = ch.figure("fig5")["text_values"]["m3_gain_percent"]
    display(Markdown(f"**Paper (Fig. 5, line 274):** M³'s OOD gains, Task Arithmetic {gains['task_arithmetic']} %, "
                     f"TIES-Merging {gains['ties_merging']} % (Math & Code, LM & Math, LM & Code; absolute scores are "
                     "plot-only)."))
    return {"fig5": fig5}


def attacks(ch, chosen, pair_evidence, attack_names, n: int, candidates: int):
    """Tables 2, 5, 6: PDR with and without M³, per attack, beside the paper's."""
    evidence = R.attack_runs(ch, chosen, pair_evidence, attack_names, n=n, candidates=candidates)
    verdicts = ch.verdicts(evidence)
    for tid, ev in evidence.items():
        ev.rows.to_csv(ch.out / f"{tid}.csv", index=False)
        table = ch.table(tid)
        labels = ("models", "dataset", "m3")
        ours = ev.rows.assign(clean=ev.rows.clean * 100, attacked=ev.rows.attacked * 100)
        frame = _beside(C._attack_rows(ch.paper, tid), ours, labels, ("clean", "attacked", "pdr"), scale=1.0)
        pages.show_table(f"{table['ref']} (paper line {table['line']})", table["caption"] +
                         f" Ours: {R.ATTACK_SETS} test sets, mean over {len(ch.seeds)} seed(s); clean/attacked ×100, PDR in %.",
                         _fmt(frame), pages.table_notes(table), pages.claim_line(ch, verdicts, tid, evidence), anchor=tid)
    return evidence


def claims(ch, evidence: dict) -> list[dict]:
    """Every M³ claim: ours, the paper's own numbers through the same test, its contradictions."""
    paper_ev = C.paper_evidence(ch.paper, [k for k in evidence])
    return pages.show_claims(ch, evidence, paper_ev, ("base", "instruct", "math_b", "code_b"))


def reading(ch, rows: list[dict], evidence: dict) -> dict:
    """Values the page's Reading glues in."""
    counts = pages.claim_counts(rows)
    t1 = evidence["table1"].rows
    merges = t1[t1.method != "expert"]
    lam = merges[merges.m3].lam
    gain = (merges[merges.m3].groupby(["method", "dare", "models"])[list(SHOWN)].mean()
            - merges[~merges.m3].groupby(["method", "dare", "models"])[list(SHOWN)].mean())
    values = {"n_claims": counts["claims"], "n_reproduced": counts["reproduced"], "n_not": counts["not reproduced"],
              "n_inconclusive": counts["inconclusive"], "lam_min": float(lam.min()), "lam_max": float(lam.max()),
              "share_off_half": float(((lam - 0.5).abs() > C.LAMBDA_TOL).mean()),
              "mean_gain": float(gain.stack().mean()), "share_gains": float((gain.stack() > 0).mean())}
    if "fig5" in evidence:
        f5 = evidence["fig5"].rows
        values["ood_with"], values["ood_without"] = float(f5[f5.m3].ood.mean()), float(f5[~f5.m3].ood.mean())
    return pages.glue(values)
